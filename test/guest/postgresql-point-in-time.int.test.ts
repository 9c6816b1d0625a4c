// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { LocalDirectoryStorage, MasterKey, newProjectKey, wrapKey } from '../../src/backup/index.js';
import type { PrepareInput, RestoreLinkSpec } from '../../src/bus/index.js';
import { engineRegistry, type EngineBinary } from '../../src/guest/index.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { fullBackup, startBusGuest, type BusGuest } from './bus-guest.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';

// Point-in-time recovery on a real PostgreSQL through its guest: the WAL a full backup asked for
// is archived (basic_archive into the spool, shipped sealed to the storage by the guest, with the
// time of each segment's last commit), the guest reports how far the archive reaches, and a new
// instance restored to a moment between two commits holds exactly the rows committed before it.

const projectId = 'project-pitr';
const container = 'backups';
const prefix = 'source/wal';

async function hostDir(path: string): Promise<string> {
  await mkdir(path);
  await chmod(path, 0o711);
  return path;
}

describe('postgresql point-in-time recovery', () => {
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
    users: restore === undefined ? [{ name: 'tenant', password: 'tenant-Pass-1', databases: [{ name: 'app' }] }] : [],
    adminPassword,
    access: null,
    overrides: {},
    ...(restore === undefined ? {} : { restore }),
  });

  async function guest(name: string): Promise<BusGuest & { address: string; dir: string }> {
    const dir = await hostDir(join(root, name));
    const address = randomAddress();
    const bus = await startBusGuest({
      instance: { instanceId: name, dir, address, port: 5432, volumeSizeGb: 1 },
      engine: { manager: 'postgresql', binary },
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
    await until('prepare reports HEALTHY', () => reported('HEALTHY') || reported('FAILED'), 120_000);
    assert.ok(!reported('FAILED'), JSON.stringify(bus.beats.at(-1)));
  }

  async function sql<T extends Record<string, unknown>>(options: { host: string; user: string; password: string; database: string }, text: string): Promise<T[]> {
    const client = new Client({ ...options, port: 5432, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<T>(text)).rows;
    } finally {
      await client.end();
    }
  }
  const tenant = (address: string, text: string) => sql({ host: address, user: 'tenant', password: 'tenant-Pass-1', database: 'app' }, text);
  const admin = (dir: string, password: string, text: string) => sql({ host: join(dir, 'data'), user: 'os_admin', password, database: 'postgres' }, text);

  async function insertRow(): Promise<void> {
    const [row] = await tenant(source.address, 'INSERT INTO events DEFAULT VALUES RETURNING id, clock_timestamp() AS at');
    rows.push({ id: Number(row!.id), at: row!.at as Date });
  }

  /** switches the WAL segment (as archive_timeout would) and waits until the guest reports the archive reaching `time` */
  async function archivedThrough(time: Date): Promise<void> {
    await admin(source.dir, 'source-Admin-1', 'SELECT pg_switch_wal()');
    await until('the archive reaches the last commit', () => source.walArchived.some((t) => Date.parse(t) >= time.getTime()), 60_000);
  }

  async function restoredTo(name: string, time: Date): Promise<number[]> {
    const bus = await guest(name);
    await prepared(bus, input(`${name}-Admin-1`, { projectId, chain: [base], pointInTime: { time: time.toISOString(), container, prefix, wrappedKey } }));
    const found = await tenant(bus.address, 'SELECT id FROM events ORDER BY id');
    return found.map((r) => Number(r.id));
  }

  before(async () => {
    root = await tempDataDir('coffer-pitr-');
    runner = await localRunner();
    const discovery = await engineRegistry.postgresql.discover([], runner);
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    await mkdir(join(root, 'storage'));
    storage = new LocalDirectoryStorage(join(root, 'storage'));
    await storage.ensureContainer(container);

    source = await guest('source');
    await prepared(source, input('source-Admin-1'));
    await tenant(source.address, 'CREATE TABLE events (id serial PRIMARY KEY, payload text DEFAULT repeat(md5(random()::text), 20))');
    await insertRow();

    base = await fullBackup(source, storage, { backupId: 'b1', container, objectName: 'b1.postgresql.zst.enc', wrappedKey, projectId, walPrefix: prefix });

    // rows after the backup, a few apart, so that a moment between two of them is easy to name
    await sleep(1100);
    for (let i = 0; i < 6; i += 1) {
      await insertRow();
      await sleep(150);
    }
    await archivedThrough(rows.at(-1)!.at);
  });

  after(async () => {
    for (const bus of guests) {
      await bus.guest.destroy().catch(() => undefined);
      await bus.closeBus();
    }
    if (root !== undefined) await cleanUp(root);
  });

  it('records with the backup that the WAL is archived from it on, and where', () => {
    assert.equal(base.facts['wal-archiving'], 'on');
    assert.equal(base.facts['wal-container'], container);
    assert.equal(base.facts['wal-prefix'], prefix);
    assert.ok(Date.parse(base.facts['completed-at']!) <= rows[1]!.at.getTime());
  });

  it('ships each finished segment sealed, with the time of its last commit, and empties the spool', async () => {
    const objects = await storage.list(container, `${prefix}/`);
    const segments = objects.filter((o) => /\/[0-9A-F]{24}$/.test(o.name));
    assert.ok(segments.length >= 2, JSON.stringify(objects.map((o) => o.name)));
    const withCommits = segments.filter((o) => o.metadata['last-commit'] !== undefined);
    assert.ok(withCommits.length >= 1);
    const newest = Math.max(...withCommits.map((o) => Date.parse(o.metadata['last-commit']!)));
    assert.ok(newest >= rows.at(-1)!.at.getTime() - 1, `last commit ${new Date(newest).toISOString()} vs ${rows.at(-1)!.at.toISOString()}`);
    // sealed: no plain WAL page header in what is stored
    const body = await storage.get(container, segments[0]!.name);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    assert.ok(!Buffer.concat(chunks).subarray(0, 2).equals(Buffer.from([0x10, 0xd1])), 'stored encrypted');
    await until('the spool is empty', async () => (await readdir(join(source.dir, 'wal-spool'))).filter((n) => !n.startsWith('archtemp')).length === 0, 10_000);
  });

  it('restores to a moment between two commits: exactly the rows committed before it', async () => {
    // between the 4th and 5th row
    const [before4, after4] = [rows[3]!, rows[4]!];
    const moment = new Date((before4.at.getTime() + after4.at.getTime()) / 2);
    assert.ok(moment > before4.at && moment < after4.at);
    const expected = rows.filter((r) => r.at <= moment).map((r) => r.id);
    assert.deepEqual(await restoredTo('at-moment', moment), expected);
  });

  it('restores to a moment after the last commit archived: every row', async () => {
    const latest = new Date(Math.max(...source.walArchived.map((t) => Date.parse(t))));
    assert.deepEqual(await restoredTo('at-latest', latest), rows.map((r) => r.id));
  });

  it('an incremental backup is the WAL since its parent: restored with its full backup, it holds the rows committed before it', async () => {
    await source.rpc.createBackup({
      target: { backupId: 'b2', container, objectName: 'b2.postgresql.zst.enc', wrappedKey },
      kind: 'incremental',
      parentFacts: base.facts,
      projectId,
    });
    await until('the incremental ends', () => source.backupReports.some((r) => r.backupId === 'b2' && (r.state === 'COMPLETED' || r.state === 'FAILED')), 120_000);
    const done = source.backupReports.find((r) => r.backupId === 'b2' && r.state === 'COMPLETED');
    assert.ok(done?.facts !== undefined, JSON.stringify(source.backupReports.filter((r) => r.backupId === 'b2')));
    assert.equal(done.facts['wal-prefix'], prefix);
    assert.equal(done.facts['wal-start'], base.facts['wal-start']);
    assert.match(done.facts['restore-point']!, /^coffer-/);
    const included = rows.map((r) => r.id);
    // committed after the incremental: not in its restore
    await insertRow();
    const stored = await storage.head(container, 'b2.postgresql.zst.enc');
    assert.ok(stored !== undefined);
    const incremental: RestoreLinkSpec = { backupId: 'b2', container, objectName: 'b2.postgresql.zst.enc', sha256: stored.sha256, wrappedKey, kind: 'incremental', facts: done.facts };
    const bus = await guest('from-incremental');
    await prepared(bus, input('inc-Admin-1', { projectId, chain: [base, incremental], pointInTime: { container, prefix, wrappedKey } }));
    const found = await tenant(bus.address, 'SELECT id FROM events ORDER BY id');
    assert.deepEqual(found.map((r) => Number(r.id)), included);
  });

  it('refuses a moment before the backup completed', async () => {
    const bus = await guest('too-early');
    const early = new Date(Date.parse(base.facts['completed-at']!) - 60_000);
    await bus.rpc.prepare(input('early-Admin-1', { projectId, chain: [base], pointInTime: { time: early.toISOString(), container, prefix, wrappedKey } }));
    await until('prepare fails', () => bus.beats.some((b) => b.status === 'FAILED'), 60_000);
    assert.match(bus.beats.find((b) => b.status === 'FAILED')!.message ?? '', /later moment only/);
  });
});
