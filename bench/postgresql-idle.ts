// bench/postgresql-idle: issue 14, where an idle PostgreSQL 15 instance spends its CPU. Starts
// `--count` idle clusters of each profile side by side (the same binary, the same window, the
// same load) and reads each process's CPU over an idle window of `--seconds`, by backend type.
//
//   node --import tsx bench/postgresql-idle.ts [--count 10] [--seconds 90] [--settle 60]
//       [--profiles stock,coffer-quiet,coffer] [--memory 256] [--subnet 127.83] [--naptime 5min] [--out <file>]
//
// As root (the servers run as the `postgres` user). Profiles:
//   - stock: initdb's postgresql.conf with the memory settings Coffer gives the flavor (as
//     bench/density's raw servers), nothing connected;
//   - coffer-quiet: postgresql.conf and pg_hba.conf as Coffer renders them (config.ts: archiving
//     to a spool with basic_archive and archive_timeout, the memory settings, ...), initdb as the
//     guest runs it (warm-cluster.ts, initdb's statistics file removed), one tenant database and
//     user made by the guest's own function, nothing connected in the window: what the server
//     alone costs;
//   - coffer: the same, plus what the guest sends an idle instance, by the guest's own code:
//     the health check over its kept connection every 10 s (KeptProbe, healthProbeOps), the
//     engine metrics once a minute over it (postgresqlMetrics), and the WAL shipper's round
//     every 10 s (spool files taken away; PostgresqlWalArchive.archivedThrough at most every
//     15 s once a file was shipped, over the kept connection, with its pg_waldump run as the
//     engine's user).
// Give --settle at least 330 s to measure a settled server: a postmaster's checkpointer first
// sleeps a whole checkpoint_timeout (it computes that sleep while recovery still runs, when
// archive_timeout does not count), so the WAL of a new cluster is switched and archived only
// about 5 minutes after the start, and autovacuum's first rounds analyse initdb's catalogs.
//   - coffer-naptime: coffer with autovacuum_naptime set by a configuration group (--naptime):
//     what a longer naptime would save.
// One more server per profile (the witness, left out of the CPU figures) logs at debug1 to count
// what happens in the window: autovacuum workers per database, checkpoints done and skipped, WAL
// files archived.
//
// CPU: /proc/<pid>/schedstat (ns on CPU) of every live process below each postmaster, by kind
// (the process title); processes that ended in the window (autovacuum workers, short sessions)
// show in their postmaster's cutime+cstime (reaped children, clock ticks). The bench's own CPU
// (what the guest's code costs on Coffer's side, pg_waldump included) is its process's
// utime+stime+cutime+cstime over the window. Prints ms of CPU per instance per minute by kind and
// % of a core per 1,000 instances. Everything is stopped and removed at the end.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, readFile, rm, writeFile, chmod, mkdtemp } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { renderPgHba, renderPostgresqlConf, tuneMemory } from '../src/guest/engines/postgresql/config.js';
import { adminRole, ensureDatabasesAndUsers, healthProbeOps, type AdminEndpoint } from '../src/guest/engines/postgresql/admin.js';
import { forgetInitdbStatistics, initdbArguments } from '../src/guest/engines/postgresql/warm-cluster.js';
import { postgresqlMetrics } from '../src/guest/engines/postgresql/metrics.js';
import { PostgresqlWalArchive } from '../src/guest/engines/postgresql/wal-archive.js';
import { KeptProbe } from '../src/guest/engines/kept-probe.js';
import { LocalProcessRunner } from '../src/agent/local-process-runner.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '90' },
    settle: { type: 'string', default: '60' },
    profiles: { type: 'string', default: 'stock,coffer-quiet,coffer' },
    memory: { type: 'string', default: '256' },
    bin: { type: 'string', default: '/usr/lib/postgresql/15/bin' },
    subnet: { type: 'string', default: '127.83' },
    naptime: { type: 'string', default: '5min' },
    out: { type: 'string', default: '' },
  },
});
const count = Number(values.count);
const seconds = Number(values.seconds);
const settle = Number(values.settle);
const memoryMb = Number(values.memory);
const bin = values.bin;
type Profile = 'stock' | 'coffer-quiet' | 'coffer' | 'coffer-naptime';
const profiles = values.profiles.split(',') as Profile[];
for (const p of profiles) if (!['stock', 'coffer-quiet', 'coffer', 'coffer-naptime'].includes(p)) throw new Error(`unknown profile ${p}`);

