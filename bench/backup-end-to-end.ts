// bench/backup-end-to-end: a full backup and its restore of about `--mb` MB of realistic data
// (text of words from a made-up vocabulary with a natural-language-like spread, numbers,
// timestamps, JSON, indexes), through Coffer's real path and through the same engine tool piped
// to the same compression by hand, in the same run, runs interleaved.
//
//   node --import tsx bench/backup-end-to-end.ts [--engine postgresql,mariadb] [--mb 1024] [--runs 3]
//       [--out bench/results/backup-end-to-end.md] [--skip-prepare] [--profile-dir DIR]
//
// Backup
// - raw: `tool | zstd -1 -T2 -q -c > file` by a shell (pg_basebackup --pgdata=- --format=tar
//   --wal-method=fetch --checkpoint=fast; mariadb-backup --backup --stream=xbstream), with the
//   tool run as the engine's OS user as Coffer runs it, then the file fsynced (as the local
//   directory storage fsyncs what it stores);
// - Coffer: runBackup (src/guest/backup-runner.ts) with the driver's own backup admin: the tool,
//   the codec (zstd -1 -T2, AES-256-GCM frames; both tools write into zstd's stdin themselves),
//   LocalDirectoryStorage.put (SHA-256, fsync).
// Restore (the part a backup's bytes flow through; the rest of a prepare is the same work either way)
// - raw: `zstd -d -q -c file | tar -x` (PostgreSQL) or `| mbstream -x`, then
//   `mariadb-backup --prepare` (MariaDB), the extractors run as the engine's OS user;
// - Coffer: the link restoreChain (backup-runner.ts) makes (storage get with the SHA-256 check,
//   decodeBackup) into the engine's own restore: extractBaseBackup (PostgreSQL, with its
//   manifest check) or the family's restoreChain (MariaDB: mbstream, then mariadb-backup --prepare).
// Then once: a new instance's whole prepare from the Coffer backup, its steps timed.
//
// MB/s are of the tool's uncompressed output (10^6 bytes). CPU s/GB: CPU time per GB of that
// output spent by this process and by the processes it reaped (the tool, zstd, the extractors;
// from /proc/self/stat) — not the database server's side of the backup.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, chmod, chown, mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import { ensureEngineUser, LocalProcessRunner } from '../src/agent/index.js';
import { LocalDirectoryStorage, MasterKey, newProjectKey, wrapKey } from '../src/backup/index.js';
import type { PrepareInput } from '../src/bus/index.js';
import { silentLogger } from '../src/common/logger.js';
import { restoreChain, runBackup, type GuestBackupHost } from '../src/guest/backup-runner.js';
import type { EngineBinary, EngineDriver, PrepareStep } from '../src/guest/index.js';
import type { BackupFacts } from '../src/guest/engines/engine.js';
import { engineRegistry } from '../src/guest/index.js';
import { mariadbFlavor } from '../src/guest/engines/mariadb/engine.js';
import { findBackupTools } from '../src/guest/engines/mysql-family/backup-tools.js';
import { restoreChain as mysqlRestoreChain } from '../src/guest/engines/mysql-family/restore-chain.js';
import { extractBaseBackup } from '../src/guest/engines/postgresql/restore.js';
import { cpuTimer, type Sample } from './cpu-timing.js';

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'postgresql,mariadb' },
    mb: { type: 'string', default: '1024' },
    runs: { type: 'string', default: '3' },
    out: { type: 'string', default: 'bench/results/backup-end-to-end.md' },
    'skip-prepare': { type: 'boolean', default: false },
    /** a directory: each Coffer backup and restore is CPU-profiled into it (.cpuprofile, for Chrome's DevTools) */
    'profile-dir': { type: 'string' },
  },
});
type BenchEngine = 'postgresql' | 'mariadb';
const engines = values.engine!.split(',').map((name) => {
  if (name !== 'postgresql' && name !== 'mariadb') throw new Error(`no bench for engine ${name}`);
  return name as BenchEngine;
});
const targetBytes = Number(values.mb) * 1e6;
const runs = Number(values.runs);
const logger = silentLogger();
const identity = process.getuid?.() === 0 ? await ensureEngineUser('coffer-db', logger) : undefined;
const runner = new LocalProcessRunner(identity);
/** how a shell runs a program as the engine's OS user, as the runner does */
const asEngineUser = identity === undefined ? '' : `setpriv --reuid=${identity.uid} --regid=${identity.gid} --clear-groups `;
const zstd = '/usr/bin/zstd';
const log = (text: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);

