// bench/density: issue 14's "a thousand instances on one box". How much memory and idle CPU
// Coffer adds to many idle instances on one host, next to the same number of raw engines started
// by hand, measured the same way in the same run.
//
//   node --import tsx bench/density.ts [--redis 1000] [--postgresql 300] [--seconds 60] [--parallel 8]
//       [--raw full|<n>|none] [--coffer yes|no] [--subnet 127.81] [--settle 30] [--delete-minutes 20]
//       [--max-failures 3] [--out <file>]
//
// As root. The data directory is made under $TMPDIR (/tmp by default): give TMPDIR a short
// directory outside /tmp (e.g. TMPDIR=/var/lib/cdt, at most 18 bytes: sockets live under it) to
// delete as a real host does; each delete sweeps /tmp for the instance user's files, and walks
// every instance's data directory when it is there (bench/results/density.md).
//
// Coffer: one `coffer serve` (every role in one process: API, taskmanager, conductor, agent, the
// guests), started as the e2e tests start it, with the project's instance, volume and RAM quotas
// unlimited (the environment the multi-host tests give). The bench creates the instances through
// the Trove API (m1.tiny, 1 GB volume; Redis with one user, PostgreSQL with one database and one
// user), `--parallel` creates in flight at once, each followed until ACTIVE/HEALTHY, and prints
// the creation rate as it goes. Once all are up and `--settle` seconds have passed, it reads
// /proc at the start and the end of an idle window of `--seconds` in which it sends nothing:
//   - Coffer: the `coffer serve` process (all its threads, and the helpers it ran and reaped,
//     e.g. nft or useradd) plus any helper alive at either end: CPU; its RSS, against the RSS the
//     same process had before the first create (warm pool full, settled), divided by the count;
//     its open file descriptors.
//   - engines: every postgres and redis-server process below it (the postmasters, their
//     backends and workers, the guest's kept admin session included): CPU (their own, and of the
//     children they reaped), summed RSS and PSS (shared pages divided among the processes that
//     map them, /proc/<pid>/smaps_rollup).
// Then it deletes every instance through the API, checks that no engine process is left below
// Coffer nor any OS user of an instance, and stops Coffer (whose RSS is read again first).
//
// Raw (`--raw full`, the default: the same counts; `--raw <n>`: at most n of each, a sample,
// scaled per instance; `--raw none`: skipped): redis-server and postgres started by hand as
// Coffer's engine user (coffer-db, which Coffer made) with the memory settings Coffer gives an
// m1.tiny (Redis: maxmemory, noeviction, AOF fsync every second; PostgreSQL: shared_buffers,
// max_connections, work_mem ...; the same postgres binary as Coffer's instances), each on an
// address of its own, PostgreSQL from one initdb copied per server. Nothing connects to them in
// the idle window. Measured the same way (the engines below this process).
//
// Prints, per 1,000 instances, the % of a core used idle by the engines and by Coffer, and the
// MB per instance. Asserts nothing. Everything it starts is stopped and removed when it ends,
// also on Ctrl-C or an error (instances through the API while Coffer runs, else by removing
// their OS users and everything those run).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, readdir, readFile, readlink, writeFile, chmod, chown } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { tuneMemory } from '../src/guest/engines/postgresql/config.js';
import { maxmemoryMb } from '../src/guest/engines/redis/config.js';
import { makeDataDir } from '../test/support/temp-dir.js';
import { osUsersUnder } from '../test/support/instance-users.js';
import { freePort, startRole, type RoleProcess } from '../test/support/coffer-process.js';
import { login, request, trove, type Session } from '../test/support/api-client.js';

