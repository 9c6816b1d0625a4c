// test-lane: parallel (agents as root: they add and remove OS users and their walls; it checks processes only under its own directories)
import assert from 'node:assert/strict';
import { access, appendFile, chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Client } from 'pg';
import { agentContract, agentTopic, createRpcClient, guestContract, guestTopic } from '../../src/bus/index.js';
import { readPostmasterPid } from '../../src/guest/engines/postgresql/postmaster.js';
import { isProcessAlive } from '../../src/guest/engines/process-watch.js';
import { suffix } from '../guest/engine-fixture.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until, waitUntil } from '../support/wait.js';
import { agentHarness, engine, flavor, prepareInput, processesUsing } from './agent-harness.js';

// The agent through the bus, as the taskmanager and conductor see it: real PostgreSQL
// processes, a fake conductor that records heartbeats.

describe('agent', () => {
  const { transport, beats, announcements, roots, newAgent, beat } = agentHarness('coffer-agent-');

  /** the first heartbeat of `instanceId` with `status` at or after index `from` */

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
    const dir = await stat(join(options.dataDir, 'instances', ids[0]!));
    assert.equal(dir.uid, process.getuid!(), "the instance directory is the host's, not the engine user's");
    // as root, only the instance's own user (by its group) may traverse it
    assert.equal(dir.mode & 0o777, process.getuid?.() === 0 ? 0o710 : 0o700);
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
    const second = await newAgent({ dataDir: options.dataDir, host: options.host, addressPool: options.addressPool });
    // its first health check done: a HEALTHY beat alone could be the stopped agent's last batch, arriving late
    await second.agent.adopted;
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

    // a resized volume: the guest holds the engine to the new size, and the agent's record keeps it for a restarted agent
    assert.equal((await guestRpc.resizeVolume({ sizeGb: 3 })).totalBytes, 3 * 1024 ** 3);
    assert.equal((await guestRpc.getFilesystemStats({})).totalBytes, 3 * 1024 ** 3);
    const record = JSON.parse(await readFile(join(options.dataDir, 'instances', instanceId, 'instance.json'), 'utf8')) as { volumeSizeGb: number };
    assert.equal(record.volumeSizeGb, 3);

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

  it('deletes a server whose prepare was just sent or is running, leaving nothing behind', async () => {
    const { options } = await newAgent();
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    for (const when of ['sent', 'running'] as const) {
      const instanceId = `inst-${when}-${suffix()}`;
      const dir = join(options.dataDir, 'instances', instanceId);
      await agentRpc.createServer({ instanceId, engine, flavor, volumeSizeGb: 1 });
      const mark = beats.length;
      await createRpcClient(transport, guestContract, guestTopic(instanceId)).prepare(prepareInput(`admin-${suffix()}`));
      if (when === 'running') await beat(instanceId, 'BUILDING', mark);
      assert.deepEqual(await agentRpc.deleteServer({ instanceId }), { deleted: true }, when);
      assert.deepEqual(await processesUsing(dir), [], `no engine process is left (prepare ${when})`);
      await assert.rejects(access(dir));
      assert.ok(!(await agentRpc.listServers({})).some((server) => server.instanceId === instanceId));
    }
  });

  it('reports a failed prepare with its reason and leaves no engine running', async () => {
    const { options } = await newAgent();
    const instanceId = `inst-${suffix()}`;
    await createRpcClient(transport, agentContract, agentTopic(options.host)).createServer({
      instanceId,
      engine,
      flavor,
      volumeSizeGb: 1,
    });
    const mark = beats.length;
    await createRpcClient(transport, guestContract, guestTopic(instanceId)).prepare({
      ...prepareInput(`admin-${suffix()}`),
      // fails once the server runs: the user's database was never asked for
      users: [{ name: 'app', password: 'app-Secret-1', databases: [{ name: 'missing' }] }],
    });
    const failed = beats[await beat(instanceId, 'FAILED', mark)]!;
    assert.match(failed.message ?? '', /database "missing" does not exist/);
    assert.deepEqual(await processesUsing(join(options.dataDir, 'instances', instanceId)), []);
  });

  it('lets a prepare finish when its agent stops, and stops an engine a dead agent left mid-prepare', async () => {
    const first = await newAgent();
    const { options } = first;
    const instanceId = `inst-${suffix()}`;
    const dir = join(options.dataDir, 'instances', instanceId);
    const guestRpc = createRpcClient(transport, guestContract, guestTopic(instanceId));
    const server = await createRpcClient(transport, agentContract, agentTopic(options.host)).createServer({
      instanceId,
      engine,
      flavor,
      volumeSizeGb: 1,
    });
    let mark = beats.length;
    await guestRpc.prepare(prepareInput(`admin-${suffix()}`));
    await beat(instanceId, 'BUILDING', mark);
    await first.agent.stop();
    const pid = (await readPostmasterPid(join(dir, 'data')))!.pid;
    assert.equal(await isProcessAlive(pid), true, 'the prepare finished before the agent stopped');

    // the next agent gets the prepare again and finds the instance ready
    mark = beats.length;
    const second = await newAgent({ dataDir: options.dataDir, host: options.host, addressPool: options.addressPool });
    await beat(instanceId, 'HEALTHY', mark);
    assert.equal((await readPostmasterPid(join(dir, 'data')))!.pid, pid);
    assert.ok(!beats.slice(mark).some((b) => b.instanceId === instanceId && b.status === 'FAILED'));

    // an agent that dies mid-prepare leaves the engine running without the prepared marker
    await second.agent.stop();
    await rm(join(dir, '.prepare.done'));
    await newAgent({ dataDir: options.dataDir, host: options.host, addressPool: options.addressPool });
    await until('the leftover engine to stop', async () => !(await isProcessAlive(pid)));
    assert.deepEqual(await processesUsing(dir), []);

    // a prepare delivered again brings it back, with what the first one made
    mark = beats.length;
    await guestRpc.prepare(prepareInput('ignored: the first admin password stays'));
    await beat(instanceId, 'HEALTHY', mark);
    const client = new Client({ host: server.address, port: server.port, user: 'app', password: 'app-Secret-1', database: 'appdb' });
    await client.connect();
    await client.end();
  });

  it('reports a restart that keeps failing once, and recovers when it can start again', async () => {
    const { options } = await newAgent();
    const instanceId = `inst-${suffix()}`;
    const dir = join(options.dataDir, 'instances', instanceId);
    await createRpcClient(transport, agentContract, agentTopic(options.host)).createServer({
      instanceId,
      engine,
      flavor,
      volumeSizeGb: 1,
    });
    let mark = beats.length;
    await createRpcClient(transport, guestContract, guestTopic(instanceId)).prepare(prepareInput(`admin-${suffix()}`));
    await beat(instanceId, 'HEALTHY', mark);

    const conf = join(dir, 'postgresql.conf');
    const good = await readFile(conf, 'utf8');
    await appendFile(conf, "shared_buffers = 'bogus'\n");
    // and the configuration it last started with, which a failed start falls back to, is as bad
    await writeFile(`${conf}.started`, await readFile(conf, 'utf8'));
    // a long log before the failure: the fault must still end with the line that says why
    await appendFile(join(dir, 'postgresql.log'), 'earlier log line\n'.repeat(200));
    mark = beats.length;
    process.kill((await readPostmasterPid(join(dir, 'data')))!.pid, 'SIGKILL');
    const crashed = () => beats.slice(mark).filter((b) => b.instanceId === instanceId && b.status === 'CRASHED');
    await until('several failed restarts', () => crashed().length >= 5);
    const messages = crashed()
      .map((b) => b.message)
      .filter((message) => message !== undefined);
    assert.equal(messages.length, 2, JSON.stringify(messages));
    assert.match(messages[0]!, /stopped unexpectedly/);
    assert.match(messages[1]!, /^PostgreSQL exited \(code 1\) while starting: configuration file "postgresql\.conf" contains errors\.\n/, 'the cause, without host paths, on the line tenants see');
    assert.match(messages[1]!, /FATAL: +configuration file "[^"]+" contains errors$/);

    await writeFile(conf, good);
    await beat(instanceId, 'HEALTHY', mark);
    await createRpcClient(transport, agentContract, agentTopic(options.host)).deleteServer({ instanceId });
  });
});