// ---------------------------------------------------------------------------------------------
// load average, sampled through the whole run: other helpers share the two cores

const loadSamples: number[] = [];
const loadTimer = setInterval(() => loadSamples.push(loadavg()[0]!), 5000);
loadTimer.unref();

// ---------------------------------------------------------------------------------------------
// realistic data: a vocabulary of made-up words used with a Zipf-like spread, a pool of
// sentences made of them, and rows that combine sentences, numbers, timestamps and JSON

function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const poolSize = 60_000;

/** `poolSize` sentences of 4 to 24 words: frequent short words, a long tail of rare ones */
function sentencePool(): string[] {
  const random = generator(7);
  const syllables = 'ka lo mi ne ru ta se vi do pa re li mo na sa ter gan bel dor fin hal kor mar nis pol sul ven wir yas zor'.split(' ');
  const vocabulary: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    // frequent words are short, as in natural language
    const length = 1 + Math.floor(random() * (i < 200 ? 2 : 4));
    let word = '';
    for (let s = 0; s < length; s++) word += syllables[Math.floor(random() * syllables.length)];
    vocabulary.push(word);
  }
  const pick = () => vocabulary[Math.floor(vocabulary.length * random() ** 3)]!;
  const pool: string[] = [];
  for (let i = 0; i < poolSize; i++) {
    const words = Array.from({ length: 4 + Math.floor(random() * 21) }, pick);
    words[0] = words[0]!.charAt(0).toUpperCase() + words[0]!.slice(1);
    pool.push(`${words.join(' ')}${random() < 0.8 ? '.' : random() < 0.5 ? '?' : '!'}`);
  }
  return pool;
}

const tenant = { user: 'tenant', password: 'bench-Pass-1', database: 'app' };

async function loadPostgresql(address: string): Promise<number> {
  const client = new Client({ host: address, port: 5432, ...tenant });
  await client.connect();
  try {
    await client.query('CREATE TABLE pool (id int PRIMARY KEY, text text NOT NULL)');
    const pool = sentencePool();
    for (let from = 0; from < pool.length; from += 5000) {
      const slice = pool.slice(from, from + 5000);
      await client.query('INSERT INTO pool SELECT * FROM unnest($1::int[], $2::text[])', [slice.map((_, i) => from + i), slice]);
    }
    await client.query(`CREATE TABLE customers (
      id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, city text NOT NULL, created_at timestamptz NOT NULL,
      balance numeric(12,2) NOT NULL, profile jsonb NOT NULL)`);
    await client.query(`INSERT INTO customers
      SELECT g, initcap(split_part(p.text, ' ', 1)) || ' ' || initcap(split_part(p.text, ' ', 2)),
        lower(split_part(p.text, ' ', 1)) || '.' || g || '@' || lower(split_part(p.text, ' ', 3)) || '.example',
        initcap(split_part(q.text, ' ', 2)), timestamptz '2015-01-01' + random() * interval '3000 days',
        round((random() * 20000 - 2000)::numeric, 2),
        jsonb_build_object('newsletter', random() < 0.3, 'language', (ARRAY['en','de','fr','es','it','nl'])[1 + floor(random() * 6)::int],
          'score', floor(random() * 1000)::int, 'bio', q.text)
      FROM generate_series(1, 200000) g
      JOIN pool p ON p.id = abs(hashint4(g)) % ${poolSize}
      JOIN pool q ON q.id = abs(hashint4(g + 7777777)) % ${poolSize}`);
    await client.query(`CREATE TABLE orders (
      id bigint PRIMARY KEY, customer_id int NOT NULL, created_at timestamptz NOT NULL, status text NOT NULL,
      amount numeric(12,2) NOT NULL, currency char(3) NOT NULL, title text NOT NULL, note text, attrs jsonb NOT NULL)`);
    let next = 1;
    const batch = 250_000;
    for (;;) {
      await client.query(
        `INSERT INTO orders
        SELECT g, 1 + floor(random() * 200000)::int, timestamptz '2023-01-01' + random() * interval '700 days',
          (ARRAY['new','paid','shipped','delivered','cancelled','refunded'])[1 + floor(random() * 6)::int],
          round((random() * random() * 5000)::numeric, 2), (ARRAY['EUR','USD','GBP'])[1 + floor(random() * 3)::int],
          t.text, CASE WHEN random() < 0.15 THEN NULL ELSE n1.text || ' ' || n2.text END,
          jsonb_build_object('sku', 'SKU-' || lpad(floor(random() * 99999)::int::text, 5, '0'), 'qty', 1 + floor(random() * 9)::int,
            'gift', random() < 0.1, 'channel', (ARRAY['web','app','store','phone'])[1 + floor(random() * 4)::int],
            'ip', '10.' || floor(random() * 256)::int || '.' || floor(random() * 256)::int || '.' || floor(random() * 256)::int)
        FROM generate_series($1::bigint, $2::bigint) g
        JOIN pool t ON t.id = abs(hashint8(g)) % ${poolSize}
        JOIN pool n1 ON n1.id = abs(hashint8(g + 1000000000)) % ${poolSize}
        JOIN pool n2 ON n2.id = abs(hashint8(g + 2000000000)) % ${poolSize}`,
        [next, next + batch - 1],
      );
      next += batch;
      const { rows } = await client.query<{ size: string }>('SELECT pg_database_size(current_database())::text AS size');
      // the indexes come after: about 10 % more
      if (Number(rows[0]!.size) * 1.1 >= targetBytes) break;
    }
    await client.query('CREATE INDEX orders_customer ON orders (customer_id)');
    await client.query('CREATE INDEX orders_created ON orders (created_at)');
    await client.query('CREATE INDEX customers_email ON customers (email)');
    await client.query('CHECKPOINT').catch(() => undefined); // a tenant may not: the backup's own checkpoint then does it
    const { rows } = await client.query<{ size: string }>('SELECT pg_database_size(current_database())::text AS size');
    return Number(rows[0]!.size);
  } finally {
    await client.end();
  }
}

