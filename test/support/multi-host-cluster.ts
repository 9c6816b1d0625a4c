import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/agent/index.js';
import { silentLogger } from '../../src/common/index.js';
import { adminSession } from '../e2e/instance-lifecycle.js';
import type { Session } from './api-client.js';
import { startRole, type RoleProcess } from './coffer-process.js';
import { createHostNetwork, type HostNetwork, type NetnsHost } from './netns-hosts.js';
import { processesMentioning } from './processes.js';
import { startRabbitmqNode, type RabbitmqNode } from './rabbitmq-node.js';
import { makeDataDir } from './temp-dir.js';

// Coffer over several machines, on one (issue 11): a control-plane host (RabbitMQ, the state
// database, the API, conductor and taskmanager) and compute hosts, each a network namespace on a
// switch, each running its own `coffer agent --host-address` that reaches the bus over the
// network. Instances listen on their host's address.

export interface MultiHostCluster {
  readonly control: NetnsHost;
  readonly computes: readonly NetnsHost[];
  /** the admin's session on the API, reached from the test through the control host */
  readonly session: Session;
  /** the agent process of each compute host, in the order of `computes` */
  readonly agents: RoleProcess[];
  /** the directory of the `i`th compute host's agent */
  agentDir(i: number): string;
  /** starts the `i`th compute host's agent again (after a test killed it) */
  restartAgent(i: number): Promise<void>;
  /** where an instance landed: the compute host whose address its view shows, and its port */
  placement(instance: { addresses?: Array<{ address: string; port?: number }> }): { host: NetnsHost; port: number; index: number };
  /** the lines every role (agents restarted included) printed that mention `text`, the last `count` of them: what a failing test says */
  logLines(text: string, count?: number): string;
  stop(): Promise<void>;
}

export async function startMultiHostCluster(options: { computeHosts: number; apiPort: number; adminPassword: string; prefix: string }): Promise<MultiHostCluster> {
  const net: HostNetwork = await createHostNetwork(1 + options.computeHosts);
  const control = net.hosts[0]!;
  const computes = net.hosts.slice(1);
  const roles: RoleProcess[] = [];
  const agents: RoleProcess[] = [];
  let rabbit: RabbitmqNode | undefined;
  const dataDir = await makeDataDir(options.prefix);
  const stop = async () => {
    // a role that does not stop within 20 s (an agent waiting on a host cut off) is killed
    for (const role of roles.reverse()) {
      const stopped = role.stop().then(() => true, () => true);
      if (!(await Promise.race([stopped, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 20_000))]))) await role.kill().catch(() => undefined);
    }
    // engines outlive their agent by design: what this test started goes with its namespaces
    await net.remove();
    await rabbit?.stop().catch(() => undefined);
    for (const pid of processesMentioning(dataDir.path)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await dataDir.remove();
  };
  try {
    rabbit = await startRabbitmqNode({ host: control });
    const busKeyFile = join(dataDir.path, 'bus.key');
    await writeFile(busKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const env = {
      COFFER_DATABASE_URL: `sqlite:${join(dataDir.path, 'state.db')}`,
      COFFER_BUS_URL: rabbit.url,
      COFFER_BUS_KEY_FILE: busKeyFile,
      COFFER_ADMIN_PASSWORD: options.adminPassword,
      COFFER_LOG_LEVEL: 'info',
      // a test may hold several groups of three at once
      COFFER_MAX_INSTANCES_PER_TENANT: '-1',
      COFFER_MAX_RAM_PER_TENANT: '-1',
      COFFER_MAX_VOLUMES_PER_TENANT: '-1',
    };
    const start = async (args: string[], host: NetnsHost, ready: RegExp) => {
      const role = startRole(args, env, { host });
      roles.push(role);
      await role.waitFor(ready, 90_000);
      return role;
    };
    // the state database is created by the first role that opens it
    await start(['conductor'], control, /conductor running/);
    await start(['taskmanager'], control, /taskmanager running/);
    await mkdir(join(dataDir.path, 'api'));
    await start(['api', '--host', control.address, '--port', String(options.apiPort), '--data-dir', join(dataDir.path, 'api')], control, /api listening/);
    // short: instances keep their engine's Unix socket below it
    const agentDir = (i: number) => join(dataDir.path, `h${i + 1}`);
    // one CA for the deployment, as an operator gives every host (--ca-cert-file): a replica checks
    // its primary's certificate on another host against it
    const caDir = join(dataDir.path, 'ca');
    await mkdir(caDir);
    await CertificateAuthority.open({ dir: caDir, logger: silentLogger() });
    const ca = ['--ca-cert-file', join(caDir, 'ca.crt'), '--ca-key-file', join(caDir, 'ca.key')];
    const startAgent = (i: number) => {
      const host = computes[i]!;
      return start(['agent', '--data-dir', agentDir(i), '--agent-host', host.netns, '--host-address', host.address, ...ca], host, /agent running/);
    };
    for (const i of computes.keys()) {
      await mkdir(agentDir(i));
      agents.push(await startAgent(i));
    }
    const session = await adminSession(`http://127.0.0.1:${await control.forward(options.apiPort)}`, options.adminPassword);
    return {
      control,
      computes,
      session,
      agents,
      agentDir,
      async restartAgent(i) {
        agents[i] = await startAgent(i);
      },
      placement(instance) {
        const entry = instance.addresses?.[0];
        assert.ok(entry !== undefined && entry.port !== undefined, `the view shows an address and a port: ${JSON.stringify(instance.addresses)}`);
        const index = computes.findIndex((h) => h.address === entry.address);
        assert.ok(index >= 0, `${entry.address} is one of the compute hosts'`);
        return { host: computes[index]!, port: entry.port, index };
      },
      logLines(text, count = 40) {
        return roles
          .flatMap((role) => role.output().split('\n'))
          .filter((line) => line.includes(text))
          .slice(-count)
          .join('\n');
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
