// bench/burst-create: ten creates posted at once, next to the raw engine doing ten by hand in
// parallel, in the same run on the same box.
//
//   node --import tsx bench/burst-create.ts [--runs 3] [--count 10] [--subnet 127.81]
//     [--warm-pool-size N] [--datastores postgresql,mariadb] [--serve-log FILE] [--label TEXT]
//     [--out bench/results/burst-create.md]
//
// --subnet: the first two octets of the loopback addresses used (instances get <subnet>.1.0/24,
// the raw engines <subnet>.0.1-<count>), so that a run does not meet another one on the same host.
// --warm-pool-size: passed to `coffer serve`; left out, the agent's own default.
// --serve-log <file>: the serve's log, at debug level (each prepare's steps and their times).
//
// Coffer: a fresh `coffer serve` (SQLite, in-process bus; as root each instance gets its own OS
// user). Once its warm pools and spare users are full (no entry being built, counts unchanged for
// 3 s), `count` POST /instances (one database, one user) go out at once; the burst's time runs
// from the first POST until every instance is ACTIVE/HEALTHY and has answered a query as its
// created user. Then all are deleted and the next run waits for the pools to refill. One
// untimed single create first (code paths, the host's engine user).
// Raw: `count` × (initdb → postgres → SELECT 1), or (mariadb-install-db → mariadbd → SELECT 1),
// all started at once, as the same user provision's raw rows use, with the same binaries. The
// raw bursts take turns with Coffer's, on the same serve once its pools are full again, so
// that both meet the same load from the rest of the host.
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile, chmod, chown, appendFile, copyFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import { makeDataDir } from '../test/support/temp-dir.js';
import { freePort, startRole } from '../test/support/coffer-process.js';
import { login, request, trove, waitForInstance, type Session } from '../test/support/api-client.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    count: { type: 'string', default: '10' },
    subnet: { type: 'string', default: '127.81' },
    'warm-pool-size': { type: 'string' },
    datastores: { type: 'string', default: 'postgresql' },
    label: { type: 'string', default: '' },
    'serve-log': { type: 'string' },
    out: { type: 'string', default: 'bench/results/burst-create.md' },
  },
});
const runs = Number(values.runs);
const count = Number(values.count);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a whole number of at least 1');
if (!Number.isInteger(count) || count < 1 || count > 200) throw new Error('--count takes a whole number from 1 to 200');
if (!/^127\.\d{1,3}$/.test(values.subnet!)) throw new Error('--subnet takes two octets of 127.0.0.0/8, e.g. 127.81');
const subnet = values.subnet!;
const poolSize = values['warm-pool-size'];
const datastores = values.datastores!.split(',');
// how often each instance is asked for (the CLI asks every 250 ms): 10 instances at 20 ms would load the API itself
const pollMs = 100;
const userPassword = 'Bench-user-pass-1234';
const rawPassword = 'Raw-bench-pass-1234';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function postgresBinDir(): string {
  const debian = '/usr/lib/postgresql';
  const majors = readdirSync(debian).filter((d) => existsSync(join(debian, d, 'bin', 'postgres')));
  majors.sort((a, b) => Number(b) - Number(a));
  return join(debian, majors[0]!, 'bin');
}