async function loadMariadb(address: string): Promise<number> {
  const connection = await createConnection({ host: address, port: 3306, ...tenant, multipleStatements: false });
  try {
    await connection.query('CREATE TABLE pool (id int PRIMARY KEY, text text NOT NULL) CHARACTER SET utf8mb4');
    const pool = sentencePool();
    for (let from = 0; from < pool.length; from += 5000) {
      const slice = pool.slice(from, from + 5000).map((text, i) => [from + i, text]);
      await connection.query('INSERT INTO pool VALUES ?', [slice]);
    }
    await connection.query(`CREATE TABLE customers (
      id int PRIMARY KEY, name varchar(200) NOT NULL, email varchar(200) NOT NULL, city varchar(100) NOT NULL,
      created_at datetime NOT NULL, balance decimal(12,2) NOT NULL, profile json NOT NULL, KEY customers_email (email)) CHARACTER SET utf8mb4`);
    await connection.query(`INSERT INTO customers
      SELECT STRAIGHT_JOIN s.seq, CONCAT(SUBSTRING_INDEX(p.text, ' ', 1), ' ', SUBSTRING_INDEX(SUBSTRING_INDEX(p.text, ' ', 2), ' ', -1)),
        LOWER(CONCAT(SUBSTRING_INDEX(p.text, ' ', 1), '.', s.seq, '@', SUBSTRING_INDEX(SUBSTRING_INDEX(p.text, ' ', 3), ' ', -1), '.example')),
        SUBSTRING_INDEX(SUBSTRING_INDEX(q.text, ' ', 2), ' ', -1), TIMESTAMP'2015-01-01 00:00:00' + INTERVAL FLOOR(RAND() * 259200000) SECOND,
        ROUND(RAND() * 20000 - 2000, 2),
        JSON_OBJECT('newsletter', RAND() < 0.3, 'language', ELT(1 + FLOOR(RAND() * 6), 'en','de','fr','es','it','nl'),
          'score', FLOOR(RAND() * 1000), 'bio', q.text)
      FROM seq_1_to_200000 s
      JOIN pool p ON p.id = CRC32(s.seq) % ${poolSize}
      JOIN pool q ON q.id = CRC32(s.seq + 7777777) % ${poolSize}`);
    await connection.query(`CREATE TABLE orders (
      id bigint PRIMARY KEY, customer_id int NOT NULL, created_at datetime NOT NULL, status varchar(20) NOT NULL,
      amount decimal(12,2) NOT NULL, currency char(3) NOT NULL, title text NOT NULL, note text, attrs json NOT NULL,
      KEY orders_customer (customer_id), KEY orders_created (created_at)) CHARACTER SET utf8mb4`);
    let next = 1;
    const batch = 250_000;
    for (;;) {
      await connection.query(`INSERT INTO orders
        SELECT STRAIGHT_JOIN s.seq, 1 + FLOOR(RAND() * 200000), TIMESTAMP'2023-01-01 00:00:00' + INTERVAL FLOOR(RAND() * 60480000) SECOND,
          ELT(1 + FLOOR(RAND() * 6), 'new','paid','shipped','delivered','cancelled','refunded'),
          ROUND(RAND() * RAND() * 5000, 2), ELT(1 + FLOOR(RAND() * 3), 'EUR','USD','GBP'),
          t.text, IF(RAND() < 0.15, NULL, CONCAT(n1.text, ' ', n2.text)),
          JSON_OBJECT('sku', CONCAT('SKU-', LPAD(FLOOR(RAND() * 99999), 5, '0')), 'qty', 1 + FLOOR(RAND() * 9),
            'gift', RAND() < 0.1, 'channel', ELT(1 + FLOOR(RAND() * 4), 'web','app','store','phone'),
            'ip', CONCAT('10.', FLOOR(RAND() * 256), '.', FLOOR(RAND() * 256), '.', FLOOR(RAND() * 256)))
        FROM seq_${next}_to_${next + batch - 1} s
        JOIN pool t ON t.id = CRC32(s.seq) % ${poolSize}
        JOIN pool n1 ON n1.id = CRC32(s.seq + 1000000000) % ${poolSize}
        JOIN pool n2 ON n2.id = CRC32(s.seq + 2000000000) % ${poolSize}`);
      next += batch;
      const size = await mariadbSize(connection);
      if (size >= targetBytes) return size;
    }
  } finally {
    await connection.end();
  }
}