const { values } = parseArgs({
  options: {
    redis: { type: 'string', default: '1000' },
    postgresql: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '60' },
    settle: { type: 'string', default: '30' },
    parallel: { type: 'string', default: '8' },
    raw: { type: 'string', default: 'full' },
    subnet: { type: 'string', default: '127.81' },
    'max-failures': { type: 'string', default: '3' },
    coffer: { type: 'string', default: 'yes' },
    'delete-minutes': { type: 'string', default: '20' },
    out: { type: 'string', default: '' },
  },
});
const whole = (name: string, min: number): number => {
  const n = Number(values[name as keyof typeof values]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} takes a whole number of at least ${min}`);
  return n;
};
const redisCount = whole('redis', 0);
const postgresqlCount = whole('postgresql', 0);
const seconds = whole('seconds', 1);
const settleSeconds = whole('settle', 0);
const parallel = whole('parallel', 1);
const maxFailures = whole('max-failures', 1);
const deleteMinutes = whole('delete-minutes', 1);
if (!/^127\.\d{1,3}$/.test(values.subnet!)) throw new Error('--subnet takes two octets of 127.0.0.0/8, e.g. 127.81');
const subnet = values.subnet!;
const rawMode = values.raw!;
if (!/^(full|none|\d+)$/.test(rawMode)) throw new Error('--raw takes full, none or a number');
const rawCap = rawMode === 'full' ? Infinity : rawMode === 'none' ? 0 : Number(rawMode);
if (values.coffer !== 'yes' && values.coffer !== 'no') throw new Error('--coffer takes yes or no');
const withCoffer = values.coffer === 'yes';
if (!withCoffer && rawCap === 0) throw new Error('--coffer no measures the raw engines only: leave out --raw none');
// m1.tiny: the smallest flavor, whose settings the raw engines copy
const flavor = { id: '1', ramMb: 256 };
const userPassword = 'Density-user-pass-1234';
const ticks = 100;
const pageKb = 4;
const engineNames = new Set(['postgres', 'redis-server']);

const log = (text: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const loadText = () => loadavg().map((l) => l.toFixed(2)).join(' ');

// ---------------------------------------------------------------------------------- /proc

interface Proc {
  pid: number;
  ppid: number;
  name: string;
  /** utime + stime + cutime + cstime, seconds: its own time and that of the children it reaped */
  cpu: number;
  rssKb: number;
}

async function processTable(): Promise<Map<number, Proc>> {
  const table = new Map<number, Proc>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (text === '') continue;
    const close = text.lastIndexOf(')');
    const f = text.slice(close + 2).split(' ');
    // f[0] is field 3 (state): ppid 4, utime 14, stime 15, cutime 16, cstime 17, rss 24
    if (f[0] === 'Z') continue;
    const cpu = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / ticks;
    table.set(Number(entry), { pid: Number(entry), ppid: Number(f[1]), name: text.slice(text.indexOf('(') + 1, close), cpu, rssKb: Number(f[21]) * pageKb });
  }
  return table;
}

function descendants(table: Map<number, Proc>, root: number): Proc[] {
  const children = new Map<number, Proc[]>();
  for (const p of table.values()) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: Proc[] = [];
  const stack = [root];
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      out.push(child);
      stack.push(child.pid);
    }
  }
  return out;
}

async function pssKb(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  return Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0);
}

interface Snapshot {
  at: number;
  /** the root process (Coffer's, or nothing for raw) and its non-engine helpers */
  ownCpu: number;
  ownRssKb: number;
  engineCpu: number;
  engineProcesses: number;
  engineRssKb: number;
  enginePssKb: number;
  /** the same, per engine (`postgres`, `redis-server`) */
  kinds: Record<string, { cpu: number; processes: number; rssKb: number; pssKb: number }>;
  fds: number;
}

/** `root`: coffer serve's pid (its own CPU and RSS count as Coffer's); for raw, this process (whose own do not count). */
async function snapshot(root: number, countRoot: boolean): Promise<Snapshot> {
  const table = await processTable();
  const below = descendants(table, root);
  const engines = below.filter((p) => engineNames.has(p.name));
  const helpers = below.filter((p) => !engineNames.has(p.name));
  const self = table.get(root);
  let enginePssKb = 0;
  const kinds: Snapshot['kinds'] = {};
  for (const p of engines) {
    const pss = await pssKb(p.pid);
    enginePssKb += pss;
    const kind = (kinds[p.name] ??= { cpu: 0, processes: 0, rssKb: 0, pssKb: 0 });
    kind.cpu += p.cpu;
    kind.processes += 1;
    kind.rssKb += p.rssKb;
    kind.pssKb += pss;
  }
  const fds = countRoot ? (await readdir(`/proc/${root}/fd`).catch(() => [])).length : 0;
  return {
    at: performance.now(),
    ownCpu: countRoot ? (self?.cpu ?? 0) + helpers.reduce((s, p) => s + p.cpu, 0) : 0,
    ownRssKb: countRoot ? (self?.rssKb ?? 0) : 0,
    engineCpu: engines.reduce((s, p) => s + p.cpu, 0),
    engineProcesses: engines.length,
    engineRssKb: engines.reduce((s, p) => s + p.rssKb, 0),
    enginePssKb,
    kinds,
    fds,
  };
}

interface Idle {
  seconds: number;
  ownCpuS: number;
  engineCpuS: number;
  start: Snapshot;
  end: Snapshot;
}

async function idleWindow(root: number, countRoot: boolean, windowSeconds: number): Promise<Idle> {
  const start = await snapshot(root, countRoot);
  await sleep(windowSeconds * 1000);
  const end = await snapshot(root, countRoot);
  return { seconds: (end.at - start.at) / 1000, ownCpuS: end.ownCpu - start.ownCpu, engineCpuS: end.engineCpu - start.engineCpu, start, end };
}

// ---------------------------------------------------------------------------------- cleanup

const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | undefined;
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      try {
        await cleanups.pop()!();
      } catch (err) {
        log(`cleanup step failed: ${(err as Error).message}`);
      }
    }
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanUp().then(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------- Coffer

interface Created {
  id: string;
  type: 'redis' | 'postgresql';
}

function createBody(type: 'redis' | 'postgresql', n: number): object {
  const common = { name: `density-${type}-${n}`, flavorRef: flavor.id, volume: { size: 1 }, datastore: { type } };
  return type === 'redis'
    ? { instance: { ...common, users: [{ name: 'app', password: userPassword }] } }
    : { instance: { ...common, databases: [{ name: 'app' }], users: [{ name: 'app', password: userPassword, databases: [{ name: 'app' }] }] } };
}

/** Polls one instance until `done` or the deadline; the last view (or status 404). */
async function follow(session: Session, id: string, done: (instance: any, status: number) => boolean, timeoutMs: number, everyMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await request<any>('GET', trove(session, `/instances/${id}`), { token: session.token });
    if (done(res.body?.instance, res.status)) return { status: res.status, instance: res.body?.instance };
    if (Date.now() > deadline) return { status: res.status, instance: res.body?.instance, timedOut: true };
    await sleep(everyMs);
  }
}

interface CreationResult {
  active: Created[];
  failures: string[];
  seconds: number;
}

/** Creates the instances `parallel` at a time, each followed until ACTIVE/HEALTHY; stops after `maxFailures` failures. */
async function createAll(session: Session, plan: ('redis' | 'postgresql')[], track: Created[]): Promise<CreationResult> {
  const active: Created[] = [];
  const failures: string[] = [];
  const started = performance.now();
  let next = 0;
  let lastPrint = started;
  let printedAt = 0;
  const progress = (force = false) => {
    const now = performance.now();
    if (!force && now - lastPrint < 10_000) return;
    if (force && active.length === printedAt && printedAt > 0) return;
    const rate = ((active.length - printedAt) / (now - lastPrint)) * 1000;
    const redisUp = active.filter((c) => c.type === 'redis').length;
    log(
      `${active.length}/${plan.length} ACTIVE (${redisUp} Redis, ${active.length - redisUp} PostgreSQL), ${failures.length} failed, ` +
        `${rate.toFixed(1)}/s over the last ${((now - lastPrint) / 1000).toFixed(0)} s, ${((active.length / (now - started)) * 1000).toFixed(1)}/s overall, load ${loadText()}`,
    );
    lastPrint = now;
    printedAt = active.length;
  };
  const worker = async () => {
    while (failures.length < maxFailures) {
      const n = next++;
      if (n >= plan.length) return;
      const type = plan[n]!;
      const res = await request<any>('POST', trove(session, '/instances'), { token: session.token, body: createBody(type, n) });
      if (res.status !== 200) {
        failures.push(`create #${n} (${type}) answered ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
        continue;
      }
      const created: Created = { id: res.body.instance.id, type };
      track.push(created);
      const end = await follow(
        session,
        created.id,
        (i) => i?.status === 'ERROR' || (i?.status === 'ACTIVE' && i?.operating_status === 'HEALTHY'),
        600_000,
        250,
      );
      if (end.instance?.status === 'ACTIVE' && !('timedOut' in end)) active.push(created);
      else failures.push(`${type} ${created.id}: ${end.instance?.status}/${end.instance?.operating_status} ${JSON.stringify(end.instance?.fault ?? {}).slice(0, 800)}`);
      progress();
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  progress(true);
  return { active, failures, seconds: (performance.now() - started) / 1000 };
}

