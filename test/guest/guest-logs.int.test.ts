// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import type { RowDataPacket } from 'mysql2/promise';
import { LocalDirectoryStorage, MasterKey } from '../../src/backup/index.js';
import type { GuestLogState, PrepareInput } from '../../src/bus/index.js';
import { engineRegistry, type EngineName } from '../../src/guest/index.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { startBusGuest, type BusGuest } from './bus-guest.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// Trove's guest logs on real engines through their guests: a tenant's log turned on takes the
// tenant's statements (live, and again after a restart), publishing stores what the file gained
// since the last publish under the instance's prefix, discarding removes it, and a file the
// engine's user replaced with a link is refused rather than read.

const container = 'database_logs';
const input: PrepareInput = {
  memoryMb: 256,
  databases: [{ name: 'app' }],
  users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [{ name: 'app' }] }],
  adminPassword: 'logs-Admin-1',
  access: null,
  overrides: {},
};

interface Fixture {
  root: string;
  storage: LocalDirectoryStorage;
  bus: BusGuest;
  address: string;
  dir: string;
}

async function startFixture(manager: EngineName, port: number): Promise<Fixture> {
  const root = await tempDataDir(`coffer-logs-${manager}-`);
  const runner = await localRunner();
  const discovery = await engineRegistry[manager].discover([], runner);
  const binary = discovery.binaries[0];
  assert.ok(binary !== undefined, JSON.stringify(discovery.reports));
  await mkdir(join(root, 'storage'));
  const storage = new LocalDirectoryStorage(join(root, 'storage'));
  const dir = join(root, 'i1');
  await mkdir(dir);
  await chmod(dir, 0o711);
  const address = randomAddress();
  const bus = await startBusGuest({
    instance: { instanceId: 'i1', dir, address, port, volumeSizeGb: 1 },
    engine: { manager, binary },
    runner,
    desiredState: 'running',
    backups: { storage, masterKey: MasterKey.generate() },
  });
  await bus.rpc.prepare(input);
  const reported = (status: string) => bus.beats.some((beat) => beat.status === status);
  await until('prepare reports HEALTHY', () => reported('HEALTHY') || reported('FAILED'), 180_000);
  assert.ok(!reported('FAILED'), JSON.stringify(bus.beats.at(-1)));
  return { root, storage, bus, address, dir };
}

async function published(storage: LocalDirectoryStorage, prefix: string): Promise<string> {
  const objects = await storage.list(container, prefix);
  let text = '';
  for (const object of objects) {
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.get(container, object.name)) chunks.push(chunk as Buffer);
    text += Buffer.concat(chunks).toString('utf8');
  }
  return text;
}

const byName = (logs: GuestLogState[]) => Object.fromEntries(logs.map((log) => [log.name, log]));

describe('guest logs on postgresql', () => {
  let fixture: Fixture;
  const tenant = async (text: string): Promise<Record<string, unknown>[]> => {
    const client = new Client({ host: fixture.address, port: 5432, user: 'tenant', password: 'tenant-Pass-1', database: 'app' });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query(text)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };

  before(async () => {
    fixture = await startFixture('postgresql', 5432);
  });

  after(async () => {
    await fixture?.bus.guest.destroy().catch(() => undefined);
    await fixture?.bus.closeBus();
    if (fixture !== undefined) await cleanUp(fixture.root);
  });

  it('lists the server log as the tenant general log, off until turned on', async () => {
    const { logs } = await fixture.bus.rpc.guestLogs({});
    assert.deepEqual(logs.map((log) => [log.name, log.type, log.status, log.stored]), [['general', 'USER', 'Disabled', false]]);
    assert.equal((await tenant('SHOW log_statement'))[0]!.log_statement, 'none');
  });

  it('refuses enable with disable, and a log the engine lacks', async () => {
    await rejectsWithCode(fixture.bus.rpc.guestLogAction({ name: 'general', enable: true, disable: true, container }), 'BadRequest');
    await rejectsWithCode(fixture.bus.rpc.guestLogAction({ name: 'slow_query', enable: true, container }), 'BadRequest');
  });

  it('turned on, logs every statement at once and after a restart; published, the statements are in the storage', async () => {
    const { log } = await fixture.bus.rpc.guestLogAction({ name: 'general', enable: true, container });
    assert.equal(log.status, 'Enabled');
    assert.equal((await tenant('SHOW log_statement'))[0]!.log_statement, 'all');
    await tenant("SELECT 'marker-before-restart'");
    await fixture.bus.rpc.restart({});
    assert.equal((await tenant('SHOW log_statement'))[0]!.log_statement, 'all', 'a restart keeps it');
    await tenant("SELECT 'marker-after-restart'");

    const after = (await fixture.bus.rpc.guestLogAction({ name: 'general', publish: true, container })).log;
    assert.equal(after.status, 'Published');
    assert.equal(after.pending, 0);
    assert.ok(after.published > 0 && after.stored);
    const text = await published(fixture.storage, 'i1/postgresql-general/');
    assert.match(text, /marker-before-restart/);
    assert.match(text, /marker-after-restart/);
    assert.match(text, /tenant@app LOG:  statement: SELECT 'marker-after-restart'/, 'the statement, with who ran it');
    assert.doesNotMatch(text, /os_admin@/, "the guest's own sessions stay out of the tenant's log");
    assert.equal(after.published, Buffer.byteLength(text), 'published counts the bytes stored');

    // only what is new goes in the next object
    await tenant("SELECT 'marker-second-publish'");
    const before = (await fixture.storage.list(container, 'i1/postgresql-general/')).length;
    assert.equal(byName((await fixture.bus.rpc.guestLogs({})).logs).general!.status, 'Partial');
    await fixture.bus.rpc.guestLogAction({ name: 'general', publish: true, container });
    const objects = await fixture.storage.list(container, 'i1/postgresql-general/');
    assert.equal(objects.length, before + 1);
    const chunks: Buffer[] = [];
    for await (const chunk of await fixture.storage.get(container, objects.at(-1)!.name)) chunks.push(chunk as Buffer);
    const last = Buffer.concat(chunks).toString('utf8');
    assert.match(last, /marker-second-publish/);
    assert.doesNotMatch(last, /marker-before-restart/);
  });

  it('discards what was published, and turned off stops logging statements', async () => {
    const { log } = await fixture.bus.rpc.guestLogAction({ name: 'general', discard: true, disable: true, container });
    assert.equal(log.status, 'Disabled');
    assert.equal(log.published, 0);
    assert.equal(log.stored, false);
    assert.deepEqual(await fixture.storage.list(container, 'i1/postgresql-general/'), []);
    assert.equal((await tenant('SHOW log_statement'))[0]!.log_statement, 'none');
  });

  it('refuses a log file the engine user replaced with a link, and reads nothing through it', async () => {
    const secret = join(fixture.root, 'host-secret');
    await writeFile(secret, 'host-only-secret\n', { mode: 0o600 });
    const logFile = join(fixture.dir, 'postgresql.log');
    await rename(logFile, `${logFile}.moved`);
    await symlink(secret, logFile);
    try {
      await rejectsWithCode(fixture.bus.rpc.guestLogAction({ name: 'general', publish: true, container }), 'BadRequest');
      assert.doesNotMatch(await published(fixture.storage, 'i1/postgresql-general/'), /host-only-secret/);
      assert.equal(await readFile(secret, 'utf8'), 'host-only-secret\n');
    } finally {
      await rename(`${logFile}.moved`, logFile);
    }
  });
});