async function mariadbSize(connection: Awaited<ReturnType<typeof createConnection>>): Promise<number> {
  // the tablespace files as they are on disk: what a physical backup copies
  const [rows] = await connection.query(
    'SELECT SUM(DATA_LENGTH + INDEX_LENGTH) AS size FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()',
  );
  return Number((rows as Array<{ size: string }>)[0]!.size);
}

// ---------------------------------------------------------------------------------------------
// measuring

const { timed, close: closeProfiler } = cpuTimer(values['profile-dir']);

/** runs `script` in a shell with `args` as $1…; rejects with its stderr when it fails */
async function shell(script: string, args: string[], env: Record<string, string> = {}, cwd?: string): Promise<string> {
  const child = spawn('/bin/sh', ['-c', `set -e; ${script}`, 'sh', ...args], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd === undefined ? {} : { cwd }),
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (err = (err + text).slice(-4000)));
  const [code] = (await once(child, 'close')) as [number];
  if (code !== 0) throw new Error(`shell failed (${code}): ${script}\n${err}`);
  return out;
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function engineDir(path: string, mode = 0o700): Promise<void> {
  await mkdir(path, { mode });
  if (identity !== undefined) await chown(path, identity.uid, identity.gid);
}

/** The prepare input of a new instance. */
const prepareInput = (engine: BenchEngine, adminPassword: string): PrepareInput => ({
  memoryMb: 2048,
  databases: [{ name: 'app' }],
  users: [{ name: tenant.user, password: tenant.password, databases: [{ name: 'app' }] }],
  adminPassword,
  access: null,
  overrides: {},
});

interface EngineResult {
  engine: BenchEngine;
  version: string;
  dataBytes: number;
  loadSeconds: number;
  streamBytes: number;
  rawBytes: number;
  cofferBytes: number;
  rows: Record<'rawBackup' | 'cofferBackup' | 'rawRestore' | 'cofferRestore', Sample[]>;
  prepare?: { totalMs: number; steps: Array<[string, number]> };
}