/** The host's engine user (Coffer made it on the warm-up create), as provision's raw rows use. */
function engineIds(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'coffer-db'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'coffer-db'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

async function run(cmd: string, args: string[], ids: { uid?: number; gid?: number }): Promise<void> {
  const child = spawn(cmd, args, { ...ids, stdio: 'ignore' });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${cmd} exited with ${code}`);
}

async function retry(attempt: () => Promise<void>): Promise<void> {
  for (;;) {
    try {
      return await attempt();
    } catch {
      await sleep(5);
    }
  }
}

interface Engine {
  type: string;
  body: object;
  firstAnswer(address: string): Promise<void>;
  /** one engine by hand in `dir`: resolves once it answered, with a function that stops it */
  raw(dir: string, address: string): Promise<() => Promise<void>>;
}

const postgresql: Engine = {
  type: 'postgresql',
  body: { databases: [{ name: 'app' }], users: [{ name: 'app', password: userPassword, databases: [{ name: 'app' }] }] },
  async firstAnswer(address) {
    const client = new pg.Client({ host: address, port: 5432, user: 'app', password: userPassword, database: 'app' });
    await client.connect();
    await client.query('SELECT 1');
    await client.end();
  },
  async raw(dir, address) {
    const ids = engineIds();
    const bin = postgresBinDir();
    const pwfile = join(dir, 'pw');
    await writeFile(pwfile, `${rawPassword}\n`);
    await chmod(pwfile, 0o644);
    const data = join(dir, 'data');
    await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C.UTF-8'], ids);
    const server = spawn(join(bin, 'postgres'), ['-D', data, '-c', `listen_addresses=${address}`, '-c', 'port=5432', '-c', `unix_socket_directories=${dir}`], { ...ids, stdio: 'ignore' });
    await retry(async () => {
      const client = new pg.Client({ host: address, port: 5432, user: 'postgres', password: rawPassword, database: 'postgres' });
      try {
        await client.connect();
        await client.query('SELECT 1');
      } finally {
        await client.end().catch(() => undefined);
      }
    });
    return async () => {
      server.kill('SIGINT');
      await once(server, 'exit');
    };
  },
};

const mariadb: Engine = {
  type: 'mariadb',
  body: { databases: [{ name: 'app' }], users: [{ name: 'app', password: userPassword, databases: [{ name: 'app' }] }] },
  async firstAnswer(address) {
    const connection = await createConnection({ host: address, port: 3306, user: 'app', password: userPassword, database: 'app' });
    await connection.query('SELECT 1');
    await connection.end();
  },
  async raw(dir, address) {
    const ids = engineIds();
    const data = join(dir, 'data');
    const tmp = join(dir, 'tmp');
    await mkdir(data);
    await mkdir(tmp);
    if (ids.uid !== undefined) for (const path of [data, tmp]) await chown(path, ids.uid, ids.gid!);
    const socketPath = join(dir, 'mysqld.sock');
    const options = ['--no-defaults', `--datadir=${data}`, `--tmpdir=${tmp}`];
    await run('mariadb-install-db', [...options, '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve'], ids);
    const server = spawn(
      '/usr/sbin/mariadbd',
      [...options, `--socket=${socketPath}`, `--pid-file=${join(dir, 'mysqld.pid')}`, `--bind-address=${address}`, '--port=3306', '--skip-name-resolve'],
      { ...ids, stdio: 'ignore' },
    );
    await retry(async () => {
      const connection = await createConnection({ socketPath, user: 'root' });
      await connection.query('SELECT 1');
      await connection.end();
    });
    return async () => {
      server.kill('SIGTERM');
      await once(server, 'exit');
    };
  },
};

const engines: Record<string, Engine> = { postgresql, mariadb };

/** Pool entries and spare users on disk, and whether an entry is being built. */
function poolState(dataDir: string): { ready: string; building: boolean } {
  const pool = join(dataDir, 'pool');
  const counts: string[] = [];
  let building = false;
  if (existsSync(pool)) {
    for (const kind of readdirSync(pool)) {
      const entries = readdirSync(join(pool, kind));
      building ||= entries.some((name) => name.startsWith('.building-'));
      counts.push(`${kind}=${entries.filter((name) => /^[0-9a-f]{16}$/.test(name)).length}`);
    }
  }
  const file = join(dataDir, 'spare-users.json');
  const spares = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { users: string[] }).users.length : 0;
  return { ready: `${counts.sort().join(',')} users=${spares}`, building };
}

/** Until the agent stops filling: nothing built and nothing changing for 3 s. */
async function waitForFullPools(dataDir: string): Promise<string> {
  let last = '';
  let since = performance.now();
  for (;;) {
    const { ready, building } = poolState(dataDir);
    if (building || ready !== last) {
      last = ready;
      since = performance.now();
    } else if (performance.now() - since > 3000) {
      return ready;
    }
    await sleep(100);
  }
}

async function createAndAnswer(session: Session, engine: Engine, name: string): Promise<string> {
  const res = await request<any>('POST', trove(session, '/instances'), {
    token: session.token,
    body: { instance: { name, flavorRef: '1', volume: { size: 1 }, datastore: { type: engine.type }, ...engine.body } },
  });
  if (res.status !== 200) throw new Error(`create failed: ${JSON.stringify(res.body)}`);
  const id = res.body.instance.id as string;
  for (;;) {
    const show = await request<any>('GET', trove(session, `/instances/${id}`), { token: session.token });
    const instance = show.body.instance;
    if (instance.status === 'ERROR') throw new Error(`instance failed: ${JSON.stringify(instance.fault)}`);
    if (instance.status === 'ACTIVE' && instance.operating_status === 'HEALTHY') {
      await engine.firstAnswer(instance.addresses[0].address);
      return id;
    }
    await sleep(pollMs);
  }
}

async function deleteAll(session: Session, ids: string[]): Promise<void> {
  await Promise.all(ids.map((id) => request('DELETE', trove(session, `/instances/${id}`), { token: session.token })));
  await Promise.all(ids.map((id) => waitForInstance(session, id, (_x, status) => status === 404, 120_000)));
}

/** One burst of `count` raw engines started at once in `root`: the time until all answered. */
async function rawBurst(engine: Engine, root: string, round: string): Promise<number> {
  const ids = engineIds();
  const dirs = Array.from({ length: count }, (_x, i) => join(root, `${round}-${i}`));
  for (const dir of dirs) {
    await mkdir(dir);
    if (ids.uid !== undefined) await chown(dir, ids.uid, ids.gid!);
  }
  const started = performance.now();
  const stops = await Promise.all(dirs.map((dir, i) => engine.raw(dir, `${subnet}.0.${i + 1}`)));
  const elapsed = performance.now() - started;
  await Promise.all(stops.map((stop) => stop()));
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  return elapsed;
}

/**
 * Coffer's bursts and the raw ones, taken in turns on one `coffer serve` (idle and full while
 * the raw burst runs), so that both meet the same load from the rest of the host.
 */
async function measure(engine: Engine): Promise<{ coffer: number[]; raw: number[]; pools: string }> {
  const dataDir = await makeDataDir('coffer-bench-burst');
  const rawRoot = await makeDataDir('coffer-bench-burst-raw');
  const port = await freePort();
  const adminPassword = 'Bench-admin-pass-1234';
  const serve = startRole(
    [
      'serve', '--port', String(port), '--data-dir', dataDir.path, '--log-level', values['serve-log'] === undefined ? 'warn' : 'debug', '--address-pool', `${subnet}.1.0/24`,
      ...(poolSize === undefined ? [] : ['--warm-pool-size', poolSize]),
    ],
    { COFFER_ADMIN_PASSWORD: adminPassword },
  );
  const coffer: number[] = [];
  const raw: number[] = [];
  let pools = '';
  try {
    await serve.waitFor(/serving the Trove API/, 60_000);
    const session = await login(`http://127.0.0.1:${port}`, 'admin', adminPassword, 'admin');
    await waitForFullPools(dataDir.path);
    // untimed: code paths, the host's engine user, the binaries in the page cache
    await deleteAll(session, [await createAndAnswer(session, engine, 'bench-warm-up')]);
    await rawBurst(engine, rawRoot.path, 'warm-up');
    for (let run = 0; run < runs; run++) {
      pools = await waitForFullPools(dataDir.path);
      const started = performance.now();
      const each: number[] = [];
      const ids = await Promise.all(
        Array.from({ length: count }, async (_x, i) => {
          const id = await createAndAnswer(session, engine, `bench-${run}-${i}`);
          each.push(performance.now() - started);
          return id;
        }),
      );
      coffer.push(performance.now() - started);
      const answered = each.map((ms) => Math.round(ms)).join(', ');
      process.stderr.write(`coffer ${engine.type} run ${run}: ${Math.round(coffer.at(-1)!)} ms (each answered at ${answered}; pools before: ${pools}; load ${loadavg()[0]!.toFixed(1)})\n`);
      await deleteAll(session, ids);
      await waitForFullPools(dataDir.path);
      raw.push(await rawBurst(engine, rawRoot.path, String(run)));
      process.stderr.write(`raw ${engine.type} run ${run}: ${Math.round(raw.at(-1)!)} ms (load ${loadavg()[0]!.toFixed(1)})\n`);
    }
  } finally {
    await serve.stop();
    if (values['serve-log'] !== undefined) await copyFile(join(dataDir.path, 'coffer.log'), values['serve-log']);
    await dataDir.remove();
    await rawRoot.remove();
  }
  return { coffer, raw, pools };
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const rows: string[] = [];
  const row = (what: string, xs: number[], baseline: number[]) =>
    rows.push(`| ${what} | ${median(xs).toFixed(0)} ms | ${(median(xs) / median(baseline)).toFixed(2)} | ${xs.map((x) => x.toFixed(0)).join(', ')} |`);
  const pool = poolSize === undefined ? 'the default warm pool' : `--warm-pool-size ${poolSize}`;
  for (const name of datastores) {
    const engine = engines[name];
    if (engine === undefined) throw new Error(`--datastores: no ${name} here (postgresql, mariadb)`);
    const { coffer, raw, pools } = await measure(engine);
    row(`Coffer, ${name}, ${count} creates at once, ${pool} (full before: ${pools})`, coffer, raw);
    row(`raw ${name}, ${count} by hand in parallel`, raw, raw);
  }
  const loadAfter = loadavg()[0]!;
  const lines = [
    '',
    `## ${new Date().toISOString().slice(0, 19)}Z${values.label === '' ? '' : ` — ${values.label}`}`,
    '',
    `Machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; PostgreSQL from ${postgresBinDir()}; ${process.getuid?.() === 0 ? 'as root (an OS user per instance)' : 'not as root'}.`,
    `${runs} bursts each (after one warm-up), Coffer's and the raw ones in turns; Coffer polled every ${pollMs} ms per instance.`,
    `Load average (1 min) ${loadBefore.toFixed(1)} at the start, ${loadAfter.toFixed(1)} at the end.`,
    '',
    '| what | median | ratio to raw | all runs (ms) |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ];
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  await mkdir(dirname(values.out!), { recursive: true });
  if (!existsSync(values.out!)) await writeFile(values.out!, '# bench/burst-create\n');
  await appendFile(values.out!, text);
}

await main();
