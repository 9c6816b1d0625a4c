import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CofferError } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import { isExecutable } from '../binary-discovery.js';
import type { EngineBinary, UpgradeContext, UpgradeOutcome } from '../engine.js';
import { adminRole } from './admin.js';
import { runningPostmaster, stopPostmaster, waitUntilReady } from './postmaster.js';
import { initdbArguments } from './warm-cluster.js';

// A PostgreSQL instance moved to another major version while its engine is stopped, in two ways:
// - pg_upgrade in link mode, where the target's installation has it (Debian's, PGDG's): its
//   `--check` runs first and refuses before anything is touched; the new cluster's files are
//   hard links to the old one's, so it costs seconds whatever the size.
// - otherwise (the npm builds hold the server alone) a logical copy: the old cluster and a new
//   one each run on a socket of their own (no TCP: only the engine's user reaches them), roles
//   and databases are dumped with a pg_dump at least as new as the old server and restored.
// Either way the new cluster is made beside the old one (`data.upgrading`) and takes its place
// only once it holds everything; until then a failure removes it and leaves the old data as it
// was. A minor version (same major) needs nothing: the engine restarts on the new binaries.

const upgradeTimeoutMs = 6 * 60 * 60 * 1000;
const serverTimeoutMs = 120_000;
const stopTimeoutMs = 30_000;

interface Paths {
  dataDir: string;
  newDir: string;
  oldDir: string;
  adminSecret: string;
  pwfile: string;
  log: string;
}

function pathsOf(dir: string): Paths {
  return {
    dataDir: join(dir, 'data'),
    newDir: join(dir, 'data.upgrading'),
    oldDir: join(dir, 'data.pre-upgrade'),
    adminSecret: join(dir, `${adminRole}.password`),
    pwfile: join(dir, '.upgrade-pwfile'),
    log: join(dir, 'upgrade.log'),
  };
}

const major = (version: string) => Number(version.split('.')[0]);

/** What pg_upgrade needs of each installation (it runs the old one's server and control tools, and the new one's client tools). */
const pgUpgradeNeeds = {
  old: ['postgres', 'pg_ctl', 'pg_controldata'],
  new: ['pg_upgrade', 'postgres', 'pg_ctl', 'initdb', 'pg_controldata', 'pg_resetwal', 'pg_dump', 'pg_dumpall', 'psql', 'vacuumdb'],
};

async function hasAll(binDir: string, programs: readonly string[]): Promise<boolean> {
  for (const program of programs) if (!(await isExecutable(join(binDir, program)))) return false;
  return true;
}

export type Method = { kind: 'pg_upgrade' } | { kind: 'dump'; tools: string };

/**
 * pg_upgrade where both installations have what it runs; else a dump with the newest pg_dump of
 * the host that can read the old server (pg_dump refuses a server newer than itself).
 */
export async function chooseUpgradeMethod(from: EngineBinary, to: EngineBinary, installed: readonly EngineBinary[]): Promise<Method> {
  if ((await hasAll(from.binDir, pgUpgradeNeeds.old)) && (await hasAll(to.binDir, pgUpgradeNeeds.new))) return { kind: 'pg_upgrade' };
  const candidates = [to, ...installed].filter((b) => major(b.version) >= major(from.version)).sort((a, b) => major(b.version) - major(a.version));
  for (const candidate of candidates) {
    if (await hasAll(candidate.binDir, ['pg_dump', 'pg_dumpall', 'psql'])) return { kind: 'dump', tools: candidate.binDir };
  }
  throw new CofferError(
    'OperationNotSupported',
    `PostgreSQL ${from.versionName} cannot be upgraded to ${to.versionName} on this host: it has neither pg_upgrade for ${to.versionName} ` +
      `nor a pg_dump of version ${from.versionName} or later. Install PostgreSQL ${to.versionName}'s server package (postgresql-${to.versionName}) on the host.`,
  );
}

export async function upgradePostgresql(context: UpgradeContext): Promise<UpgradeOutcome> {
  const { from, to } = context;
  const paths = pathsOf(context.placement.dir);
  if (major(to.version) < major(from.version)) {
    throw new CofferError('BadRequest', `PostgreSQL ${from.versionName} cannot be downgraded to ${to.versionName}.`);
  }
  if ((await runningPostmaster(paths.dataDir)) !== undefined) throw new CofferError('Internal', 'PostgreSQL still runs: it is stopped before an upgrade.');
  const onDisk = await dataVersion(context.runner, paths.dataDir);
  if (onDisk === to.versionName) return { method: 'none' };
  if (major(to.version) === major(from.version)) return { method: 'restart' };
  if (onDisk !== from.versionName) {
    throw new CofferError('EngineError', `The data directory does not hold PostgreSQL ${from.versionName}: it is left as it is.`);
  }
  const method = await chooseUpgradeMethod(from, to, context.installed);
  await moveCluster(context, method);
  return { method: method.kind };
}