describe('guest logs on mariadb', () => {
  let fixture: Fixture;
  type Row = RowDataPacket & Record<string, unknown>;
  const tenant = async (text: string): Promise<Row[]> => {
    const connection = await connectTenant({ address: fixture.address, port: 3306, user: 'tenant', password: 'tenant-Pass-1', database: 'app' });
    try {
      return (await connection.query<Row[]>(text))[0];
    } finally {
      await connection.end();
    }
  };
  const variable = async (name: string) => (await tenant(`SHOW GLOBAL VARIABLES LIKE '${name}'`))[0]!.Value;

  before(async () => {
    fixture = await startFixture('mariadb', 3306);
  });

  after(async () => {
    await fixture?.bus.guest.destroy().catch(() => undefined);
    await fixture?.bus.closeBus();
    if (fixture !== undefined) await cleanUpMysqlFamily(fixture.root);
  });

  it('lists the error log as SYS, the general and slow query logs as the tenant own, off', async () => {
    const logs = byName((await fixture.bus.rpc.guestLogs({})).logs);
    assert.deepEqual(Object.keys(logs), ['error', 'general', 'slow_query']);
    assert.deepEqual([logs.error!.type, logs.error!.status], ['SYS', 'Ready']);
    assert.deepEqual([logs.general!.type, logs.general!.status], ['USER', 'Disabled']);
    assert.deepEqual([logs.slow_query!.type, logs.slow_query!.status], ['USER', 'Disabled']);
    assert.equal(await variable('general_log'), 'OFF');
  });

  it('refuses to turn the SYS error log on or off', async () => {
    await rejectsWithCode(fixture.bus.rpc.guestLogAction({ name: 'error', disable: true, container }), 'BadRequest');
  });

  it('publish turns the general log on (live, and kept by a restart) and stores the statements', async () => {
    const first = (await fixture.bus.rpc.guestLogAction({ name: 'general', publish: true, container })).log;
    assert.equal(first.type, 'USER');
    assert.equal(await variable('general_log'), 'ON');
    await tenant("SELECT 'maria-marker-1'");
    await fixture.bus.rpc.restart({});
    assert.equal(await variable('general_log'), 'ON', 'a restart keeps it');
    await tenant("SELECT 'maria-marker-2'");
    const { log } = await fixture.bus.rpc.guestLogAction({ name: 'general', publish: true, container });
    assert.equal(log.status, 'Published');
    const text = await published(fixture.storage, 'i1/mariadb-general/');
    assert.match(text, /maria-marker-1/);
    assert.match(text, /maria-marker-2/);
    // the guest's own sessions (its health check's SELECT 1, its account changes) stay out of the tenant's log
    assert.doesNotMatch(text, /\tQuery\tSELECT 1$/m);
    assert.equal(await variable('slow_query_log'), 'OFF', 'the other log stays off');
  });

  it('publishes the SYS error log without turning anything on', async () => {
    const { log } = await fixture.bus.rpc.guestLogAction({ name: 'error', publish: true, container });
    assert.equal(log.status, 'Published');
    assert.match(await published(fixture.storage, 'i1/mariadb-error/'), /ready for connections/);
  });

  it('turns the slow query log on and off live', async () => {
    await fixture.bus.rpc.guestLogAction({ name: 'slow_query', enable: true, container });
    assert.equal(await variable('slow_query_log'), 'ON');
    const { log } = await fixture.bus.rpc.guestLogAction({ name: 'slow_query', disable: true, container });
    assert.equal(log.status, 'Disabled');
    assert.equal(await variable('slow_query_log'), 'OFF');
  });
});
