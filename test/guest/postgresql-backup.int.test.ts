import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { decodeBackup, newProjectKey, startBackupEncoding } from '../../src/backup/index.js';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineBinary, type EngineDriver } from '../../src/guest/index.js';
import type { BackupFacts, RestoreLink } from '../../src/guest/engines/engine.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';
import { tarArchive } from './tar-archive.js';

// What PostgreSQL's backups and restores must get right beyond the shared backup suite
// (engine-backup.suite.ts): the facts a base backup records, the version a restore accepts,
// and what of its source a restored cluster must not keep (ALTER SYSTEM settings,
// superusers, root's password, the way out of its data directory).

const lsn = /^[0-9A-F]+\/[0-9A-F]+$/;

function lsnValue(text: string): bigint {
  const [high, low] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

describe('postgresql backup and restore', () => {
  let root: string;
  let binary: EngineBinary;
  const drivers: EngineDriver[] = [];
  const input: PrepareInput = {
    memoryMb: 256,
    databases: [{ name: 'app' }],
    users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [{ name: 'app' }] }],
    adminPassword: 'source-Admin-1',
    access: null,
    overrides: {},
  };
  let source: { driver: EngineDriver; address: string };
  let backup: Buffer;
  let facts: BackupFacts;

  async function instance(name: string): Promise<{ driver: EngineDriver; address: string; dir: string }> {
    const dir = join(root, name);
    await mkdir(dir);
    await chmod(dir, 0o711);
    const address = randomAddress();
    const driver = engineRegistry.postgresql.create({
      placement: { instanceId: name, dir, address, port: 5432 },
      binary,
      runner: await localRunner(),
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    drivers.push(driver);
    return { driver, address, dir };
  }

  async function query<T extends Record<string, unknown>>(address: string, user: string, password: string, sql: string, database = 'app'): Promise<T[]> {
    const client = new Client({ host: address, port: 5432, user, password, database, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  const full = (stream: () => Readable, linkFacts: BackupFacts = facts): RestoreLink[] => [
    { kind: 'full', facts: linkFacts, open: async () => stream() },
  ];

  before(async () => {
    root = await tempDataDir('coffer-pgbk-');
    const discovery = await engineRegistry.postgresql.discover([], await localRunner());
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    source = await instance('source');
    await source.driver.prepare(input);
    await source.driver.root!.enable('root-Pass-1');
    // what a tenant's root could leave in its cluster: settings naming the source, a superuser of its own
    await query(source.address, 'root', 'root-Pass-1', `ALTER SYSTEM SET listen_addresses = '${source.address}'`);
    await query(source.address, 'root', 'root-Pass-1', "ALTER SYSTEM SET work_mem = '7MB'");
    await query(source.address, 'root', 'root-Pass-1', "CREATE ROLE boss WITH SUPERUSER LOGIN PASSWORD 'boss-Pass-1'");
    await query(source.address, 'tenant', 'tenant-Pass-1', "CREATE TABLE t AS SELECT 'kept'::text AS v");
    const run = await source.driver.backup!.start({ signal: new AbortController().signal });
    const chunks: Buffer[] = [];
    for await (const chunk of run.stream) chunks.push(chunk as Buffer);
    backup = Buffer.concat(chunks);
    facts = await run.finished;
  });

  after(async () => {
    for (const driver of drivers) await driver.stop().catch(() => undefined);
    await cleanUp(root);
  });

  it('records where the backup starts and ends, on which timeline, of which cluster and major version', () => {
    assert.equal(source.driver.backup!.incremental, false);
    assert.equal(facts.format, 'tar');
    assert.equal(facts.version, binary.versionName);
    assert.equal(facts.timeline, '1');
    assert.match(facts['start-lsn']!, lsn);
    assert.match(facts['stop-lsn']!, lsn);
    assert.ok(lsnValue(facts['stop-lsn']!) > lsnValue(facts['start-lsn']!), JSON.stringify(facts));
    assert.match(facts['system-identifier']!, /^\d{10,}$/);
  });

  it("given the compressor's input, pg_basebackup writes into zstd itself: the facts come from its log, and that backup restores", async () => {
    const key = newProjectKey();
    const encoding = startBackupEncoding({ compression: 'zstd', key });
    const run = await source.driver.backup!.start({ signal: new AbortController().signal, output: encoding.input });
    assert.equal(run.wroteToOutput, true);
    const body = encoding.fedDirectly();
    run.stream.resume();
    const stored: Buffer[] = [];
    for await (const chunk of body) stored.push(chunk as Buffer);
    const direct = await run.finished;
    assert.equal(direct.version, facts.version);
    assert.equal(direct['system-identifier'], facts['system-identifier']);
    assert.ok(lsnValue(direct['start-lsn']!) > lsnValue(facts['stop-lsn']!), 'a later backup starts after the first one ended');
    assert.ok(lsnValue(direct['stop-lsn']!) > lsnValue(direct['start-lsn']!), JSON.stringify(direct));
    const restored = await instance('restored-direct');
    await restored.driver.prepare(
      { ...input, adminPassword: 'direct-Admin-1' },
      undefined,
      full(() => decodeBackup(Readable.from(stored), { key }), direct),
    );
    const [row] = await query<{ v: string }>(restored.address, 'tenant', 'tenant-Pass-1', 'SELECT v FROM t');
    assert.equal(row?.v, 'kept');
    await restored.driver.stop();
  });

  it('a pg_basebackup whose output breaks midway (its compressor gone) rejects finished', async () => {
    // a reader that takes nothing: the tool blocks on a full pipe until the reader dies
    const sink = spawn('/bin/sleep', ['600'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const gone = once(sink, 'close');
    const run = await source.driver.backup!.start({ signal: new AbortController().signal, output: sink.stdin });
    sink.stdin.destroy();
    run.stream.resume();
    const settled = run.finished.then(
      () => undefined,
      (err: unknown) => err,
    );
    // once pg_basebackup is writing (its connection shows up), the reader goes
    for (let i = 0; i < 100; i++) {
      const rows = await query(source.address, 'root', 'root-Pass-1', "SELECT 1 FROM pg_stat_activity WHERE application_name = 'coffer-backup'", 'postgres');
      if (rows.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    sink.kill('SIGKILL');
    await gone;
    const err = await settled;
    assert.equal((err as { code?: string } | undefined)?.code, 'EngineError', String(err));
    // the tool's own failure, not facts missing from a log that ended early
    assert.match((err as Error).message, /^pg_basebackup (exited with code|was killed by)/);
  });

  it("keeps the WAL the backup needs while a busy server recycles its segments, and holds none once it ended", async () => {
    const root = (sql: string) => query(source.address, 'root', 'root-Pass-1', sql, 'postgres');
    // a small WAL: every checkpoint below recycles the segments written since the backup began
    await root("ALTER SYSTEM SET max_wal_size = '32MB'");
    await root("ALTER SYSTEM SET min_wal_size = '32MB'");
    await root('SELECT pg_reload_conf()');
    try {
      await query(source.address, 'tenant', 'tenant-Pass-1', 'CREATE TABLE busy AS SELECT g, md5(g::text) AS m FROM generate_series(1, 100000) g');
      const run = await source.driver.backup!.start({ signal: new AbortController().signal });
      const reader = run.stream[Symbol.asyncIterator]();
      // the tool has begun (its first bytes are here) and waits on its full pipe while the server writes on
      const first = await reader.next();
      const chunks: Buffer[] = [first.value as Buffer];
      for (let i = 0; i < 4; i++) {
        await query(source.address, 'tenant', 'tenant-Pass-1', 'UPDATE busy SET m = md5(m)');
        await root('CHECKPOINT');
      }
      for (let next = await reader.next(); next.done !== true; next = await reader.next()) chunks.push(next.value as Buffer);
      const busyFacts = await run.finished;
      assert.deepEqual(await root('SELECT slot_name FROM pg_replication_slots'), []);
      const restored = await instance('restored-busy');
      await restored.driver.prepare({ ...input, adminPassword: 'busy-Admin-1' }, undefined, full(() => Readable.from(chunks), busyFacts));
      const [count] = await query<{ n: number }>(restored.address, 'tenant', 'tenant-Pass-1', 'SELECT count(*)::int AS n FROM busy');
      assert.equal(count?.n, 100000);
      await restored.driver.stop();
    } finally {
      await root('ALTER SYSTEM RESET max_wal_size');
      await root('ALTER SYSTEM RESET min_wal_size');
      await root('SELECT pg_reload_conf()');
    }
  });

  it('refuses an incremental backup: PostgreSQL 15 backups are full ones', async () => {
    await rejectsWithCode(source.driver.backup!.start({ parent: facts, signal: new AbortController().signal }), 'OperationNotSupported');
  });

  it('refuses to restore a backup of another major version, before anything is written', async () => {
    const other = await instance('other-version');
    await rejectsWithCode(other.driver.prepare(input, undefined, full(() => Readable.from([backup]), { ...facts, version: '14' })), 'BadRequest');
    await rejectsWithCode(
      other.driver.prepare(input, undefined, [...full(() => Readable.from([backup])), ...full(() => Readable.from([backup]))]),
      'BadRequest',
    );
    assert.deepEqual(await readdir(other.dir), []);
    assert.equal(await other.driver.processId(), undefined);
  });

  it('restores without the source’s ALTER SYSTEM settings, superusers or root password', async () => {
    const restored = await instance('restored');
    await restored.driver.prepare({ ...input, adminPassword: 'restored-Admin-1' }, undefined, full(() => Readable.from([backup])));
    // listening on its own address (the source's is taken: a carried listen_addresses would fail the start)
    const [row] = await query<{ v: string; work_mem: string }>(restored.address, 'tenant', 'tenant-Pass-1', 'SELECT v, current_setting($$work_mem$$) AS work_mem FROM t');
    assert.equal(row?.v, 'kept');
    assert.notEqual(row?.work_mem, '7MB');
    assert.equal((await stat(join(restored.dir, 'data', 'postgresql.auto.conf')).catch(() => undefined))?.isFile() ?? false, false);
    // the tenant's superuser is one no more; root is locked out until enabled anew
    const [boss] = await query<{ rolsuper: boolean }>(restored.address, 'boss', 'boss-Pass-1', 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user', 'postgres');
    assert.equal(boss?.rolsuper, false);
    await assert.rejects(query(restored.address, 'root', 'root-Pass-1', 'SELECT 1'));
    // the source is as it was
    const [sourceBoss] = await query<{ rolsuper: boolean }>(source.address, 'boss', 'boss-Pass-1', 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user', 'postgres');
    assert.equal(sourceBoss?.rolsuper, true);
    await restored.driver.stop();
  });

  it("a verification's scratch instance (clients from 0.0.0.0/32 only) lets no restored account in; the guest's check runs", async () => {
    const scratch = await instance('scratch');
    await scratch.driver.prepare(
      { ...input, databases: [], users: [], adminPassword: 'scratch-Admin-1', access: { allowedCidrs: ['0.0.0.0/32'] } },
      undefined,
      full(() => Readable.from([backup])),
    );
    await assert.rejects(query(scratch.address, 'tenant', 'tenant-Pass-1', 'SELECT 1'), /no pg_hba\.conf entry/);
    await assert.rejects(query(scratch.address, 'boss', 'boss-Pass-1', 'SELECT 1', 'postgres'), /no pg_hba\.conf entry/);
    const checked = await scratch.driver.backup!.checkData(new AbortController().signal);
    assert.equal(checked.checks.errors, 0, JSON.stringify(checked));
    await scratch.driver.stop();
  });

  it("the data check (pg_amcheck) reports a restored table whose page was damaged, and a sound one as sound", async () => {
    const restored = await instance('damaged');
    await restored.driver.prepare({ ...input, adminPassword: 'damaged-Admin-1' }, undefined, full(() => Readable.from([backup])));
    await query(restored.address, 'tenant', 'tenant-Pass-1', "CREATE TABLE rows AS SELECT g AS id, repeat('x', 100) AS note FROM generate_series(1, 2000) g");
    await query(restored.address, 'tenant', 'tenant-Pass-1', 'CREATE INDEX rows_id ON rows (id)');
    await query(restored.address, 'tenant', 'tenant-Pass-1', 'CHECKPOINT').catch(() => undefined);
    const sound = await restored.driver.backup!.checkData(new AbortController().signal);
    assert.deepEqual(sound.problems, []);
    assert.equal(sound.checks.errors, 0);
    assert.ok(sound.checks.tables! >= 2 && sound.checks.indexes! >= 1 && sound.checks.databases! >= 2, JSON.stringify(sound.checks));
    const [{ path } = { path: '' }] = await query<{ path: string }>(restored.address, 'tenant', 'tenant-Pass-1', "SELECT pg_relation_filepath('rows') AS path");
    await restored.driver.stop();
    // the middle of the first page's tuples, as a failing disk would leave it
    const file = join(restored.dir, 'data', path);
    const bytes = await readFile(file);
    bytes.fill(0xff, 4096, 4096 + 512);
    await writeFile(file, bytes);
    await restored.driver.start();
    const damaged = await restored.driver.backup!.checkData(new AbortController().signal);
    assert.ok(damaged.checks.errors! > 0, JSON.stringify(damaged));
    assert.ok(damaged.problems.some((p) => p.includes('rows')), damaged.problems.join('\n'));
    await restored.driver.stop();
  });

  it('refuses a backup whose tar was cut short between two entries (which tar itself accepts), before the server runs on it', async () => {
    // where each entry's header starts: a cut there leaves a tar that unpacks without complaint
    const starts: number[] = [];
    for (let at = 0; at + 512 <= backup.length && backup[at] !== 0; ) {
      starts.push(at);
      const size = parseInt(backup.toString('latin1', at + 124, at + 136).replace(/\0.*$/s, '').trim() || '0', 8);
      at += 512 + Math.ceil(size / 512) * 512;
    }
    assert.ok(starts.length > 100, `the base backup has ${starts.length} entries`);
    const cut = backup.subarray(0, starts[Math.floor(starts.length / 2)]);
    const short = await instance('short');
    await assert.rejects(short.driver.prepare(input, undefined, full(() => Readable.from([cut]))), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'EngineError', err.message);
      assert.match(err.message, /manifest/);
      return true;
    });
    assert.equal(await short.driver.processId(), undefined);
  });

  it('extracts nothing outside the data directory, and fails a restore whose tar tries', async () => {
    const hostile = await instance('hostile');
    const archive = tarArchive([
      { name: 'PG_VERSION', content: `${binary.versionName}\n` },
      { name: '../escaped', content: 'out' },
      { name: 'link', symlink: hostile.dir },
      { name: 'link/through', content: 'out' },
    ]);
    await rejectsWithCode(hostile.driver.prepare(input, undefined, full(() => Readable.from([archive]))), 'EngineError');
    const left = await readdir(hostile.dir);
    assert.ok(!left.includes('data'), 'the failed restore left no data directory');
    assert.ok(!left.includes('escaped') && !left.includes('through'), `nothing escaped: ${left.join(', ')}`);
    assert.equal(await hostile.driver.processId(), undefined);
  });
});