/** Makes the new cluster beside the old one, fills it by `method` and swaps it in; on failure the old one is left as it was. */
export async function moveCluster(context: UpgradeContext, method: Method): Promise<void> {
  const { from, to, runner, logger } = context;
  const paths = pathsOf(context.placement.dir);
  const password = (await readFile(paths.adminSecret, 'utf8')).trim();
  // what a failure before the swap leaves behind is removed before anything else
  await rm(paths.newDir, { recursive: true, force: true });
  await rm(paths.oldDir, { recursive: true, force: true });
  logger.info({ from: from.version, to: to.version, method: method.kind }, 'upgrading PostgreSQL');
  const sockets = await socketDir(runner);
  try {
    await initdbNew(runner, to, paths, password);
    if (method.kind === 'pg_upgrade') await runPgUpgrade(runner, from, to, paths, password, sockets);
    else await copyLogically(runner, from, to, method.tools, paths, password, sockets);
  } catch (err) {
    await rm(paths.newDir, { recursive: true, force: true });
    // pg_upgrade's link mode disables the old cluster (global/pg_control renamed) once it links;
    // put back as the engine's user, since the host never works through the data directory's paths
    await runner.run('/bin/mv', ['-n', 'global/pg_control.old', 'global/pg_control'], { cwd: paths.dataDir, timeoutMs: serverTimeoutMs }).catch(() => undefined);
    throw err;
  } finally {
    await rm(sockets, { recursive: true, force: true });
  }
  // the swap: two renames in the host's directory; the old cluster goes only once the new one is in place
  await rename(paths.dataDir, paths.oldDir);
  await rename(paths.newDir, paths.dataDir);
  // the upgrade is done whatever happens to the leftovers: the next upgrade removes them first
  await rm(paths.oldDir, { recursive: true, force: true }).catch((err: unknown) => logger.warn({ err }, 'could not remove the cluster before the upgrade'));
  logger.info({ from: from.version, to: to.version, method: method.kind }, 'PostgreSQL upgraded');
}

/**
 * The major version the data directory holds, read as the engine's user: the file is in a
 * directory that user owns (it could be a link to one only the host may read), and what it says
 * is only ever compared, never shown.
 */
async function dataVersion(runner: ProcessRunner, dataDir: string): Promise<string> {
  const { stdout } = await runner.run('/bin/cat', ['PG_VERSION'], { cwd: dataDir, timeoutMs: serverTimeoutMs });
  return stdout.trim();
}

/**
 * Where the upgrade's servers put their sockets: a directory of the engine's user alone, with a
 * short path, since a socket's path has at most 107 bytes and an instance's directory may be deep
 * (the instance's own socket is checked against that limit; `data.upgrading` is longer).
 */
async function socketDir(runner: ProcessRunner): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-up-'));
  await runner.handOver(dir);
  return dir;
}

async function initdbNew(runner: ProcessRunner, to: EngineBinary, paths: Paths, password: string): Promise<void> {
  // the engine's user fills a directory the host made; the same superuser and password as the old
  await mkdir(paths.newDir, { mode: 0o700 });
  await runner.handOver(paths.newDir);
  await writeFile(paths.pwfile, password, { mode: 0o600 });
  await runner.handOver(paths.pwfile);
  try {
    await runner.run(join(to.binDir, 'initdb'), initdbArguments(paths.newDir, paths.pwfile), { timeoutMs: serverTimeoutMs });
  } finally {
    await rm(paths.pwfile, { force: true });
  }
}

async function runPgUpgrade(runner: ProcessRunner, from: EngineBinary, to: EngineBinary, paths: Paths, password: string, sockets: string): Promise<void> {
  const args = [
    `--old-bindir=${from.binDir}`,
    `--new-bindir=${to.binDir}`,
    `--old-datadir=${paths.dataDir}`,
    `--new-datadir=${paths.newDir}`,
    `--username=${adminRole}`,
    // its servers listen on a socket there and nowhere else
    `--socketdir=${sockets}`,
  ];
  const options = { timeoutMs: upgradeTimeoutMs, cwd: paths.newDir, env: { PGPASSWORD: password } };
  // refuses (an extension the new version lacks, a data type it cannot read) before anything changes
  await runner.run(join(to.binDir, 'pg_upgrade'), ['--check', ...args], options).catch((err: unknown) => {
    throw upgradeRefused(err, 'pg_upgrade --check');
  });
  await runner.run(join(to.binDir, 'pg_upgrade'), ['--link', ...args], options);
}

