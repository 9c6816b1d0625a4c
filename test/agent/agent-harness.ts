import { readdir, readFile, readlink } from 'node:fs/promises';
import { after, before } from 'node:test';
import { startAgent, type Agent, type AgentOptions } from '../../src/agent/index.js';
import {
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  InProcessTransport,
  serveRpc,
  type agentContract,
  type EngineVersionReport,
  type GuestServiceStatus,
  type RpcClient,
  type ServerInfo,
  type Subscription,
} from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { cleanUp, randomPool, suffix } from '../guest/engine-fixture.js';
import { removeInstanceUsersUnder } from '../support/instance-users.js';
import { tempDataDir } from '../support/temp-dir.js';
import { waitUntil } from '../support/wait.js';

// Shared by the agent integration tests: real agents on an in-process bus, seen through a fake
// conductor that records heartbeats, and cleaned up (engines killed, directories removed) after.

/** What the agent tests create: PostgreSQL 15 on a small flavor. */
export const flavor = { id: 'small', ramMb: 512, vcpus: 1 };
export const engine = { manager: 'postgresql', version: '15' };

/** A prepare with one database and a user of it, as the agent tests send it. */
export const prepareInput = (adminPassword: string) => ({
  memoryMb: flavor.ramMb,
  databases: [{ name: 'appdb' }],
  users: [{ name: 'app', password: 'app-Secret-1', databases: [{ name: 'appdb' }] }],
  adminPassword,
});

export interface Beat {
  instanceId: string;
  status: GuestServiceStatus;
  message?: string;
  volumeUsedBytes?: number;
}

/** Registers the suite's before/after hooks: call it inside a `describe`. */
export function agentHarness(dataDirPrefix: string) {
  const transport = new InProcessTransport();
  const beats: Beat[] = [];
  const announcements: { host: string; engines: EngineVersionReport[]; adopting?: string[] }[] = [];
  /** directories removed after the suite, engines under them killed */
  const roots: string[] = [];
  /** agents stopped after the suite */
  const agents: Agent[] = [];
  let conductor: Subscription;

  before(async () => {
    conductor = await serveRpc(transport, conductorContract, conductorTopic, {
      heartbeat: async (args) => {
        beats.push(args);
      },
      heartbeats: async (args) => {
        beats.push(...args.beats);
      },
      agentHeartbeat: async (args) => {
        announcements.push(args);
      },
      reportProgress: async () => undefined,
      updateBackup: async () => undefined,
      walArchived: async () => undefined,
      renewLease: async () => ({ lease: 'none' as const }),
    });
  });

  after(async () => {
    for (const agent of agents) await agent.stop();
    await conductor.close();
    await transport.close();
    for (const root of roots) {
      // before the directory goes: the records name the users
      await removeInstanceUsersUnder(root);
      await cleanUp(root);
    }
  });

  /** starts an agent on a fresh data directory (unless `overrides` names one) and a random address pool */
  async function newAgent(overrides: Partial<AgentOptions> = {}): Promise<{ agent: Agent; options: AgentOptions }> {
    const dataDir = overrides.dataDir ?? (await tempDataDir(dataDirPrefix));
    if (overrides.dataDir === undefined) roots.push(dataDir);
    const options: AgentOptions = {
      host: `test-${suffix()}`,
      dataDir,
      transport,
      logger: silentLogger(),
      addressPool: randomPool(),
      heartbeatIntervalMs: 200,
      // the size these tests were written with, not the host-sized default (see scripts/run-tests.mjs)
      warmPoolSize: 2,
      ...overrides,
    };
    const agent = await startAgent(options);
    agents.push(agent);
    return { agent, options };
  }

  /** Resolves with the index of `instanceId`'s first `status` heartbeat at or after index `from`. */
  const beat = (instanceId: string, status: GuestServiceStatus, from: number, timeoutMs = 20_000) =>
    waitUntil(
      `${status} heartbeat of ${instanceId}`,
      () => {
        const index = beats.findIndex((b, i) => i >= from && b.instanceId === instanceId && b.status === status);
        return index < 0 ? undefined : index;
      },
      timeoutMs,
    );

  /** Creates `instanceId` (of `engine` unless another is named) through `agentRpc` and prepares it with `prepareInput`; resolves once it is HEALTHY. */
  async function prepared(
    agentRpc: RpcClient<typeof agentContract>,
    instanceId: string,
    adminPassword: string,
    ofEngine: { manager: string; version: string } = engine,
  ): Promise<ServerInfo> {
    const server = await agentRpc.createServer({ instanceId, engine: ofEngine, flavor, volumeSizeGb: 1 });
    const mark = beats.length;
    await createRpcClient(transport, guestContract, guestTopic(instanceId)).prepare(prepareInput(adminPassword));
    await beat(instanceId, 'HEALTHY', mark, 30_000);
    return server;
  }

  return { transport, beats, announcements, roots, agents, newAgent, beat, prepared };
}

/** Pids of processes whose command line mentions `dir` or that work in it or below it, even once it is removed. */
export async function processesUsing(dir: string): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const found: number[] = [];
  for (const pid of pids) {
    if (pid === process.pid) continue;
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cwd === dir || cwd.startsWith(`${dir}/`) || cmdline.includes(dir)) found.push(pid);
  }
  return found;
}
