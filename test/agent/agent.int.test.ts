import assert from 'node:assert/strict';
import { access, chmod, mkdir } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { startAgent, type Agent, type AgentOptions } from '../../src/agent/index.js';
import {
  agentContract,
  agentTopic,
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  InProcessTransport,
  serveRpc,
  type EngineVersionReport,
  type GuestServiceStatus,
  type Subscription,
} from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { isProcessAlive, readPostmasterPid } from '../../src/guest/engines/postgresql/postmaster.js';
import { cleanUp, randomPool, suffix, tempDataDir, waitUntil } from '../guest/engine-fixture.js';

// The agent through the bus, as the taskmanager and conductor see it: real PostgreSQL
// processes, a fake conductor that records heartbeats.

interface Beat {
  instanceId: string;
  status: GuestServiceStatus;
  message?: string;
  volumeUsedBytes?: number;
}

const flavor = { id: 'small', ramMb: 512, vcpus: 1 };
const engine = { manager: 'postgresql', version: '15' };

describe('agent', () => {
  const transport = new InProcessTransport();
  const beats: Beat[] = [];
  const announcements: { host: string; engines: EngineVersionReport[] }[] = [];
  const roots: string[] = [];
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
    for (const root of roots) await cleanUp(root);
  });

  async function newAgent(overrides: Partial<AgentOptions> = {}): Promise<{ agent: Agent; options: AgentOptions }> {
    const dataDir = overrides.dataDir ?? (await tempDataDir('coffer-agent-'));
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

  /** the first heartbeat of `instanceId` with `status` at or after index `from` */
  const beat = (instanceId: string, status: GuestServiceStatus, from: number, timeoutMs = 20_000) =>
    waitUntil(
      `${status} heartbeat of ${instanceId}`,
      () => {
        const index = beats.findIndex((b, i) => i >= from && b.instanceId === instanceId && b.status === status);
        return index < 0 ? undefined : index;
      },
      timeoutMs,
    );

  it('announces the PostgreSQL versions it found', async () => {
    const { options } = await newAgent();
    const announced = await waitUntil('agent heartbeat', () => announcements.find((a) => a.host === options.host));
    const postgresql = announced.engines.filter((e) => e.manager === 'postgresql');
    assert.ok(postgresql.length > 0);
    for (const version of postgresql) {
      assert.equal(version.active, true, version.inactiveReason ?? '');
      assert.match(version.version, new RegExp(`^${version.name}\\.\\d+`));
    }
  });

  it('creates servers idempotently, each with its own address, and frees them on delete', async () => {
    const { options } = await newAgent();
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    const request = (instanceId: string) => ({ instanceId, engine, flavor, volumeSizeGb: 1 });
    const ids = [0, 1, 2, 3].map((n) => `inst-${n}-${suffix()}`);

    const created = await Promise.all([...ids, ids[0]!].map((id) => agentRpc.createServer(request(id))));
    assert.deepEqual(created[4], created[0], 'createServer twice returns the same server');
    assert.equal(new Set(created.map((s) => s.address)).size, 4, 'concurrent creates get distinct addresses');
    assert.ok(created.every((s) => s.port === 5432 && s.host === options.host));
    assert.deepEqual((await agentRpc.createServer(request(ids[1]!))).address, created[1]!.address);
    assert.equal((await agentRpc.listServers({})).length, 4);

    assert.deepEqual(await agentRpc.deleteServer({ instanceId: ids[1]! }), { deleted: true });
    assert.deepEqual(await agentRpc.deleteServer({ instanceId: ids[1]! }), { deleted: false });
    await assert.rejects(access(join(options.dataDir, 'instances', ids[1]!)));
    const reused = await agentRpc.createServer(request(`inst-new-${suffix()}`));
    assert.equal(reused.address, created[1]!.address, 'a deleted server frees its address');
    for (const { instanceId } of await agentRpc.listServers({})) await agentRpc.deleteServer({ instanceId });
  });

  const notRoot = process.getuid?.() !== 0 && 'only root runs engines as another user';
  it('refuses a data dir the engine user cannot reach', { skip: notRoot }, async () => {
    const root = await tempDataDir('coffer-agent-');
    roots.push(root);
    const hidden = join(root, 'private');
    await mkdir(hidden, { mode: 0o700 });
    await chmod(hidden, 0o700);
    const { options } = await newAgent({ dataDir: join(hidden, 'data') });
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    await assert.rejects(
      agentRpc.createServer({ instanceId: `inst-${suffix()}`, engine, flavor, volumeSizeGb: 1 }),
      (err: Error & { code?: string }) => err.code === 'BadRequest' && /--data-dir/.test(err.message),
    );
  });

  it('runs an instance that outlives the agent, is re-adopted, restarted after a crash and deleted', async (t) => {
    const first = await newAgent();
    const { options } = first;
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    const instanceId = `inst-${suffix()}`;
    const guestRpc = createRpcClient(transport, guestContract, guestTopic(instanceId));
    const server = await agentRpc.createServer({ instanceId, engine, flavor, volumeSizeGb: 2 });
    const dataDir = join(options.dataDir, 'instances', instanceId, 'data');
    const query = async (sql: string) => {
      const client = new Client({
        host: server.address,
        port: server.port,
        user: 'app',
        password: 'app-Secret-1',
        database: 'appdb',
      });
      client.on('error', () => undefined);
      await client.connect();
      try {
        return (await client.query(sql)).rows;
      } finally {
        await client.end();
      }
    };

    // prepare -> BUILDING, then HEALTHY
    let mark = beats.length;
    const sent = performance.now();
    await guestRpc.prepare({
      memoryMb: flavor.ramMb,
      databases: [{ name: 'appdb' }],
      users: [{ name: 'app', password: 'app-Secret-1', databases: [{ name: 'appdb' }] }],
      adminPassword: `admin-${suffix()}`,
    });
    const building = await beat(instanceId, 'BUILDING', mark);
    const healthy = await beat(instanceId, 'HEALTHY', mark);
    t.diagnostic(`prepare through the bus: ${(performance.now() - sent).toFixed(0)} ms to HEALTHY`);
    assert.ok(building < healthy);
    assert.ok((beats[healthy]!.volumeUsedBytes ?? 0) > 10 * 1024 ** 2, 'the first HEALTHY heartbeat carries the volume usage');
    await query('CREATE TABLE t (v text)');
    await query("INSERT INTO t VALUES ('kept')");
    const stats = await guestRpc.getFilesystemStats({});
    assert.equal(stats.totalBytes, 2 * 1024 ** 3);
    assert.ok(stats.usedBytes > 10 * 1024 ** 2, `used ${stats.usedBytes}`);

    // the agent stops; the database does not
    const pid = (await readPostmasterPid(dataDir))!.pid;
    await first.agent.stop();
    assert.equal(await isProcessAlive(pid), true);
    assert.deepEqual(await query('SELECT v FROM t'), [{ v: 'kept' }]);

    // a new agent on the same data dir adopts the running postmaster as it is
    mark = beats.length;
    await newAgent({ dataDir: options.dataDir, host: options.host, addressPool: options.addressPool });
    await beat(instanceId, 'HEALTHY', mark);
    assert.equal((await readPostmasterPid(dataDir))!.pid, pid, 'adopted, not restarted');
    assert.ok(!beats.slice(mark).some((b) => b.instanceId === instanceId && b.status !== 'HEALTHY'));

    // killed: reported and restarted
    mark = beats.length;
    process.kill(pid, 'SIGKILL');
    const crashed = await beat(instanceId, 'CRASHED', mark);
    await beat(instanceId, 'HEALTHY', crashed);
    const restartedPid = (await readPostmasterPid(dataDir))!.pid;
    assert.notEqual(restartedPid, pid);
    assert.deepEqual(await query('SELECT v FROM t'), [{ v: 'kept' }]);

    // stopDb / startDb / restart
    mark = beats.length;
    await guestRpc.stopDb({});
    await beat(instanceId, 'SHUTDOWN', mark);
    await assert.rejects(query('SELECT 1'));
    // a stopped instance stays stopped across health checks
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await readPostmasterPid(dataDir), undefined);
    mark = beats.length;
    await guestRpc.startDb({});
    await beat(instanceId, 'HEALTHY', mark);
    mark = beats.length;
    await guestRpc.restart({});
    const restarting = await beat(instanceId, 'RESTARTING', mark);
    await beat(instanceId, 'HEALTHY', restarting);
    assert.deepEqual(await query('SELECT v FROM t'), [{ v: 'kept' }]);

    // delete: process gone, directory gone, address free
    const lastPid = (await readPostmasterPid(dataDir))!.pid;
    assert.deepEqual(await agentRpc.deleteServer({ instanceId }), { deleted: true });
    assert.equal(await isProcessAlive(lastPid), false);
    await assert.rejects(access(join(options.dataDir, 'instances', instanceId)));
    const refused = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect({ host: server.address, port: server.port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    assert.equal(refused, true, 'nothing listens on the deleted address');
    assert.deepEqual(await agentRpc.listServers({}), []);
  });
});
