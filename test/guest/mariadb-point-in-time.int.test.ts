// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { LocalDirectoryStorage, MasterKey, newProjectKey, wrapKey } from '../../src/backup/index.js';
import type { PrepareInput, RestoreLinkSpec } from '../../src/bus/index.js';
import { engineRegistry, type EngineBinary } from '../../src/guest/index.js';
import { withAdminConnection } from '../../src/guest/engines/mysql-family/connection.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { fullBackup, startBusGuest, type BusGuest } from './bus-guest.js';
import { localRunner, randomAddress } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// Point-in-time recovery on a real MariaDB through its guest: the binary log a full backup asked
// for is archived (closed files shipped sealed to the storage, with the time of each one's last
// commit), the guest reports how far the archive reaches, and a new instance restored to a
// moment between two commits holds exactly the rows committed before it. Binlog times have one
// second's precision: the rows are a little over two seconds apart.

const projectId = 'project-pitr';
const container = 'backups';
const prefix = 'source/binlog';

async function hostDir(path: string): Promise<string> {
  await mkdir(path);
  await chmod(path, 0o711);
  return path;
}

type Row = RowDataPacket & Record<string, unknown>;

describe('mariadb point-in-time recovery', () => {
  let root: string;
  let runner: LocalProcessRunner;
  let binary: EngineBinary;
  let storage: LocalDirectoryStorage;
  const masterKey = MasterKey.generate();
  const wrappedKey = wrapKey(masterKey, newProjectKey(), projectId);
  const guests: BusGuest[] = [];
  let source: BusGuest & { address: string; dir: string };
  let base: RestoreLinkSpec;
  /** every row's id and commit time, in commit order */
  const rows: { id: number; at: Date }[] = [];

  const input = (adminPassword: string, restore?: PrepareInput['restore']): PrepareInput => ({
    memoryMb: 256,
    databases: restore === undefined ? [{ name: 'app' }] : [],
    users: restore === undefined ? [{ name: 'tenant', password: 'tenant-Pass-1', host: '%', databases: [{ name: 'app' }] }] : [],
    adminPassword,
    access: null,
    overrides: {},
    ...(restore === undefined ? {} : { restore }),
  });

  async function guest(name: string): Promise<BusGuest & { address: string; dir: string }> {
    const dir = await hostDir(join(root, name));
    const address = randomAddress();
    const bus = await startBusGuest({
      instance: { instanceId: name, dir, address, port: 3306, volumeSizeGb: 1 },
      engine: { manager: 'mariadb', binary },
      runner,
      desiredState: 'running',
      backups: { storage, masterKey },
      walShipIntervalMs: 200,
    });
    guests.push(bus);
    return Object.assign(bus, { address, dir });
  }

  async function prepared(bus: BusGuest, prepareInput: PrepareInput): Promise<void> {
    await bus.rpc.prepare(prepareInput);
    const reported = (status: string) => bus.beats.some((beat) => beat.status === status);
    await until('prepare reports HEALTHY', () => reported('HEALTHY') || reported('FAILED'), 180_000);
    assert.ok(!reported('FAILED'), JSON.stringify(bus.beats.at(-1)));
  }

  async function tenant(address: string, text: string): Promise<Row[]> {
    const connection = await connectTenant({ address, port: 3306, user: 'tenant', password: 'tenant-Pass-1', database: 'app' });
    try {
      const [result] = await connection.query<Row[]>(text);
      return result;
    } finally {
      await connection.end();
    }
  }

  async function insertRow(): Promise<void> {
    const connection = await connectTenant({ address: source.address, port: 3306, user: 'tenant', password: 'tenant-Pass-1', database: 'app' });
    try {
      await connection.query('INSERT INTO events () VALUES ()');
      const [found] = await connection.query<Row[]>('SELECT id, UNIX_TIMESTAMP(at) AS ts FROM events WHERE id = LAST_INSERT_ID()');
      rows.push({ id: Number(found[0]!.id), at: new Date(Math.round(Number(found[0]!.ts) * 1000)) });
    } finally {
      await connection.end();
    }
  }

  /** closes the active binary log (as the guest does after a minute) and waits until the guest reports the archive reaching `time` */
  async function archivedThrough(time: Date): Promise<void> {
    await withAdminConnection({ socketPath: join(source.dir, 'data', 'mysqld.sock'), password: 'source-Admin-1' }, (c) => c.query('FLUSH BINARY LOGS'));
    await until('the archive reaches the last commit', () => source.walArchived.some((t) => Date.parse(t) >= time.getTime()), 60_000);
  }

  async function restoredTo(name: string, time: Date): Promise<number[]> {
    const bus = await guest(name);
    await prepared(bus, input(`${name}-Admin-1`, { projectId, chain: [base], pointInTime: { time: time.toISOString(), container, prefix, wrappedKey } }));
    const found = await tenant(bus.address, 'SELECT id FROM events ORDER BY id');
    return found.map((r) => Number(r.id));
  }

  before(async () => {
    root = await tempDataDir('coffer-mariadb-pitr-');
    runner = await localRunner();
    const discovery = await engineRegistry.mariadb.discover([], runner);
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    await mkdir(join(root, 'storage'));
    storage = new LocalDirectoryStorage(join(root, 'storage'));
    await storage.ensureContainer(container);

    source = await guest('source');
    await prepared(source, input('source-Admin-1'));
    await tenant(source.address, 'CREATE TABLE events (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL DEFAULT NOW(6), payload TEXT)');
    await insertRow();

    base = await fullBackup(source, storage, { backupId: 'b1', container, objectName: 'b1.mariadb.zst.enc', wrappedKey, projectId, walPrefix: prefix });

    // rows after the backup, each in a second of its own (binlog times are whole seconds)
    await sleep(2100);
    for (let i = 0; i < 5; i += 1) {
      await insertRow();
      await sleep(2100);
    }
    await archivedThrough(rows.at(-1)!.at);
  });

  after(async () => {
    for (const bus of guests) {
      await bus.guest.destroy().catch(() => undefined);
      await bus.closeBus();
    }
    if (root !== undefined) await cleanUpMysqlFamily(root);
  });

  it('records with the backup that the binary log is archived from it on, and where', () => {
    assert.equal(base.facts['wal-archiving'], 'on');
    assert.equal(base.facts['wal-container'], container);
    assert.equal(base.facts['wal-prefix'], prefix);
    assert.match(base.facts['wal-start']!, /^coffer-binlog\.\d{6}$/);
    assert.equal(base.facts['wal-start'], base.facts['binlog-file']);
    assert.match(base.facts['binlog-position']!, /^\d+$/);
    assert.ok(Date.parse(base.facts['completed-at']!) <= rows[1]!.at.getTime());
  });

  it('ships each closed binary log file sealed, with the time of its last commit, and purges it', async () => {
    const objects = await storage.list(container, `${prefix}/`);
    const files = objects.filter((o) => /\/coffer-binlog\.\d{6}$/.test(o.name));
    assert.ok(files.length >= 1, JSON.stringify(objects.map((o) => o.name)));
    const withCommits = files.filter((o) => o.metadata['last-commit'] !== undefined);
    const newest = Math.max(...withCommits.map((o) => Date.parse(o.metadata['last-commit']!)));
    // whole seconds
    assert.ok(newest >= Math.floor(rows.at(-1)!.at.getTime() / 1000) * 1000, `last commit ${new Date(newest).toISOString()} vs ${rows.at(-1)!.at.toISOString()}`);
    // sealed: no binlog magic in what is stored
    const body = await storage.get(container, files[0]!.name);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    assert.ok(!Buffer.concat(chunks).subarray(0, 4).equals(Buffer.from([0xfe, 0x62, 0x69, 0x6e])), 'stored encrypted');
    const logs = await withAdminConnection({ socketPath: join(source.dir, 'data', 'mysqld.sock'), password: 'source-Admin-1' }, async (c) => {
      const [found] = await c.query<Row[]>('SHOW BINARY LOGS');
      return found.map((r) => String(r.Log_name));
    });
    const shipped = new Set(files.map((o) => o.name.slice(prefix.length + 1)));
    assert.ok(logs.every((name) => !shipped.has(name)), `still on the server: ${logs.join(', ')}`);
  });

  it('restores to a moment between two commits: exactly the rows committed before it', async () => {
    // between the 3rd and 4th row
    const [before3, after3] = [rows[2]!, rows[3]!];
    const moment = new Date((before3.at.getTime() + after3.at.getTime()) / 2);
    const expected = rows.filter((r) => r.at <= moment).map((r) => r.id);
    assert.equal(expected.length, 3);
    assert.deepEqual(await restoredTo('at-moment', moment), expected);
  });

  it('restores to the latest moment archived: every row', async () => {
    const latest = new Date(Math.max(...source.walArchived.map((t) => Date.parse(t))));
    assert.deepEqual(await restoredTo('at-latest', latest), rows.map((r) => r.id));
  });

  it('refuses a moment before the backup completed', async () => {
    const bus = await guest('too-early');
    const early = new Date(Date.parse(base.facts['completed-at']!) - 60_000);
    await bus.rpc.prepare(input('early-Admin-1', { projectId, chain: [base], pointInTime: { time: early.toISOString(), container, prefix, wrappedKey } }));
    await until('prepare fails', () => bus.beats.some((b) => b.status === 'FAILED'), 60_000);
    assert.match(bus.beats.find((b) => b.status === 'FAILED')!.message ?? '', /later moment only/);
  });
});
