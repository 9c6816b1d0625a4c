// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { guestContract, RpcClient } from '../../src/bus/index.js';
import { readAppliedGeneration } from '../../src/guest/applied-generation.js';
import { engineRegistry } from '../../src/guest/index.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { connectRedis } from '../support/redis-client.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { startBusGuest, type BusGuest } from './bus-guest.js';
import { localRunner } from './engine-fixture.js';

// A Redis instance through its guest over the bus: what Redis cannot do fails clearly (a
// prepare asking for databases reports FAILED and why; database calls and address rules answer
// OperationNotSupported), what it can reaches the real server.

const instanceId = 'redis-guest';

describe('redis guest', () => {
  let root: string;
  let dir: string;
  let bus: BusGuest;
  let rpc: RpcClient<typeof guestContract>;
  const address = `127.93.${randomInt(0, 256)}.${randomInt(2, 254)}`;
  const input = { memoryMb: 256, databases: [], users: [], adminPassword: 'Adm1n-guest-test', access: null };

  before(async () => {
    root = await tempDataDir('coffer-rg-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    const runner = await localRunner();
    const discovery = await engineRegistry.redis.discover([], runner);
    bus = await startBusGuest({
      instance: { instanceId, dir, address, port: 6379, volumeSizeGb: 1 },
      engine: { manager: 'redis', binary: discovery.binaries[0] },
      runner,
      desiredState: 'running',
    });
    rpc = bus.rpc;
  });

  after(async () => {
    await bus?.guest.destroy().catch(() => undefined);
    await bus?.closeBus();
    if (root !== undefined) {
      await killServerProcesses(join(dir, 'data')).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    }
  });

  it('fails a prepare that asks for databases, saying Redis has none', async () => {
    await rpc.prepare({ ...input, databases: [{ name: 'app' }], generation: 1 });
    await until('prepare reports', () => bus.beats.some((b) => b.status === 'FAILED' || b.status === 'HEALTHY'), 60_000);
    const failed = bus.beats.find((b) => b.status === 'FAILED');
    assert.match(failed?.message ?? '', /Redis has no databases/);
    assert.equal(await readAppliedGeneration(dir), 0, 'a failed prepare applied nothing');
  });

  it('prepares when asked for what Redis holds, and answers the calls it supports', async () => {
    bus.beats.length = 0;
    await rpc.prepare({ ...input, users: [{ name: 'app', password: 'App-pass-1', databases: [] }], generation: 1 });
    await until('prepare reports', () => bus.beats.some((b) => b.status === 'FAILED' || b.status === 'HEALTHY'), 60_000);
    assert.ok(bus.beats.some((b) => b.status === 'HEALTHY'), JSON.stringify(bus.beats));
    assert.equal(await readAppliedGeneration(dir), 1, 'prepare records the create’s generation');

    await rpc.createUsers({ users: [{ name: 'second', password: 'Second-pass-1', databases: [] }] });
    assert.deepEqual((await rpc.listUsers({})).users.map((u) => u.name), ['app', 'second']);
    const client = await connectRedis(address, 6379, ['second', 'Second-pass-1']);
    assert.equal(await client.ping(), 'PONG');
    client.disconnect();
    assert.deepEqual(await rpc.enableRoot({ password: 'R00t-pass-1' }), { name: 'default' });
    await rpc.disableRoot({});
    assert.deepEqual(await rpc.resize({ memoryMb: 512, generation: 2 }), { generation: 2 });
    // a change without a generation (an older caller) keeps the recorded one
    assert.deepEqual(await rpc.updateAccess({ access: null }), { generation: 2 });
    // a redelivered older change does not move it back
    assert.deepEqual(await rpc.updateAccess({ access: null, generation: 1 }), { generation: 2 });
  });

  it('applies a configuration group live and answers the effective configuration', async () => {
    assert.deepEqual(await rpc.applyConfiguration({ overrides: { timeout: 60, databases: 2 }, generation: 3 }), { pendingRestart: ['databases'], generation: 3 });
    const { values } = await rpc.getConfiguration({});
    assert.equal(values.timeout, 60);
    assert.equal(values.databases, 2);
    assert.equal(values['maxmemory-policy'], 'noeviction');
    await rejectsWithCode(rpc.applyConfiguration({ overrides: { dir: '/tmp' } }), 'UnprocessableEntity');
    await rejectsWithCode(rpc.applyConfiguration({ overrides: { 'maxmemory-policy': 'bogus-policy' }, generation: 4 }), 'EngineError');
    assert.equal((await rpc.getConfiguration({})).values.timeout, 60, 'the refused apply changed nothing');
    assert.equal(await readAppliedGeneration(dir), 3, 'nor recorded its generation');
    assert.deepEqual(await rpc.applyConfiguration({ overrides: {}, generation: 5 }), { pendingRestart: [], generation: 5 }, 'databases never ran with 2');
  });

  it('answers OperationNotSupported for databases and address rules', async () => {
    await rejectsWithCode(rpc.listDatabases({}), 'OperationNotSupported');
    await rejectsWithCode(rpc.createDatabases({ databases: [{ name: 'd' }] }), 'OperationNotSupported');
    await rejectsWithCode(rpc.updateAccess({ access: { allowedCidrs: ['10.0.0.0/8'] } }), 'OperationNotSupported');
  });
});