const log = (text: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const load = () => loadavg().map((n) => n.toFixed(1)).join(' ');
const ids = {
  uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
  gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
};
const engineRunner = new LocalProcessRunner({ name: 'postgres', ...ids });
const password = 'Idle-bench-pass-1234';
const ticksPerSecond = 100;

interface Server {
  profile: Profile;
  witness: boolean;
  dir: string;
  socketDir: string;
  child: ChildProcess;
  logFile: string;
  spool?: string;
}

const root = await mkdtemp(join(tmpdir(), 'pgidle-'));
execFileSync('chown', [`${ids.uid}:${ids.gid}`, root]);
const servers: Server[] = [];
const timers: NodeJS.Timeout[] = [];
let cleaned = false;
async function cleanUp(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const t of timers) clearInterval(t);
  await Promise.all(
    servers.map(async (s) => {
      if (s.child.exitCode !== null || s.child.signalCode !== null) return;
      const exited = once(s.child, 'exit');
      s.child.kill('SIGINT');
      await exited;
    }),
  );
  await rm(root, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void cleanUp().then(() => process.exit(130)));

function asEngine(cmd: string, args: string[]): Promise<void> {
  const child = spawn(cmd, args, { ...ids, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  return once(child, 'exit').then(([code]) => {
    if (code !== 0) throw new Error(`${cmd} exited with ${code}: ${err}`);
  });
}

// ------------------------------------------------------------------------------------ set-up

const mem = tuneMemory(memoryMb);
const pwfile = join(root, 'pw');
await writeFile(pwfile, `${password}\n`);
await chmod(pwfile, 0o644);
// one initdb as the guest runs it, copied per server (the stock servers too: only the conf differs)
const template = join(root, 'template');
await asEngine(join(bin, 'initdb'), [...initdbArguments(template, pwfile), '-N']);
const stockConf = await readFile(join(template, 'postgresql.conf'), 'utf8');

async function startServer(profile: Profile, i: number, witness: boolean): Promise<Server> {
  try {
    return await startOne(profile, i, witness);
  } catch (err) {
    await cleanUp();
    throw err;
  }
}

async function startOne(profile: Profile, i: number, witness: boolean): Promise<Server> {
  const dir = join(root, `${profile}-${i}`);
  const data = join(dir, 'data');
  await mkdir(dir);
  await cp(template, data, { recursive: true, preserveTimestamps: true });
  const socketDir = join(dir, 's');
  await mkdir(socketDir);
  const spool = profile === 'stock' ? undefined : join(dir, 'spool');
  if (spool !== undefined) await mkdir(spool);
  const port = 5432;
  const address = `${values.subnet}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  const confFile = join(dir, 'postgresql.conf');
  const hbaFile = join(dir, 'pg_hba.conf');
  let conf: string;
  if (profile === 'stock') {
    conf =
      stockConf +
      [
        `listen_addresses = '${address}'`, `port = ${port}`, `unix_socket_directories = '${socketDir}'`, `hba_file = '${hbaFile}'`,
        `max_connections = ${mem.maxConnections}`, `shared_buffers = ${mem.sharedBuffersMb}MB`, `effective_cache_size = ${mem.effectiveCacheSizeMb}MB`,
        `work_mem = ${mem.workMemKb}kB`, `maintenance_work_mem = ${mem.maintenanceWorkMemMb}MB`, '',
      ].join('\n');
  } else {
    const overrides: Record<string, string> = profile === 'coffer-naptime' ? { autovacuum_naptime: values.naptime } : {};
    conf = renderPostgresqlConf({ memoryMb, address, port, socketDir, hbaFile, walSpoolDir: spool, overrides });
  }
  if (witness) conf += "log_min_messages = debug1\nlog_line_prefix = '%m [%p] %b %d '\n";
  await writeFile(confFile, conf);
  await writeFile(hbaFile, renderPgHba(adminRole, ['127.0.0.0/8']));
  execFileSync('chown', ['-R', `${ids.uid}:${ids.gid}`, dir]);
  // as the guest prepares a cluster (warm-cluster.ts)
  if (profile !== 'stock') await forgetInitdbStatistics(engineRunner, data);
  const logFile = join(dir, 'log');
  const { openSync } = await import('node:fs');
  const fd = openSync(logFile, 'a');
  const child = spawn(join(bin, 'postgres'), ['-D', data, '-c', `config_file=${confFile}`], { ...ids, stdio: ['ignore', fd, fd] });
  const server: Server = { profile, witness, dir, socketDir, child, logFile, ...(spool === undefined ? {} : { spool }) };
  servers.push(server);
  const endpoint: AdminEndpoint = { socketDir, port, password };
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const c = new pg.Client({ host: socketDir, port, user: adminRole, password, database: 'postgres' });
      c.on('error', () => undefined);
      await c.connect();
      await c.end();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
  if (profile !== 'stock') {
    // what a create asks of the guest: one database and one user
    await ensureDatabasesAndUsers(endpoint, { databases: [{ name: 'app' }], users: [{ name: 'appuser', password, databases: [{ name: 'app' }] }] });
  }
  if (profile === 'coffer' || profile === 'coffer-naptime') guestTraffic(server, endpoint);
  return server;
}

let shippedFiles = 0;
let reachChecks = 0;
let firstShips = 0;
/** What the guest does to an idle instance, by its own code (bench/postgresql-idle's header). */
function guestTraffic(server: Server, endpoint: AdminEndpoint): void {
  const probe = new KeptProbe(healthProbeOps(async () => endpoint), 3_000);
  // as the lifecycle's walArchiveHost()
  const archive = new PostgresqlWalArchive({
    spoolDir: server.spool!,
    dataDir: join(server.dir, 'data'),
    runner: engineRunner,
    program: (name) => join(bin, name),
    runningEndpoint: async () => endpoint,
    keptQuery: (work) => probe.query(work),
  });
  let lastShipped: string | undefined;
  let checkedAt = 0;
  let beats = 0;
  const jitter = Math.random() * 10_000;
  const heartbeat = async () => {
    beats += 1;
    // the guest's check: a query over the kept connection; metrics ride along once a minute
    if (beats % 6 === 0) await probe.query(postgresqlMetrics);
    else await probe.answers();
  };
  const shipRound = async () => {
    let shipped = false;
    for (const name of await archive.pending()) {
      // stands for the store to the backup storage (Coffer's side, not the engine's)
      await rm(join(server.spool!, name), { force: true });
      shippedFiles += server.witness ? 0 : 1;
      if (archive.advances(name)) {
        if (lastShipped === undefined) firstShips += 1;
        lastShipped = name;
        shipped = true;
      }
    }
    if (lastShipped === undefined || (!shipped && Date.now() - checkedAt < 15_000)) return;
    checkedAt = Date.now();
    reachChecks += server.witness ? 0 : 1;
    await archive.archivedThrough(lastShipped);
  };
  setTimeout(() => {
    timers.push(setInterval(() => void heartbeat().catch((err) => log(`health: ${err}`)), 10_000));
    timers.push(setInterval(() => void shipRound().catch((err) => log(`ship: ${err}`)), 10_000));
  }, jitter).unref();
}

// ------------------------------------------------------------------------------------ /proc

interface Reading {
  /** ns on CPU of each live process, by pid */
  live: Map<number, { kind: string; ns: number; wakes: number }>;
  /** reaped children's CPU, ticks */
  reapedTicks: number;
}

function kindOf(cmdline: string): string {
  const title = cmdline.replace(/\0+$/, '').replace(/\0/g, ' ');
  if (!title.startsWith('postgres: ')) return 'postmaster';
  const rest = title.slice('postgres: '.length);
  if (rest.startsWith('archiver')) return 'archiver';
  if (rest.startsWith('autovacuum launcher')) return 'autovacuum launcher';
  if (rest.startsWith('autovacuum worker')) return 'autovacuum worker';
  if (rest.startsWith('logical replication launcher')) return 'logical replication launcher';
  for (const aux of ['checkpointer', 'background writer', 'walwriter']) if (rest.startsWith(aux)) return aux;
  if (rest.startsWith(`${adminRole} `)) return 'guest session';
  return `other: ${rest.slice(0, 40)}`;
}

async function read(server: Server): Promise<Reading> {
  const pm = server.child.pid!;
  const live = new Map<number, { kind: string; ns: number; wakes: number }>();
  const children = (await readFile(`/proc/${pm}/task/${pm}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean).map(Number);
  for (const pid of [pm, ...children]) {
    const [sched = '', cmdline = '', status = ''] = await Promise.all(
      [`/proc/${pid}/schedstat`, `/proc/${pid}/cmdline`, `/proc/${pid}/status`].map((path) => readFile(path, 'utf8').catch(() => '')),
    );
    if (sched === '' || status === '') continue;
    const wakes = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
    live.set(pid, { kind: pid === pm ? 'postmaster' : kindOf(cmdline), ns: Number(sched.split(' ')[0]), wakes });
  }
  const stat = await readFile(`/proc/${pm}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { live, reapedTicks: Number(f[13]) + Number(f[14]) };
}

async function ownTicks(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
}

const walLines: string[] = [];
/** debug1 lines of the witness's log in the window, counted by what they tell */
function events(text: string): Record<string, number> {
  const counts: Record<string, number> = {};
  const add = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
  for (const line of text.split('\n')) {
    const av = /autovacuum: processing database "([^"]+)"/.exec(line);
    if (av) add(`autovacuum worker in ${av[1]}`);
    else if (/checkpoint skipped/.test(line)) add('checkpoint skipped (idle)');
    else if (/checkpoint starting/.test(line)) add('checkpoint done');
    else if (/archived write-ahead log file|archived "/.test(line)) {
      add('WAL file archived');
      walLines.push(line);
    }
    else if (/connection authorized|connection received/.test(line)) add('connection');
  }
  return counts;
}

// ------------------------------------------------------------------------------------ run

log(`machine: ${cpus().length} cores; load ${load()}; ${count} servers per profile (+1 witness each): ${profiles.join(', ')}; ${memoryMb} MB flavor`);
let k = 0;
const started = performance.now();
for (const profile of profiles) {
  await startServer(profile, k++, true);
  // a few at a time: 2 cores
  for (let i = 0; i < count; i += 4) await Promise.all(Array.from({ length: Math.min(4, count - i) }, () => startServer(profile, k++, false)));
}
log(`${servers.length} servers up in ${((performance.now() - started) / 1000).toFixed(0)} s; settling ${settle} s`);
await sleep(settle * 1000);
const logOffsets = new Map(await Promise.all(servers.filter((s) => s.witness).map(async (s) => [s, (await readFile(s.logFile, 'utf8')).length] as const)));
const loadStart = load();
const shippedBefore = shippedFiles;
const checksBefore = reachChecks;
log(`idle window of ${seconds} s; load ${loadStart}; ${firstShips} coffer servers shipped a WAL file so far`);
const ownStart = await ownTicks();
const before = await Promise.all(servers.map(read));
const t0 = performance.now();
await sleep(seconds * 1000);
const after = await Promise.all(servers.map(read));
const elapsed = (performance.now() - t0) / 1000;
const ownEnd = await ownTicks();
const loadEnd = load();
log(`window done (${elapsed.toFixed(1)} s); load ${loadEnd}`);

// per profile, per kind: ms of CPU per instance per minute
const perMinute = (ms: number, n: number) => (ms / n) * (60 / elapsed);
const table: Record<Profile, Record<string, number>> = {} as never;
const processes: Record<Profile, Record<string, number>> = {} as never;
const wakeups: Record<Profile, Record<string, number>> = {} as never;
for (const profile of profiles) {
  const sums: Record<string, number> = {};
  const procs: Record<string, number> = {};
  const wakes: Record<string, number> = {};
  let n = 0;
  servers.forEach((s, i) => {
    if (s.profile !== profile || s.witness) return;
    n += 1;
    const [b, a] = [before[i]!, after[i]!];
    for (const [pid, { kind, ns, wakes: w }] of a.live) {
      // a process born in the window counts from zero
      const start = b.live.get(pid)?.ns ?? 0;
      sums[kind] = (sums[kind] ?? 0) + (ns - start) / 1e6;
      wakes[kind] = (wakes[kind] ?? 0) + w - (b.live.get(pid)?.wakes ?? 0);
      procs[kind] = (procs[kind] ?? 0) + 1;
    }
    // processes that ended in the window: their CPU before it was in `before`, all of it is in the reaped ticks
    let endedBefore = 0;
    for (const [pid, { ns }] of b.live) if (!a.live.has(pid)) endedBefore += ns / 1e6;
    const reapedMs = ((a.reapedTicks - b.reapedTicks) * 1000) / ticksPerSecond - endedBefore;
    sums['ended in the window (autovacuum workers, short sessions)'] = (sums['ended in the window (autovacuum workers, short sessions)'] ?? 0) + reapedMs;
  });
  table[profile] = Object.fromEntries(Object.entries(sums).map(([kind, ms]) => [kind, perMinute(ms, n)]));
  processes[profile] = Object.fromEntries(Object.entries(procs).map(([kind, c]) => [kind, c / n]));
  wakeups[profile] = Object.fromEntries(Object.entries(wakes).map(([kind, c]) => [kind, perMinute(c, n)]));
}
const witnessEvents: Record<Profile, Record<string, number>> = {} as never;
for (const [s, offset] of logOffsets) {
  const text = (await readFile(s.logFile, 'utf8')).slice(offset);
  witnessEvents[s.profile] = Object.fromEntries(Object.entries(events(text)).map(([k2, v]) => [k2, (v * 60) / elapsed]));
}
const coffersN = servers.filter((s) => (s.profile === 'coffer' || s.profile === 'coffer-naptime') && !s.witness).length;
const benchMs = ((ownEnd - ownStart) * 1000) / ticksPerSecond;

const f = (x: number | undefined, d = 1) => (x === undefined ? '—' : x.toFixed(d));
const kinds = [...new Set(profiles.flatMap((p) => Object.keys(table[p])))].sort();
const lines: string[] = [];
lines.push(
  `${new Date().toISOString().slice(0, 16)}Z, ${cpus().length} cores, PostgreSQL from ${bin}, flavor ${memoryMb} MB; ${count} servers per profile; idle window ${elapsed.toFixed(0)} s after ${settle} s of settling; load average (1, 5, 15 min) ${loadStart} at the start, ${loadEnd} at the end.`,
  '',
  `| ms of CPU per instance per minute | ${profiles.join(' | ')} |`,
  `| --- |${profiles.map(() => ' --- |').join('')}`,
);
for (const kind of kinds) lines.push(`| ${kind} | ${profiles.map((p) => `${f(table[p][kind], 2)} (${f(processes[p][kind] ?? 0, 1)}; ${f(wakeups[p][kind], 0)})`).join(' | ')} |`);
const totals = profiles.map((p) => Object.values(table[p]).reduce((a, b) => a + b, 0));
lines.push(`| **all engine processes** | ${totals.map((t) => `**${f(t, 1)}**`).join(' | ')} |`);
lines.push(`| = % of a core per 1,000 instances | ${totals.map((t) => f((t / 60_000) * 1000 * 100, 1)).join(' | ')} |`);
lines.push('', '(in brackets: live processes of that kind per instance at the end of the window; their wake-ups (voluntary context switches) per instance per minute)', '');
lines.push(`| witness (debug1), per minute | ${profiles.join(' | ')} |`, `| --- |${profiles.map(() => ' --- |').join('')}`);
const eventKinds = [...new Set(profiles.flatMap((p) => Object.keys(witnessEvents[p] ?? {})))].sort();
for (const e of eventKinds) lines.push(`| ${e} | ${profiles.map((p) => f(witnessEvents[p]?.[e] ?? 0, 1)).join(' | ')} |`);
if (coffersN > 0) {
  lines.push(
    '',
    `Guest side (the coffer profiles, this process: the health checks, metrics, shipper rounds, pg_waldump): ${f(perMinute(benchMs, coffersN), 1)} ms per instance per minute ` +
      `(includes the bench's own reading of /proc); WAL files shipped in the window: ${f(((shippedFiles - shippedBefore) * 60) / elapsed / coffersN, 2)} per instance per minute; ` +
      `reach checks: ${f(((reachChecks - checksBefore) * 60) / elapsed / coffersN, 2)} per instance per minute.`,
  );
}
if (walLines.length > 0) lines.push('', 'witness lines on archiving:', ...walLines.map((l) => `    ${l}`));
const text = lines.join('\n');
process.stdout.write(`\n${text}\n`);
if (values.out) await writeFile(values.out, `${text}\n`);
await cleanUp();
process.exit(0);