async function benchEngine(engine: BenchEngine, root: string): Promise<EngineResult> {
  const factory = engineRegistry[engine];
  const [binary]: (EngineBinary | undefined)[] = (await factory.discover([], runner)).binaries;
  if (binary === undefined) throw new Error(`no ${engine} binaries`);
  const net = `127.${150 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
  const drivers: EngineDriver[] = [];
  const instance = async (name: string, address: string) => {
    const dir = join(root, name);
    await mkdir(dir, { mode: 0o711 });
    const driver = factory.create({ placement: { instanceId: name, dir, address, port: factory.standardPort }, binary, runner, logger, defaultClientCidrs: ['127.0.0.0/8'] });
    drivers.push(driver);
    return { driver, dir };
  };
  try {
    const adminPassword = 'bench-Admin-1';
    const source = await instance('source', `${net}.1`);
    await source.driver.prepare(prepareInput(engine, adminPassword));
    log(`${engine} ${binary.version}: loading ~${values.mb} MB`);
    const loadBegan = performance.now();
    const dataBytes = engine === 'postgresql' ? await loadPostgresql(`${net}.1`) : await loadMariadb(`${net}.1`);
    const loadSeconds = (performance.now() - loadBegan) / 1000;
    log(`${engine}: ${(dataBytes / 1e6).toFixed(0)} MB of data loaded in ${loadSeconds.toFixed(0)} s`);

    const store = join(root, 'store');
    await mkdir(store, { mode: 0o700 });
    const storage = new LocalDirectoryStorage(store);
    await storage.ensureContainer('backups');
    const masterKey = MasterKey.generate();
    const projectId = 'bench-project';
    const wrappedKey = wrapKey(masterKey, newProjectKey(), projectId);
    const host: GuestBackupHost = { storage, masterKey };
    const rawDir = join(root, 'raw');
    await mkdir(rawDir, { mode: 0o700 });

    const tools = engine === 'mariadb' ? await findBackupTools(mariadbFlavor, binary.binDir) : undefined;
    const program = (name: string) => join(binary.binDir, name);

    /** the tool by hand, as the guest runs it, piped to zstd into `file` */
    const rawBackup = async (file: string) => {
      if (engine === 'postgresql') {
        const password = (await readFile(join(source.dir, 'os_admin.password'), 'utf8')).trim();
        await shell(
          `${asEngineUser}"$1" --pgdata=- --format=tar --wal-method=fetch --checkpoint=fast --no-password --label=raw | ${zstd} -1 -T2 -q -c > "$2"`,
          [program('pg_basebackup'), file],
          { PGHOST: join(source.dir, 'data'), PGPORT: '5432', PGUSER: 'os_admin', PGPASSWORD: password },
        );
      } else {
        const scratch = join(root, 'raw-scratch');
        await rm(scratch, { recursive: true, force: true });
        await engineDir(scratch);
        const data = join(source.dir, 'data');
        await shell(
          `${asEngineUser}"$1" --defaults-file="$2" --backup --stream=xbstream --target-dir="$3" --socket="$4" --user=os_admin | ${zstd} -1 -T2 -q -c > "$5"`,
          [tools!.tool, join(source.dir, 'my.cnf'), scratch, join(data, 'mysqld.sock'), file],
          { MYSQL_PWD: adminPassword },
          data,
        );
        await rm(scratch, { recursive: true, force: true });
      }
      await fsyncFile(file);
    };

    const rawRestore = async (file: string, target: string) => {
      await engineDir(target);
      if (engine === 'postgresql') {
        await shell(`${zstd} -d -q -c "$1" | ${asEngineUser}/bin/tar --extract --file=- --no-same-owner -C "$2"`, [file, target]);
      } else {
        await shell(`${zstd} -d -q -c "$1" | ${asEngineUser}"$2" -x -C "$3"`, [file, tools!.extractor, target]);
        await shell(`${asEngineUser}"$1" --prepare --target-dir=.`, [tools!.tool], {}, target);
      }
    };

    let facts: BackupFacts = {};
    let stored = { size: 0, sha256: '' };
    const cofferBackup = async (objectName: string) => {
      const reports: Array<{ state: string; bytes?: number; sha256?: string; facts?: BackupFacts; message?: string }> = [];
      await runBackup({
        admin: source.driver.backup!,
        host,
        input: { target: { backupId: objectName, container: 'backups', objectName, wrappedKey }, kind: 'full', projectId },
        instanceId: 'source',
        dataBytes,
        conductor: { updateBackup: async (report: (typeof reports)[number]) => void reports.push(report) } as never,
        progress: () => undefined,
        signal: new AbortController().signal,
        log: logger,
      });
      const last = reports.at(-1)!;
      if (last.state !== 'COMPLETED') throw new Error(`the Coffer backup ended ${last.state}: ${last.message}`);
      facts = last.facts!;
      stored = { size: last.bytes!, sha256: last.sha256! };
    };
    const link = (objectName: string) =>
      restoreChain(
        host,
        { projectId, chain: [{ backupId: objectName, container: 'backups', objectName, sha256: stored.sha256, wrappedKey, kind: 'full', facts }] },
        new AbortController().signal,
      );

    const cofferRestore = async (objectName: string, target: string) => {
      if (engine === 'postgresql') {
        await engineDir(target);
        await extractBaseBackup(runner, target, link(objectName)[0]!, program('pg_verifybackup'));
      } else {
        await mysqlRestoreChain({
          flavor: mariadbFlavor,
          runner,
          logger,
          tools: tools!,
          chain: link(objectName),
          scratchDir: join(root, 'coffer-scratch'),
          dataDir: target,
        });
      }
    };

    const rows: EngineResult['rows'] = { rawBackup: [], cofferBackup: [], rawRestore: [], cofferRestore: [] };
    let rawBytes = 0;
    let streamBytes = 0;
    const objectName = 'bench.zst.enc';
    for (let run = 1; run <= runs; run++) {
      const rawFile = join(rawDir, 'backup.zst');
      // the order alternates: neither side always runs on a warmer (or busier) machine
      const steps = [
        async () => {
          rows.rawBackup.push(await timed(() => rawBackup(rawFile)));
          rawBytes = Number((await shell('stat -c %s "$1"', [rawFile])).trim());
          if (streamBytes === 0) streamBytes = Number((await shell(`${zstd} -d -q -c "$1" | wc -c`, [rawFile])).trim());
          log(`${engine} run ${run}: raw backup ${(rows.rawBackup.at(-1)!.ms / 1000).toFixed(1)} s`);
        },
        async () => {
          await storage.delete('backups', objectName);
          rows.cofferBackup.push(await timed(() => cofferBackup(objectName), `${engine}-backup-${run}`));
          log(`${engine} run ${run}: Coffer backup ${(rows.cofferBackup.at(-1)!.ms / 1000).toFixed(1)} s`);
        },
      ];
      if (run % 2 === 0) steps.reverse();
      for (const step of steps) await step();

      const restores = [
        async () => {
          const target = join(root, 'raw-restored');
          rows.rawRestore.push(await timed(() => rawRestore(rawFile, target)));
          await rm(target, { recursive: true, force: true });
          log(`${engine} run ${run}: raw restore ${(rows.rawRestore.at(-1)!.ms / 1000).toFixed(1)} s`);
        },
        async () => {
          const target = join(root, 'coffer-restored');
          rows.cofferRestore.push(await timed(() => cofferRestore(objectName, target), `${engine}-restore-${run}`));
          await rm(target, { recursive: true, force: true });
          log(`${engine} run ${run}: Coffer restore ${(rows.cofferRestore.at(-1)!.ms / 1000).toFixed(1)} s`);
        },
      ];
      if (run % 2 === 0) restores.reverse();
      for (const step of restores) await step();
      await rm(rawFile, { force: true });
    }

    // once: what a whole restore into a new instance takes, by the steps of its prepare
    let prepare: EngineResult['prepare'];
    if (!values['skip-prepare']) {
      const restored = await instance('restored', `${net}.2`);
      let last: [string, number] = ['open', performance.now()];
      const began = last[1];
      const steps: Array<[string, number]> = [];
      const step = (name: PrepareStep | 'ready') => {
        const now = performance.now();
        steps.push([last[0], now - last[1]]);
        last = [name, now];
      };
      await restored.driver.prepare(prepareInput(engine, 'bench-Admin-2'), step, link(objectName));
      step('ready');
      prepare = { totalMs: performance.now() - began, steps: steps.filter(([name]) => name !== 'open') };
      log(`${engine}: whole prepare from the Coffer backup ${(prepare.totalMs / 1000).toFixed(1)} s`);
    }
    await storage.close();
    return { engine, version: binary.version, dataBytes, loadSeconds, streamBytes, rawBytes, cofferBytes: stored.size, rows, ...(prepare === undefined ? {} : { prepare }) };
  } finally {
    for (const driver of drivers) await driver.stop().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// the report

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function section(result: EngineResult): string {
  const bytes = result.streamBytes;
  const rate = (samples: Sample[]) => bytes / 1e6 / (median(samples.map((s) => s.ms)) / 1000);
  const all = (samples: Sample[]) => samples.map((s) => (bytes / 1e6 / (s.ms / 1000)).toFixed(0)).join(', ');
  const cpu = (samples: Sample[], pick: (s: Sample) => number) => (median(samples.map(pick)) / 1000 / (bytes / 1e9)).toFixed(2);
  const row = (what: string, samples: Sample[], bar: Sample[]) =>
    `| ${what} | ${rate(samples).toFixed(0)} | ${(median(samples.map((s) => s.ms)) / 1000).toFixed(1)} | ${(rate(samples) / rate(bar)).toFixed(2)} | ${cpu(samples, (s) => s.nodeCpuMs)} | ${cpu(samples, (s) => s.childCpuMs)} | ${all(samples)} |`;
  const { rows } = result;
  const lines = [
    `### ${result.engine} ${result.version}`,
    '',
    `Data: ${(result.dataBytes / 1e6).toFixed(0)} MB in the database (loaded in ${result.loadSeconds.toFixed(0)} s); the tool's stream ${(bytes / 1e6).toFixed(0)} MB; ` +
      `zstd -1 by hand makes ${(result.rawBytes / 1e6).toFixed(0)} MB of it (ratio ${(bytes / result.rawBytes).toFixed(2)}), Coffer's sealed object ${(result.cofferBytes / 1e6).toFixed(0)} MB.`,
    '',
    '| what | MB/s (median) | s | Coffer ÷ raw | CPU s/GB, Node | CPU s/GB, children | all runs (MB/s) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    row('backup, raw (tool \\| zstd > file, fsync)', rows.rawBackup, rows.rawBackup),
    row('**backup, Coffer (runBackup → local directory)**', rows.cofferBackup, rows.rawBackup),
    row(`restore, raw (zstd -d \\| ${result.engine === 'postgresql' ? 'tar -x' : 'mbstream -x; mariadb-backup --prepare'})`, rows.rawRestore, rows.rawRestore),
    row('**restore, Coffer (storage get → decode → engine restore)**', rows.cofferRestore, rows.rawRestore),
  ];
  if (result.prepare !== undefined) {
    lines.push(
      '',
      `A new instance's whole prepare from the Coffer backup, once: ${(result.prepare.totalMs / 1000).toFixed(1)} s (` +
        result.prepare.steps.map(([name, ms]) => `${name} ${(ms / 1000).toFixed(1)} s`).join(', ') +
        ').',
    );
  }
  return lines.join('\n');
}

const root = await mkdtemp('/tmp/coffer-e2e-');
await chmod(root, 0o711);
const loadBefore = loadavg();
const results: EngineResult[] = [];
try {
  for (const engine of engines) {
    const dir = join(root, engine);
    await mkdir(dir, { mode: 0o711 });
    try {
      results.push(await benchEngine(engine, dir));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
} finally {
  clearInterval(loadTimer);
  closeProfiler();
  await rm(root, { recursive: true, force: true });
}
const loads = loadSamples.length === 0 ? [loadavg()[0]!] : loadSamples;
const report = [
  `## ${new Date().toISOString()}: ~${values.mb} MB, ${runs} runs`,
  '',
  `Machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before; ` +
    `1-minute load during the run (every 5 s) min ${Math.min(...loads).toFixed(1)}, median ${median(loads).toFixed(1)}, max ${Math.max(...loads).toFixed(1)}.`,
  '',
  ...results.map(section).flatMap((text) => [text, '']),
].join('\n');
process.stdout.write(`${report}\n`);
await mkdir(dirname(values.out!), { recursive: true });
await appendFile(values.out!, `${report}\n`);
