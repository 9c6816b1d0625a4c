import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  InProcessTransport,
  serveRpc,
  type RpcClient,
  type Subscription,
} from '../../src/bus/index.js';
import { isCofferError, silentLogger, type ErrorCode } from '../../src/common/index.js';
import { engineRegistry, startGuest, type Guest } from '../../src/guest/index.js';
import { readPostmasterPid } from '../../src/guest/engines/postgresql/postmaster.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { cleanUp, localRunner } from './engine-fixture.js';

// The guest's database, user and root calls over the bus, against a real PostgreSQL: they reach
// the engine's admin objects, a stopped engine is refused with a Trove-shaped error instead of a
// lost connection, and what the engine itself fails with comes back as EngineError.

const instanceId = 'guest-admin';

const hasCode = (code: ErrorCode) => (err: unknown) => {
  assert.ok(isCofferError(err), String(err));
  assert.equal(err.code, code, err.message);
  return true;
};

describe('guest admin calls', () => {
  let root: string;
  let transport: InProcessTransport;
  let conductor: Subscription;
  let guest: Guest;
  let rpc: RpcClient<typeof guestContract>;
  const beats: string[] = [];

  before(async () => {
    root = await tempDataDir('coffer-ga-');
    const dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    const runner = await localRunner();
    const discovery = await engineRegistry.postgresql.discover([], runner);
    transport = new InProcessTransport();
    conductor = await serveRpc(transport, conductorContract, conductorTopic, {
      heartbeat: async ({ status }) => {
        beats.push(status);
      },
      agentHeartbeat: async () => undefined,
    });
    guest = await startGuest({
      instance: { instanceId, dir, address: `127.91.${randomInt(1, 255)}.3`, port: 5432, volumeSizeGb: 1 },
      engine: { manager: 'postgresql', binary: discovery.binaries[0] },
      runner,
      transport,
      logger: silentLogger(),
      heartbeatIntervalMs: 600_000,
      desiredState: 'running',
      saveDesiredState: async () => undefined,
      defaultClientCidrs: ['127.0.0.0/8'],
      rootAllowed: true,
    });
    rpc = createRpcClient(transport, guestContract, guestTopic(instanceId));
    await rpc.prepare({ memoryMb: 256, databases: [{ name: 'app' }], users: [], adminPassword: 'Adm1n-guest-test', access: null });
    await until('prepare reports HEALTHY', () => beats.includes('HEALTHY') || beats.includes('FAILED'), 120_000);
    assert.ok(!beats.includes('FAILED'), 'prepare did not fail');
  });

  after(async () => {
    await guest?.destroy().catch(() => undefined);
    await conductor?.close();
    await transport?.close();
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
    await assert.rejects(rpc.createUsers({ users: [{ name: 'u', password: 'x', databases: [] }] }), hasCode('UserAlreadyExists'));
    await assert.rejects(rpc.deleteDatabase({ name: 'absent' }), hasCode('DatabaseNotFound'));
    assert.deepEqual(await rpc.enableRoot({ password: 'R00t-pass' }), { name: 'postgres' });
    await rpc.disableRoot({});
  });

  it('refuses calls on a stopped engine, and answers them again once started', async () => {
    await rpc.stopDb({});
    await assert.rejects(rpc.listDatabases({}), hasCode('UnprocessableEntity'));
    await assert.rejects(rpc.createUsers({ users: [{ name: 'v', password: 'v-Pass-1', databases: [] }] }), hasCode('UnprocessableEntity'));
    await assert.rejects(rpc.enableRoot({ password: 'R00t-pass' }), hasCode('UnprocessableEntity'));
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
    await assert.rejects(rpc.listDatabases({}), hasCode('EngineError'));
  });
});

describe('guest admin calls an engine does not declare', () => {
  let root: string;
  let transport: InProcessTransport;
  let conductor: Subscription;
  let guest: Guest;

  before(async () => {
    root = await tempDataDir('coffer-gu-');
    const dir = join(root, 'i');
    await mkdir(dir);
    // a prepared instance whose engine is stopped, on a host without its binaries: nothing runs
    await writeFile(join(dir, '.prepare.done'), 'test');
    transport = new InProcessTransport();
    conductor = await serveRpc(transport, conductorContract, conductorTopic, {
      heartbeat: async () => undefined,
      agentHeartbeat: async () => undefined,
    });
    guest = await startGuest({
      instance: { instanceId: 'guest-unsupported', dir, address: '127.91.0.4', port: 6379, volumeSizeGb: 1 },
      engine: { manager: 'redis', binary: undefined },
      runner: await localRunner(),
      transport,
      logger: silentLogger(),
      heartbeatIntervalMs: 600_000,
      desiredState: 'stopped',
      saveDesiredState: async () => undefined,
      defaultClientCidrs: ['127.0.0.0/8'],
      rootAllowed: true,
    });
  });

  after(async () => {
    await guest?.close();
    await conductor?.close();
    await transport?.close();
    if (root !== undefined) await cleanUp(root);
  });

  it('answers OperationNotSupported for what the engine lacks, before anything else', async () => {
    const { capabilities } = engineRegistry.redis;
    assert.deepEqual([capabilities.databases, capabilities.userAccess], [false, false], 'the engine this check relies on');
    const rpc = createRpcClient(transport, guestContract, guestTopic('guest-unsupported'));
    const unsupported = hasCode('OperationNotSupported');
    await assert.rejects(rpc.listDatabases({}), unsupported);
    await assert.rejects(rpc.createDatabases({ databases: [{ name: 'd' }] }), unsupported);
    await assert.rejects(rpc.deleteDatabase({ name: 'd' }), unsupported);
    await assert.rejects(rpc.grantAccess({ user: { name: 'u', host: '%' }, databases: ['d'] }), unsupported);
    await assert.rejects(rpc.revokeAccess({ user: { name: 'u', host: '%' }, database: 'd' }), unsupported);
    // what it has answers that the engine is stopped
    await assert.rejects(rpc.listUsers({}), hasCode('UnprocessableEntity'));
  });
});
