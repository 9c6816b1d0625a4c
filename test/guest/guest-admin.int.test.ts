// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { guestContract, RpcClient } from '../../src/bus/index.js';
import { engineRegistry } from '../../src/guest/index.js';
import { readPostmasterPid } from '../../src/guest/engines/postgresql/postmaster.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { startBusGuest, type BusGuest } from './bus-guest.js';
import { cleanUp, localRunner } from './engine-fixture.js';

// The guest's database, user and root calls over the bus, against a real PostgreSQL: they reach
// the engine's admin objects, a stopped engine is refused with a Trove-shaped error instead of a
// lost connection, and what the engine itself fails with comes back as EngineError.

const instanceId = 'guest-admin';

describe('guest admin calls', () => {
  let root: string;
  let bus: BusGuest;
  let rpc: RpcClient<typeof guestContract>;

  before(async () => {
    root = await tempDataDir('coffer-ga-');
    const dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    const runner = await localRunner();
    const discovery = await engineRegistry.postgresql.discover([], runner);
    bus = await startBusGuest({
      instance: { instanceId, dir, address: `127.91.${randomInt(1, 255)}.3`, port: 5432, volumeSizeGb: 1 },
      engine: { manager: 'postgresql', binary: discovery.binaries[0] },
      runner,
      desiredState: 'running',
    });
    rpc = bus.rpc;
    await rpc.prepare({ memoryMb: 256, databases: [{ name: 'app' }], users: [], adminPassword: 'Adm1n-guest-test', access: null });
    const reported = (status: string) => bus.beats.some((beat) => beat.status === status);
    await until('prepare reports HEALTHY', () => reported('HEALTHY') || reported('FAILED'), 120_000);
    assert.ok(!reported('FAILED'), 'prepare did not fail');
  });

  after(async () => {
    await bus?.guest.destroy().catch(() => undefined);
    await bus?.closeBus();
    if (root !== undefined) await cleanUp(root);
  });

  it('reaches the engine: databases, users and root', async () => {
    await rpc.createDatabases({ databases: [{ name: 'more "db"' }] });
    assert.deepEqual(
      (await rpc.listDatabases({})).databases.map((d) => d.name),
      ['app', 'more "db"'],
    );
    await rpc.createUsers({ users: [{ name: 'u', password: 'u-Pass-1', databases: [{ name: 'app' }] }] });
    assert.deepEqual((await rpc.listUsers({})).users, [{ name: 'u', host: '%', databases: [{ name: 'app' }] }]);
    await rejectsWithCode(rpc.createUsers({ users: [{ name: 'u', password: 'x', databases: [] }] }), 'UserAlreadyExists');
    await rejectsWithCode(rpc.deleteDatabase({ name: 'absent' }), 'DatabaseNotFound');
    assert.deepEqual(await rpc.enableRoot({ password: 'R00t-pass' }), { name: 'root' });
    await rpc.disableRoot({});
  });

  it('refuses calls on a stopped engine, and answers them again once started', async () => {
    await rpc.stopDb({});
    await rejectsWithCode(rpc.listDatabases({}), 'UnprocessableEntity');
    await rejectsWithCode(rpc.createUsers({ users: [{ name: 'v', password: 'v-Pass-1', databases: [] }] }), 'UnprocessableEntity');
    await rejectsWithCode(rpc.enableRoot({ password: 'R00t-pass' }), 'UnprocessableEntity');
    await rpc.startDb({});
    assert.equal((await rpc.listUsers({})).users.length, 1);
  });

  it('answers EngineError when the engine fails under a call', async () => {
    // killed behind the guest's back: no supervision check runs before the call
    const lock = await readPostmasterPid(join(root, 'i', 'data'));
    assert.ok(lock !== undefined);
    process.kill(lock.pid, 'SIGKILL');
    await until('the postmaster is gone', () => {
      try {
        process.kill(lock.pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    await rejectsWithCode(rpc.listDatabases({}), 'EngineError');
  });
});

describe('guest admin calls an engine does not declare', () => {
  let root: string;
  let bus: BusGuest;

  before(async () => {
    root = await tempDataDir('coffer-gu-');
    const dir = join(root, 'i');
    await mkdir(dir);
    // a prepared instance whose engine is stopped, on a host without its binaries: nothing runs
    await writeFile(join(dir, '.prepare.done'), 'test');
    bus = await startBusGuest({
      instance: { instanceId: 'guest-unsupported', dir, address: '127.91.0.4', port: 6379, volumeSizeGb: 1 },
      engine: { manager: 'redis', binary: undefined },
      runner: await localRunner(),
      desiredState: 'stopped',
    });
  });

  after(async () => {
    await bus?.guest.close();
    await bus?.closeBus();
    if (root !== undefined) await cleanUp(root);
  });

  it('answers OperationNotSupported for what the engine lacks, before anything else', async () => {
    const { capabilities } = engineRegistry.redis;
    assert.deepEqual([capabilities.databases, capabilities.userAccess], [false, false], 'the engine this check relies on');
    const { rpc } = bus;
    await rejectsWithCode(rpc.listDatabases({}), 'OperationNotSupported');
    await rejectsWithCode(rpc.createDatabases({ databases: [{ name: 'd' }] }), 'OperationNotSupported');
    await rejectsWithCode(rpc.deleteDatabase({ name: 'd' }), 'OperationNotSupported');
    await rejectsWithCode(rpc.grantAccess({ user: { name: 'u', host: '%' }, databases: ['d'] }), 'OperationNotSupported');
    await rejectsWithCode(rpc.revokeAccess({ user: { name: 'u', host: '%' }, database: 'd' }), 'OperationNotSupported');
    // what it has answers that the engine is stopped
    await rejectsWithCode(rpc.listUsers({}), 'UnprocessableEntity');
  });
});