/** Deletes through the API, `parallel` × 2 at a time; after `deleteMinutes` no further delete is sent (what is left goes with the cleanup). */
async function deleteAll(session: Session, instances: Created[]): Promise<{ seconds: number; failures: string[] }> {
  const started = performance.now();
  const deadline = Date.now() + deleteMinutes * 60_000;
  const failures: string[] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const n = next++;
      if (n >= instances.length) return;
      if (Date.now() > deadline) {
        failures.push(`${instances.length - n} not deleted through the API: the ${deleteMinutes} minutes for deleting had passed`);
        next = instances.length;
        return;
      }
      const { id } = instances[n]!;
      const res = await request('DELETE', trove(session, `/instances/${id}`), { token: session.token });
      if (res.status !== 202 && res.status !== 404) failures.push(`delete ${id} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
      const end = await follow(session, id, (i, status) => status === 404 || i?.status === 'ERROR', Math.max(1000, deadline - Date.now()), 500);
      if (end.status !== 404) failures.push(`delete ${id}: ${end.instance?.status} ${JSON.stringify(end.instance?.fault ?? {}).slice(0, 300)}`);
      done += 1;
      if (done % 100 === 0) log(`${done}/${instances.length} deleted, ${((done / (performance.now() - started)) * 1000).toFixed(1)}/s; load ${loadText()}`);
    }
  };
  await Promise.all(Array.from({ length: parallel * 2 }, worker));
  return { seconds: (performance.now() - started) / 1000, failures };
}

/** Complete warm-pool entries on disk (named by 16 hex digits), as bench/provision counts them. */
function warmEntries(dataDir: string): number {
  const pool = join(dataDir, 'pool');
  if (!existsSync(pool)) return 0;
  return readdirSync(pool)
    .flatMap((kind) => readdirSync(join(pool, kind)))
    .filter((name) => /^[0-9a-f]{16}$/.test(name)).length;
}

interface CofferRun {
  created: number;
  creation: CreationResult;
  baseline: Snapshot;
  baselineIdle: Idle;
  idle: Idle;
  afterDeleteRssKb: number;
  deletion: { seconds: number; failures: string[] };
  leftEngines: number;
  leftUsers: string[];
  postgresBin: string | undefined;
  counts: { redis: number; postgresql: number };
}

async function runCoffer(): Promise<CofferRun> {
  const dataDir = await makeDataDir('coffer-density');
  const port = await freePort();
  const adminPassword = 'Density-admin-pass-1234';
  const serve: RoleProcess = startRole(
    ['serve', '--port', String(port), '--data-dir', dataDir.path, '--log-level', 'warn', '--address-pool', `${subnet}.0.0/17`],
    {
      COFFER_ADMIN_PASSWORD: adminPassword,
      COFFER_MAX_INSTANCES_PER_TENANT: '-1',
      COFFER_MAX_RAM_PER_TENANT: '-1',
      COFFER_MAX_VOLUMES_PER_TENANT: '-1',
    },
  );
  const track: Created[] = [];
  // the admin's session, once logged in: the cleanup deletes through it
  const api: { session?: Session } = {};
  let deleted = false;
  // last in, first out: the API deletes first while Coffer runs, then Coffer stops, then what is left goes with the directory
  cleanups.push(async () => {
    await serve.stop();
    await dataDir.remove();
  });
  cleanups.push(async () => {
    if (deleted || api.session === undefined || serve.child.exitCode !== null || track.length === 0) return;
    log(`deleting the ${track.length} instances created`);
    await deleteAll(api.session, track);
  });
  await serve.waitFor(/serving the Trove API/, 120_000);
  const pid = serve.child.pid!;
  const session = await login(`http://127.0.0.1:${port}`, 'admin', adminPassword, 'admin');
  api.session = session;
  // once the warm pool is full (its size comes from the host: 10 a kind here), so that its filling
  // is not read as Coffer's idle cost: no entry added for 10 s
  const deadline = Date.now() + 300_000;
  for (let seen = -1, since = Date.now(); Date.now() < deadline; await sleep(500)) {
    const now = warmEntries(dataDir.path);
    if (now !== seen) [seen, since] = [now, Date.now()];
    else if (now > 0 && Date.now() - since >= 10_000) break;
  }
  await sleep(Math.min(settleSeconds, 15) * 1000);
  const baselineIdle = await idleWindow(pid, true, Math.min(seconds, 30));
  const baseline = baselineIdle.end;
  log(`coffer serve up (pid ${pid}), warm pool ${warmEntries(dataDir.path)}; RSS with no instance ${(baseline.ownRssKb / 1024).toFixed(1)} MB, idle CPU ${((baselineIdle.ownCpuS / baselineIdle.seconds) * 100).toFixed(2)} % of a core`);

  // interleaved, so that both kinds are created throughout and a stop part-way leaves some of each
  const plan: ('redis' | 'postgresql')[] = [];
  for (let r = 0, p = 0; r < redisCount || p < postgresqlCount; ) {
    if (r < redisCount && (p >= postgresqlCount || r * postgresqlCount <= p * redisCount)) {
      plan.push('redis');
      r += 1;
    } else {
      plan.push('postgresql');
      p += 1;
    }
  }
  log(`creating ${redisCount} Redis and ${postgresqlCount} PostgreSQL instances, ${parallel} at a time; load ${loadText()}`);
  const creation = await createAll(session, plan, track);
  for (const failure of creation.failures) log(`FAILED: ${failure}`);
  log(`${creation.active.length} ACTIVE in ${creation.seconds.toFixed(0)} s (${(creation.active.length / creation.seconds).toFixed(1)}/s); settling ${settleSeconds} s`);
  await sleep(settleSeconds * 1000);
  // which postgres binary Coffer's instances run: the raw servers run the same
  const table = await processTable();
  const postmaster = descendants(table, pid).find((p) => p.name === 'postgres' && p.ppid === pid);
  const postgresBin = postmaster === undefined ? undefined : dirname(await readlink(`/proc/${postmaster.pid}/exe`));
  log(`idle window of ${seconds} s (nothing sent to Coffer); load ${loadText()}`);
  const idle = await idleWindow(pid, true, seconds);
  log(`idle done; load ${loadText()}`);
  const counts = {
    redis: creation.active.filter((c) => c.type === 'redis').length,
    postgresql: creation.active.filter((c) => c.type === 'postgresql').length,
  };
  // the main figures at once: the deletes may take long, or be cut short
  const n = counts.redis + counts.postgresql;
  log(
    `${n} idle instances: Coffer ${f(perThousandCore(idle.ownCpuS, idle.seconds, n))} % of a core per 1,000 (with no instance: ${f((baselineIdle.ownCpuS / baselineIdle.seconds) * 100)} % in all), ` +
      `engines ${f(perThousandCore(idle.engineCpuS, idle.seconds, n))} %; Coffer RSS ${f(mb(idle.end.ownRssKb), 1)} MB (${f((idle.end.ownRssKb - baseline.ownRssKb) / n, 0)} kB per instance), ` +
      `engines PSS ${f(mb(idle.end.enginePssKb) / n)} MB per instance; ${idle.end.fds} file descriptors`,
  );
  const deletion = await deleteAll(session, track);
  deleted = true;
  for (const failure of deletion.failures) log(`DELETE FAILED: ${failure}`);
  log(`deleted ${track.length} in ${deletion.seconds.toFixed(0)} s`);
  await sleep(5000);
  const after = await snapshot(pid, true);
  const leftUsers = (await osUsersUnder(dataDir.path)).filter((name) => {
    try {
      execFileSync('getent', ['passwd', name], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  return {
    created: track.length,
    creation,
    baseline,
    baselineIdle,
    idle,
    afterDeleteRssKb: after.ownRssKb,
    deletion,
    leftEngines: after.engineProcesses,
    leftUsers,
    postgresBin,
    counts,
  };
}

// ---------------------------------------------------------------------------------- raw

let ids: { uid: number; gid: number } | undefined;
/** Coffer's engine user (made by the Coffer run before), as bench/provision runs its raw engines */
function engineIds(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  ids ??= {
    uid: Number(execFileSync('id', ['-u', 'coffer-db'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'coffer-db'], { encoding: 'utf8' }).trim()),
  };
  return ids;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const child = spawn(cmd, args, { ...engineIds(), stdio: 'ignore' });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${cmd} exited with ${code}`);
}

/** 127.<b>.128.1 onwards: the upper half of the subnet, which Coffer's pool (the lower /17) never hands out. */
function rawAddress(i: number): string {
  return `${subnet}.${128 + Math.floor(i / 250)}.${(i % 250) + 1}`;
}

async function until(check: () => Promise<void>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}`);
      await sleep(50);
    }
  }
}

async function redisPing(address: string, password: string): Promise<void> {
  const client = new Redis({ host: address, port: 6379, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, enableReadyCheck: false, disableClientInfo: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.call('AUTH', ['default', password]);
    await client.ping();
  } finally {
    client.disconnect();
  }
}

async function pgSelect(address: string, password: string): Promise<void> {
  const client = new pg.Client({ host: address, port: 5432, user: 'postgres', password, database: 'postgres' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

interface RawRun {
  counts: { redis: number; postgresql: number };
  startSeconds: number;
  idle: Idle;
  left: number;
}

async function runRaw(postgresBin: string | undefined, counts: { redis: number; postgresql: number }): Promise<RawRun> {
  const root = await makeDataDir('coffer-density-raw');
  const children: ChildProcess[] = [];
  const stopAll = async () => {
    const exits = children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => {
      const exited = once(c, 'exit');
      // postgres: SIGINT is its fast shutdown
      c.kill(c.spawnfile.endsWith('postgres') ? 'SIGINT' : 'SIGTERM');
      return exited;
    });
    await Promise.all(exits);
  };
  cleanups.push(async () => {
    await stopAll();
    await root.remove();
  });
  const own = engineIds();
  await chown(root.path, own.uid ?? process.getuid!(), own.gid ?? process.getgid!());
  const password = 'Raw-density-pass-1234';
  const started = performance.now();
  const mem = tuneMemory(flavor.ramMb);
  // PostgreSQL: one initdb (no fsync: its speed is not measured here), copied per server
  let template: string | undefined;
  if (counts.postgresql > 0) {
    if (postgresBin === undefined) throw new Error('no postgres binary found from the Coffer run');
    template = join(root.path, 'template');
    const pwfile = join(root.path, 'pw');
    await writeFile(pwfile, `${password}\n`);
    await chmod(pwfile, 0o644);
    await run(join(postgresBin, 'initdb'), ['-D', template, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C.UTF-8', '-N']);
  }
  let next = 0;
  const plan: ('redis' | 'postgresql')[] = [...Array(counts.redis).fill('redis'), ...Array(counts.postgresql).fill('postgresql')];
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= plan.length) return;
      const dir = join(root.path, `e${i}`);
      const address = rawAddress(i);
      if (plan[i] === 'redis') {
        await mkdir(dir);
        if (own.uid !== undefined) await chown(dir, own.uid, own.gid!);
        // Coffer's settings that bear on an idle server: its memory limit, noeviction, the AOF
        const child = spawn(
          'redis-server',
          ['--bind', address, '--port', '6379', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory', `${maxmemoryMb(flavor.ramMb)}mb`, '--maxmemory-policy', 'noeviction', '--requirepass', password, '--save', '3600 1 300 100 60 10000', '--logfile', ''],
          { ...own, stdio: 'ignore' },
        );
        children.push(child);
        await until(() => redisPing(address, password), 60_000, `raw redis ${i}`);
      } else {
        const data = join(dir, 'data');
        await mkdir(dir);
        await cp(template!, data, { recursive: true, preserveTimestamps: true });
        if (own.uid !== undefined) {
          await chown(dir, own.uid, own.gid!);
          execFileSync('chown', ['-R', `${own.uid}:${own.gid}`, data]);
        }
        const child = spawn(
          join(postgresBin!, 'postgres'),
          [
            '-D', data, '-c', `listen_addresses=${address}`, '-c', 'port=5432', '-c', `unix_socket_directories=${dir}`,
            '-c', `max_connections=${mem.maxConnections}`, '-c', `shared_buffers=${mem.sharedBuffersMb}MB`, '-c', `effective_cache_size=${mem.effectiveCacheSizeMb}MB`,
            '-c', `work_mem=${mem.workMemKb}kB`, '-c', `maintenance_work_mem=${mem.maintenanceWorkMemMb}MB`, '-c', 'dynamic_shared_memory_type=posix',
            '-c', 'max_wal_size=1GB', '-c', 'min_wal_size=80MB', '-c', 'logging_collector=off',
          ],
          { ...own, stdio: 'ignore' },
        );
        children.push(child);
        await until(() => pgSelect(address, password), 60_000, `raw postgres ${i}`);
      }
      if ((i + 1) % 100 === 0) log(`${i + 1}/${plan.length} raw engines up`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const startSeconds = (performance.now() - started) / 1000;
  log(`${plan.length} raw engines up in ${startSeconds.toFixed(0)} s; settling ${settleSeconds} s`);
  await sleep(settleSeconds * 1000);
  log(`raw idle window of ${seconds} s; load ${loadText()}`);
  const idle = await idleWindow(process.pid, false, seconds);
  log(`raw idle done; load ${loadText()}`);
  await stopAll();
  const left = (await snapshot(process.pid, false)).engineProcesses;
  return { counts, startSeconds, idle, left };
}

// ---------------------------------------------------------------------------------- report

const mb = (kb: number) => kb / 1024;
const perThousandCore = (cpuS: number, windowS: number, n: number) => (n === 0 ? NaN : ((cpuS / windowS) * 100 * 1000) / n);
const f = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '—');

/** Debian's newest PostgreSQL, as bench/provision finds it: what Coffer's instances run on a host that has it. */
function debianPostgresBin(): string | undefined {
  const debian = '/usr/lib/postgresql';
  if (!existsSync(debian)) return undefined;
  const majors = readdirSync(debian).filter((d) => existsSync(join(debian, d, 'bin', 'postgres')));
  majors.sort((a, b) => Number(b) - Number(a));
  return majors[0] === undefined ? undefined : join(debian, majors[0], 'bin');
}

/** `--coffer no`: the raw engines alone (the counts asked, at most --raw each), measured as the full run measures them. */
async function rawOnly(loadBefore: string, date: string, commit: string): Promise<void> {
  const bin = debianPostgresBin();
  const counts = { redis: Math.min(redisCount, rawCap), postgresql: Math.min(postgresqlCount, rawCap) };
  const raw = await runRaw(bin, counts);
  await cleanUp();
  const n = counts.redis + counts.postgresql;
  const w = raw.idle;
  const kind = (name: string, cn: number) => {
    const cpu = (w.end.kinds[name]?.cpu ?? 0) - (w.start.kinds[name]?.cpu ?? 0);
    return `| ${name} | ${cn} | ${f(perThousandCore(cpu, w.seconds, cn))} | ${cn > 0 ? f(mb(w.end.kinds[name]?.pssKb ?? 0) / cn) : '—'} MB | ${cn > 0 ? f(mb(w.end.kinds[name]?.rssKb ?? 0) / cn) : '—'} MB | ${cn > 0 ? f((w.end.kinds[name]?.processes ?? 0) / cn) : '—'} |`;
  };
  const text = [
    `# bench/density, raw engines only — ${date}Z${commit === '' ? '' : ` (HEAD ${commit})`}`,
    '',
    `Machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; postgres from ${bin ?? '—'}. Load average (1, 5, 15 min) ${loadBefore} at the start, ${loadText()} at the end.`,
    `${counts.redis} redis-server + ${counts.postgresql} postgres started by hand in ${f(raw.startSeconds, 0)} s; idle window ${f(w.seconds, 1)} s after ${settleSeconds} s of settling; left after stop: ${raw.left}.`,
    `All: ${f(perThousandCore(w.engineCpuS, w.seconds, n))} % of a core per 1,000, ${w.end.engineProcesses} processes, PSS ${f(mb(w.end.enginePssKb) / 1024)} GB, summed RSS ${f(mb(w.end.engineRssKb) / 1024)} GB.`,
    '',
    '| engine | servers | CPU per 1,000, % of a core | PSS per server | RSS summed per server | processes per server |',
    '| --- | --- | --- | --- | --- | --- |',
    kind('redis-server', counts.redis),
    kind('postgres', counts.postgresql),
    '',
  ].join('\n');
  process.stdout.write(`\n${text}\n`);
  if (values.out !== '') {
    await mkdir(dirname(values.out!), { recursive: true });
    await writeFile(values.out!, text);
  }
}

async function main(): Promise<void> {
  const loadBefore = loadText();
  const date = new Date().toISOString().slice(0, 19);
  let commit = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // not a checkout
  }
  log(`density bench: ${redisCount} Redis + ${postgresqlCount} PostgreSQL, idle ${seconds} s, raw ${rawMode}; load ${loadBefore}`);
  if (!withCoffer) return rawOnly(loadBefore, date, commit);
  const coffer = await runCoffer();
  const n = coffer.counts.redis + coffer.counts.postgresql;
  const rawCounts = { redis: Math.min(coffer.counts.redis, rawCap), postgresql: Math.min(coffer.counts.postgresql, rawCap) };
  const raw = rawCounts.redis + rawCounts.postgresql > 0 ? await runRaw(coffer.postgresBin, rawCounts) : undefined;
  await cleanUp();
  const loadAfter = loadText();
  const rawN = raw === undefined ? 0 : raw.counts.redis + raw.counts.postgresql;

  const { idle, baseline, baselineIdle } = coffer;
  const cofferRssPer = (mb(Math.max(idle.start.ownRssKb, idle.end.ownRssKb) - baseline.ownRssKb) / n) * 1024;
  const rows = [
    '| per 1,000 idle instances | Coffer | raw engines |',
    '| --- | --- | --- |',
    `| engines: CPU, % of a core | ${f(perThousandCore(idle.engineCpuS, idle.seconds, n))} | ${raw ? f(perThousandCore(raw.idle.engineCpuS, raw.idle.seconds, rawN)) : '—'} |`,
    `| Coffer's own process: CPU, % of a core (beyond its ${f((baselineIdle.ownCpuS / baselineIdle.seconds) * 100)} % with no instance) | ${f(perThousandCore(idle.ownCpuS - (baselineIdle.ownCpuS / baselineIdle.seconds) * idle.seconds, idle.seconds, n))} | — |`,
    `| all: CPU, % of a core | ${f(perThousandCore(idle.engineCpuS + idle.ownCpuS, idle.seconds, n))} | ${raw ? f(perThousandCore(raw.idle.engineCpuS, raw.idle.seconds, rawN)) : '—'} |`,
    '',
    '| per instance | Coffer | raw engines |',
    '| --- | --- | --- |',
    `| Coffer's RSS: (with N − with none) / N | ${f(cofferRssPer, 0)} kB | — |`,
    `| Coffer's open file descriptors: (with N − with none) / N | ${f((idle.end.fds - baseline.fds) / n)} | — |`,
    `| engines: PSS | ${f(mb(idle.end.enginePssKb) / n)} MB | ${raw ? f(mb(raw.idle.end.enginePssKb) / rawN) : '—'} MB |`,
    `| engines: RSS summed (shared pages counted in each process) | ${f(mb(idle.end.engineRssKb) / n)} MB | ${raw ? f(mb(raw.idle.end.engineRssKb) / rawN) : '—'} MB |`,
    `| engine processes | ${f(idle.end.engineProcesses / n)} | ${raw ? f(raw.idle.end.engineProcesses / rawN) : '—'} |`,
  ];
  // each engine on its own: the same figures for its processes only
  const kindRows = (label: string, name: string, cn: number, rn: number) => {
    const k = (w: Idle) => ({ cpu: (w.end.kinds[name]?.cpu ?? 0) - (w.start.kinds[name]?.cpu ?? 0), pss: w.end.kinds[name]?.pssKb ?? 0, rss: w.end.kinds[name]?.rssKb ?? 0, procs: w.end.kinds[name]?.processes ?? 0 });
    const c = k(idle);
    const r = raw === undefined ? undefined : k(raw.idle);
    return [
      `| ${label}: CPU per 1,000, % of a core | ${f(perThousandCore(c.cpu, idle.seconds, cn))} | ${r ? f(perThousandCore(r.cpu, raw!.idle.seconds, rn)) : '—'} |`,
      `| ${label}: PSS per instance | ${f(mb(c.pss) / cn)} MB | ${r && rn > 0 ? f(mb(r.pss) / rn) : '—'} MB |`,
      `| ${label}: RSS summed per instance | ${f(mb(c.rss) / cn)} MB | ${r && rn > 0 ? f(mb(r.rss) / rn) : '—'} MB |`,
      `| ${label}: processes per instance | ${f(c.procs / cn)} | ${r && rn > 0 ? f(r.procs / rn) : '—'} |`,
    ];
  };
  rows.push(
    '',
    '| each engine | Coffer | raw |',
    '| --- | --- | --- |',
    ...kindRows('Redis', 'redis-server', coffer.counts.redis, raw?.counts.redis ?? 0),
    ...kindRows('PostgreSQL', 'postgres', coffer.counts.postgresql, raw?.counts.postgresql ?? 0),
  );
  const lines = [
    `# bench/density — ${date}Z${commit === '' ? '' : ` (HEAD ${commit})`}`,
    '',
    `Machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; postgres from ${coffer.postgresBin ?? '—'}. Load average (1, 5, 15 min) ${loadBefore} at the start, ${loadAfter} at the end.`,
    `Asked: ${redisCount} Redis + ${postgresqlCount} PostgreSQL, ${parallel} creates in flight. Created ${coffer.created}, ACTIVE/HEALTHY ${n} (${coffer.counts.redis} Redis, ${coffer.counts.postgresql} PostgreSQL) in ${f(coffer.creation.seconds, 0)} s, ${f(n / coffer.creation.seconds)}/s; ${coffer.creation.failures.length} failed.`,
    ...coffer.creation.failures.map((x) => `- failed: ${x}`),
    `Idle windows: Coffer ${f(idle.seconds, 1)} s after ${settleSeconds} s of settling (load ${'at its end'} ${loadAfter.split(' ')[0]}); raw ${raw ? `${raw.counts.redis} Redis + ${raw.counts.postgresql} PostgreSQL started by hand in ${f(raw.startSeconds, 0)} s, ${f(raw.idle.seconds, 1)} s window` : 'not run'}.`,
    `Coffer's process: RSS ${f(mb(baseline.ownRssKb), 1)} MB with no instance, ${f(mb(idle.start.ownRssKb), 1)} / ${f(mb(idle.end.ownRssKb), 1)} MB at the start / end of the idle window, ${f(mb(coffer.afterDeleteRssKb), 1)} MB after deleting them all; ${baseline.fds} → ${idle.end.fds} open file descriptors; idle CPU ${f(idle.ownCpuS, 2)} s in ${f(idle.seconds, 1)} s (${f((idle.ownCpuS / idle.seconds) * 100)} % of a core), engines ${f(idle.engineCpuS, 2)} s.`,
    `Engines: ${idle.end.engineProcesses} processes, PSS ${f(mb(idle.end.enginePssKb) / 1024)} GB, summed RSS ${f(mb(idle.end.engineRssKb) / 1024)} GB.` +
      (raw ? ` Raw: ${raw.idle.end.engineProcesses} processes, PSS ${f(mb(raw.idle.end.enginePssKb) / 1024)} GB, RSS ${f(mb(raw.idle.end.engineRssKb) / 1024)} GB.` : ''),
    `Deleted all in ${f(coffer.deletion.seconds, 0)} s, ${coffer.deletion.failures.length} failed; left after delete: ${coffer.leftEngines} engine processes, ${coffer.leftUsers.length} instance OS users${raw ? `; raw engines left: ${raw.left}` : ''}.`,
    ...coffer.deletion.failures.map((x) => `- delete failed: ${x}`),
    '',
    ...rows,
    '',
  ];
  const text = lines.join('\n');
  process.stdout.write(`\n${text}\n`);
  if (values.out !== '') {
    await mkdir(dirname(values.out!), { recursive: true });
    await writeFile(values.out!, text);
  }
}

try {
  await main();
} finally {
  await cleanUp();
}
// ioredis and pg may hold timers
process.exit(0);
