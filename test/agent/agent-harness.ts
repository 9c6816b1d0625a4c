import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startAgent, type Agent, type AgentOptions } from '../../src/agent/index.js';
import {
  conductorContract,
  conductorTopic,
  InProcessTransport,
  serveRpc,
  type EngineVersionReport,
  type GuestServiceStatus,
  type Subscription,
} from '../../src/bus/index.js';
import { removeInstanceUser } from '../../src/agent/instance-user.js';
import { silentLogger } from '../../src/common/logger.js';
import { cleanUp, randomPool, suffix } from '../guest/engine-fixture.js';
import { tempDataDir } from '../support/temp-dir.js';

// Shared by the agent integration tests: real agents on an in-process bus, seen through a fake
// conductor that records heartbeats, and cleaned up (engines killed, directories removed) after.

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
  const announcements: { host: string; engines: EngineVersionReport[] }[] = [];
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
      agentHeartbeat: async (args) => {
        announcements.push(args);
      },
    });
  });

  after(async () => {
    for (const agent of agents) await agent.stop();
    await conductor.close();
    await transport.close();
    for (const root of roots) {
      const users = await osUsersUnder(root);
      await cleanUp(root);
      // instances a test left behind leave no OS users behind
      for (const user of users) await removeInstanceUser(user, silentLogger());
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
      ...overrides,
    };
    const agent = await startAgent(options);
    agents.push(agent);
    return { agent, options };
  }

  return { transport, beats, announcements, roots, agents, newAgent };
}

/** The OS users recorded by the instances under `root` (a data directory, or one level above one). */
export async function osUsersUnder(root: string): Promise<string[]> {
  const users: string[] = [];
  const visit = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries.filter((e) => e.isDirectory())) {
      const path = join(dir, entry.name);
      if (entry.name === 'instances') {
        for (const id of await readdir(path).catch(() => [] as string[])) {
          const text = await readFile(join(path, id, 'instance.json'), 'utf8').catch(() => '{}');
          const { osUser } = JSON.parse(text) as { osUser?: unknown };
          if (typeof osUser === 'string') users.push(osUser);
        }
      } else if (depth > 0) {
        await visit(path, depth - 1);
      }
    }
  };
  await visit(root, 2);
  return users;
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