function upgradeRefused(err: unknown, what: string): CofferError {
  const details = err instanceof CofferError ? err.details : undefined;
  return new CofferError('EngineError', `${what} refused the upgrade: the instance keeps its version and data.`, {
    ...(details === undefined ? {} : { details }),
    cause: err,
  });
}

interface Temporary {
  pid: number;
  dataDir: string;
}

/** A server with its data directory's own settings, no TCP, and a socket in `sockets` named by `port`. */
async function startTemporary(runner: ProcessRunner, binary: EngineBinary, dataDir: string, sockets: string, port: number, log: string): Promise<Temporary> {
  const process = await runner.spawnDetached(
    join(binary.binDir, 'postgres'),
    ['-D', '.', '-c', "listen_addresses=", '-c', `unix_socket_directories=${sockets}`, '-c', `port=${port}`, '-c', 'archive_mode=off'],
    { logFile: log, cwd: dataDir },
  );
  await waitUntilReady({ dataDir, pid: process.pid, exited: process.exited, logFile: log, timeoutMs: serverTimeoutMs });
  return { pid: process.pid, dataDir };
}

async function copyLogically(
  runner: ProcessRunner,
  from: EngineBinary,
  to: EngineBinary,
  tools: string,
  paths: Paths,
  password: string,
  sockets: string,
): Promise<void> {
  const servers: Temporary[] = [];
  // the two servers' sockets, side by side: one port each
  const [oldPort, newPort] = [5432, 5433];
  try {
    servers.push(await startTemporary(runner, from, paths.dataDir, sockets, oldPort, paths.log));
    servers.push(await startTemporary(runner, to, paths.newDir, sockets, newPort, paths.log));
    const env = (dataDir: string) => ({
      PGHOST: sockets,
      PGPORT: String(dataDir === paths.dataDir ? oldPort : newPort),
      PGUSER: adminRole,
      PGPASSWORD: password,
      PGAPPNAME: 'coffer-upgrade',
    });
    const restore = (database: string) => ['--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', `--dbname=${database}`];
    // roles first; the guest's own exists in the new cluster already (pg_dumpall's CREATE of
    // it is the one statement that is expected to fail: it goes, its ALTER stays)
    const globals = await runner.run(join(tools, 'pg_dumpall'), ['--globals-only', '--no-password'], { timeoutMs: serverTimeoutMs, env: env(paths.dataDir) });
    const ownCreate = `CREATE ROLE ${adminRole};`;
    const script = globals.stdout
      .split('\n')
      .filter((line) => line.trim() !== ownCreate)
      .join('\n');
    await runner.run(join(tools, 'psql'), restore('postgres'), { timeoutMs: serverTimeoutMs, env: env(paths.newDir), input: script });
    const listed = await runner.run(
      join(tools, 'psql'),
      ['--no-psqlrc', '--tuples-only', '--no-align', '--dbname=postgres', '--command=SELECT datname FROM pg_database WHERE datallowconn AND datname <> \'template0\' ORDER BY datname'],
      { timeoutMs: serverTimeoutMs, env: env(paths.dataDir) },
    );
    for (const database of listed.stdout.split('\n').filter((name) => name !== '')) {
      // postgres and template1 exist in the new cluster: their contents go into them; every
      // other database is created by its dump with its owner, settings and grants
      const builtIn = database === 'postgres' || database === 'template1';
      const dump = runner.stream(join(tools, 'pg_dump'), ['--no-password', ...(builtIn ? [] : ['--create']), `--dbname=${database}`], {
        timeoutMs: upgradeTimeoutMs,
        env: env(paths.dataDir),
      });
      const load = runner.stream(join(tools, 'psql'), restore(builtIn ? database : 'postgres'), { timeoutMs: upgradeTimeoutMs, env: env(paths.newDir) });
      await Promise.all([pipeline(dump.stdout, load.stdin), dump.exited, load.exited, drain(load.stdout)]).catch((err: unknown) => {
        dump.kill();
        load.kill();
        throw err;
      });
    }
  } finally {
    for (const server of servers.reverse()) await stopPostmaster(server.pid, server.dataDir, stopTimeoutMs);
  }
}

async function drain(stream: NodeJS.ReadableStream): Promise<void> {
  for await (const _chunk of stream) {
    // psql's output says nothing the exit status does not
  }
}
