import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { NetnsHost } from './netns-hosts.js';

// A private RabbitMQ node for tests that must stop or restart a broker: the shared one on 5672
// belongs to everybody. It runs as the current user from a temp dir (its own cookie, mnesia,
// logs, config), listens on 127.0.0.1 only, has no plugins, and boots in about 5 s. Given a
// namespace host (netns-hosts.ts), it runs inside it instead and listens on the host's address,
// where the other hosts reach it (guest may then log in from anywhere, as nothing but those
// hosts can reach that address).

const serverBin = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const ctlBin = '/usr/lib/rabbitmq/bin/rabbitmqctl';
const run = promisify(execFile);

export interface RabbitmqNode {
  /** amqp://guest:guest@127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly nodeName: string;
  /** stops the broker application (clients are disconnected); the Erlang node stays up */
  stopApp(): Promise<void>;
  /** starts it again and waits until it accepts connections */
  startApp(): Promise<void>;
  /** stops the node and removes its directory; safe to call twice */
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function portOpen(port: number, host?: NetnsHost): Promise<boolean> {
  if (host !== undefined) {
    const probe = `const s = require('node:net').connect(${port}, '${host.address}'); s.on('connect', () => process.exit(0)); s.on('error', () => process.exit(1));`;
    return host.exec(process.execPath, ['-e', probe]).then(
      () => true,
      () => false,
    );
  }
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRabbitmqNode(options: { bootTimeoutMs?: number; host?: NetnsHost } = {}): Promise<RabbitmqNode> {
  const bootTimeoutMs = options.bootTimeoutMs ?? 60_000;
  const host = options.host;
  const listenAddress = host?.address ?? '127.0.0.1';
  const dir = await mkdtemp(join(tmpdir(), 'coffer-rabbitmq-'));
  const [port, distPort] = [await freePort(), await freePort()];
  const nodeName = `coffer-t${randomBytes(4).toString('hex')}@localhost`;
  await writeFile(join(dir, 'enabled_plugins'), '[].\n');
  await writeFile(join(dir, 'rabbitmq.conf'), `listeners.tcp.default = ${listenAddress}:${port}\n${host === undefined ? '' : 'loopback_users = none\n'}`);
  await writeFile(join(dir, 'rabbitmq-env.conf'), '');
  await writeFile(join(dir, '.erlang.cookie'), randomBytes(16).toString('hex').toUpperCase(), { mode: 0o400 });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir, // the Erlang cookie the node and rabbitmqctl share
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_IP_ADDRESS: listenAddress,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'), // not the system node's settings
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}', // Erlang distribution on loopback only
  };
  const ctl = async (...args: string[]) => {
    if (host !== undefined) await host.exec(ctlBin, ['-n', nodeName, ...args], { env, timeoutMs: 60_000 });
    else await run(ctlBin, ['-n', nodeName, ...args], { env, timeout: 60_000 });
  };

  // Its own process group, so a node that ignores `rabbitmqctl stop` can be killed whole.
  let child: ChildProcess | undefined =
    host === undefined ? spawn(serverBin, [], { env, cwd: dir, stdio: 'ignore', detached: true }) : host.spawn(serverBin, [], { env, cwd: dir, stdio: 'ignore' });
  const kill = () => {
    if (child?.pid !== undefined && !exited) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });

  const waitForListener = async () => {
    const deadline = Date.now() + bootTimeoutMs;
    while (!(await portOpen(port, host))) {
      if (exited) throw new Error(`RabbitMQ node ${nodeName} exited while booting; see ${join(dir, 'log')}`);
      if (Date.now() > deadline) throw new Error(`RabbitMQ node ${nodeName} did not listen on ${port} within ${bootTimeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      if (!exited) await ctl('stop');
    } catch {
      kill();
    }
    if (!exited && child !== undefined) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          kill();
          resolve();
        }, 10_000);
        child?.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    child = undefined;
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitForListener();
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url: `amqp://guest:guest@${listenAddress}:${port}`,
    port,
    nodeName,
    stopApp: () => ctl('stop_app'),
    startApp: async () => {
      await ctl('start_app');
      await waitForListener();
    },
    stop,
  };
}
