import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { CofferError } from '../common/index.js';
import type { Logger } from '../common/index.js';
import { addSystemUser, changeAccounts, isValidUserName, lookupGroup, lookupUser, type IdRange } from './engine-user.js';
import type { EngineIdentity } from './local-process-runner.js';

// When the agent runs as root, each instance's engine runs as an OS user of its own. A
// tenant's superuser can run programs and read files as that user (PostgreSQL's COPY ...
// PROGRAM, MariaDB's FILE privilege): with one user per instance that reaches the instance's
// own files and nothing of other tenants or of Coffer. The name goes into the instance record,
// so a restarted agent finds the same user; the user goes when the instance is deleted.

const run = promisify(execFile);
const candidates = 5;
/** where any user may leave files behind: cleared of the user's before its uid is freed for reuse */
const sharedTempDirs = ['/tmp', '/var/tmp', '/dev/shm', '/run/lock', '/dev/mqueue'];
/** System V IPC objects outlive their processes (a killed PostgreSQL leaves its segment) */
const sysvIpc = [
  { table: '/proc/sysvipc/shm', id: 'shmid', flag: '-m' },
  { table: '/proc/sysvipc/sem', id: 'semid', flag: '-s' },
  { table: '/proc/sysvipc/msg', id: 'msqid', flag: '-q' },
];
const killRounds = 50;
/** rounds of killing as the user, with 150 ms of waits in all for the killed to be gone */
const fastRounds = 5;
const userRunTimeoutMs = 60_000;
const userEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' };
/**
 * Where instance users' uids and gids come from: one user per instance outgrows login.defs'
 * system range (fewer than 900 ids on Debian, shared with the packages' users) long before a
 * host is full. Above Debian's reserved ids and systemd's dynamic users (up to 65535), below
 * 100000, where useradd begins the subordinate ids of rootless containers: 34,464 users.
 */
export const instanceIds = { min: 65536, max: 99999 };

/**
 * `coffer-` and 12 random hex digits (useradd allows 32 characters). Random, not derived from
 * the instance id: user names show in every `ps`, and another tenant must not learn the ids of
 * the instances beside theirs. The instance record keeps the name; records from before keep
 * theirs (the start of the id), which is found and removed the same way.
 */
export function instanceUserName(): string {
  return `coffer-${randomBytes(6).toString('hex')}`;
}

/** Makes the user `name` with a group of its own; undefined when the name is taken (a user is never shared). */
export async function addInstanceUser(name: string, ids: IdRange = instanceIds): Promise<EngineIdentity | undefined> {
  const code = await addSystemUser(name, ids);
  if (code === 9) return undefined;
  // 4: no free uid or gid left in the range
  if (code === 4) {
    throw new CofferError('Internal', `useradd ${name} found no free uid or gid from ${ids.min} to ${ids.max}: this host holds as many instance users as it can.`);
  }
  if (code !== 0) throw new CofferError('Internal', `useradd ${name} failed with exit code ${code}.`);
  const identity = await lookupUser(name);
  if (identity === undefined) throw new CofferError('Internal', `The new user ${name} cannot be looked up.`);
  // the instance directory opens to this gid: a group shared with other users would open it to them
  if ((await lookupGroup(name)) !== identity.gid) {
    await changeAccounts('userdel', [name]);
    throw new CofferError('Internal', `The new user ${name} did not get a group of its own.`);
  }
  return identity;
}

/** Creates a user no one else has: a name already in use is never shared, the next candidate is tried. */
export async function createInstanceUser(instanceId: string, logger: Logger, ids: IdRange = instanceIds): Promise<EngineIdentity> {
  for (let attempt = 0; attempt < candidates; attempt += 1) {
    const identity = await addInstanceUser(instanceUserName(), ids);
    if (identity === undefined) continue;
    logger.info({ instanceId, osUser: identity.name, uid: identity.uid }, 'created the instance user');
    return identity;
  }
  throw new CofferError('Internal', `No free OS user name for instance ${instanceId}.`);
}

/** The recorded user of an instance; an error when it is gone (its files would belong to no one). */
export async function findInstanceUser(name: string): Promise<EngineIdentity> {
  const identity = isValidUserName(name) ? await lookupUser(name) : undefined;
  if (identity === undefined) {
    throw new CofferError('Internal', `The instance's OS user ${name} does not exist on this host.`);
  }
  return identity;
}

/**
 * Pids whose real, effective, saved or filesystem uid is `uid`. Zombies are left out: they run
 * nothing, SIGKILL cannot end them, and where PID 1 does not reap orphans (as in some containers)
 * an engine that outlived its agent stays one after it stops. userdel does not count them either.
 * Reads the status of every process on the host: a delete takes it only when killing as the
 * user left something (see killAllOf).
 */
export async function processesOf(uid: number): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(`/proc/${name}/status`, 'utf8').catch(() => '');
    if (/^State:\s+Z/m.test(status)) continue;
    const uids = /^Uid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
    if (uids.includes(uid)) found.push(Number(name));
  }
  return found;
}

/** Runs a program as the user, from /, with nothing of the agent's environment; resolves its stderr whatever its exit code. */
async function runAs(identity: EngineIdentity, file: string, args: string[]): Promise<string> {
  try {
    const { stderr } = await run(file, args, { uid: identity.uid, gid: identity.gid, cwd: '/', env: userEnv, timeout: userRunTimeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return stderr;
  } catch (err) {
    const { stderr, killed } = err as { stderr?: unknown; killed?: boolean };
    if (typeof stderr !== 'string' || killed === true) throw new CofferError('Internal', `${file} as ${identity.name} failed: ${(err as Error).message}`, { cause: err });
    return stderr;
  }
}

/**
 * SIGKILL to every process of the user at once: kill(-1) from the user itself signals exactly
 * the processes it may signal, those whose real or saved uid is the user's (never the caller),
 * and the kernel delivers it to all of them in one pass over its task list, in which a fork
 * under way either finishes first (and its child is signalled) or is undone. No walk of /proc:
 * the cost does not grow with the processes other instances run. A constant script, nothing of
 * the instance's in it; its exit code says nothing (kill(-1) is refused for other users' processes).
 */
async function killAsUser(identity: EngineIdentity): Promise<void> {
  // the shell's own kill: sh is on every host, procps' kill not necessarily
  await runAs(identity, 'sh', ['-c', 'kill -9 -1']);
}

/**
 * Whether no other process has the user's real uid, asked of the kernel rather than of /proc: the
 * kernel counts each real uid's processes for RLIMIT_NPROC, and with that limit at 2 a process of
 * the user can fork (itself and its child) only when it is the user's only one. A constant script,
 * nothing of the instance's in it. Zombies count until reaped: a false "no" sends the caller the
 * slow way, which leaves them out.
 */
async function aloneAsUser(identity: EngineIdentity): Promise<boolean> {
  try {
    await run('prlimit', ['--nproc=2:2', '--', 'sh', '-c', ': & wait'], { uid: identity.uid, gid: identity.gid, cwd: '/', env: userEnv, timeout: userRunTimeoutMs });
    return true;
  } catch (err) {
    // sh: Cannot fork (exit 2)
    if ((err as { code?: unknown }).code === 2) return false;
    throw new CofferError('Internal', `Could not count the processes of ${identity.name}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The slow way, by pid from a scan of /proc, as root: for what killAsUser cannot reach (a process
 * whose effective uid alone is the user's, which only a privileged program makes), once userdel
 * refused the user for it. Repeated until none is left, as one may fork while the others die.
 */
async function killAllOf(uid: number, logger: Logger): Promise<void> {
  for (let round = 0; round < killRounds; round += 1) {
    const pids = await processesOf(uid);
    if (pids.length === 0) return;
    if (round === 0) logger.warn({ uid, pids }, 'processes of the instance user outlived SIGKILL sent as the user: killing them by pid');
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new CofferError('Internal', `Processes of uid ${uid} keep running after ${killRounds} rounds of SIGKILL.`);
}

/** Ids of the IPC objects of `table` whose owner or creator is `uid`. */
async function ipcObjectsOf(table: string, idColumn: string, uid: number): Promise<string[]> {
  const [header, ...rows] = (await readFile(table, 'utf8').catch(() => '')).trim().split('\n');
  const columns = header?.trim().split(/\s+/) ?? [];
  const at = (name: string) => columns.indexOf(name);
  return rows
    .map((row) => row.trim().split(/\s+/))
    .filter((fields) => Number(fields[at('uid')]) === uid || Number(fields[at('cuid')]) === uid)
    .map((fields) => fields[at(idColumn)]!);
}

/**
 * Clears the user's files out of the shared temp directories. find runs as the user, so it goes
 * only where the user can go: into what it may search, not into another instance's directory
 * (0710, its own group) nor into a data directory that holds every instance's files under /tmp
 * (the tests', the benches'), where root's `find /tmp -user` walked every file of every instance
 * for each delete. What the user can reach it can delete, with two exceptions handled apart:
 * directories of its own it closed to itself (opened again first) and entries it can no longer
 * delete because a directory it wrote in was closed to it since (then root's full walk, as before).
 * Left, as before it was: an entry of the user in a directory of someone else's the user cannot
 * search or list any more, which the next owner of the uid cannot reach either.
 */
async function clearTempDirs(identity: EngineIdentity, logger: Logger): Promise<void> {
  const dirs: string[] = [];
  for (const dir of sharedTempDirs) if (await access(dir).then(() => true, () => false)) dirs.push(dir);
  if (dirs.length === 0) return;
  const uid = String(identity.uid);
  // preorder, so each directory is opened before find reads it; -ignore_readdir_race: other programs'
  // files vanishing under the walk (a shared /tmp) are no failure of this one
  await runAs(identity, 'find', [...dirs, '-xdev', '-ignore_readdir_race', '-type', 'd', '-user', uid, '!', '-perm', '-u=rwx', '-exec', 'chmod', 'u+rwx', '{}', ';']);
  const stderr = await runAs(identity, 'find', [...dirs, '-xdev', '-ignore_readdir_race', '-user', uid, '-delete']);
  const lines = stderr
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replace(/[‘’]/g, "'"));
  // `find: '<dir>': Permission denied`: a directory the user may not enter, as expected
  const problems = lines.filter((line) => !/^find: '.*': (Permission denied|No such file or directory)$/.test(line));
  const undeletable = (line: string) => /^find: cannot delete '.*': Permission denied$/.test(line);
  for (const dir of dirs.filter((d) => problems.some((line) => undeletable(line) && line.includes(`'${d}/`)))) {
    logger.warn({ osUser: identity.name, dir }, 'the instance user left files it cannot delete itself: walking all of the directory as root');
    await run('find', [dir, '-xdev', '-ignore_readdir_race', '-user', uid, '-delete'], { timeout: 60_000 }).catch((err: unknown) =>
      logger.warn({ err, osUser: identity.name }, 'could not remove all the instance user left'),
    );
  }
  const others = problems.filter((line) => !undeletable(line));
  if (others.length > 0) logger.warn({ osUser: identity.name, problems: others.slice(0, 20) }, 'could not remove all the instance user left in the temp directories');
}

/** What the user leaves outside its instance directory, which the next user given its uid would own. */
async function removeLeftovers(identity: EngineIdentity, logger: Logger): Promise<void> {
  const warn = (err: unknown) => logger.warn({ err, osUser: identity.name }, 'could not remove all the instance user left');
  await clearTempDirs(identity, logger).catch(warn);
  for (const { table, id, flag } of sysvIpc) {
    for (const object of await ipcObjectsOf(table, id, identity.uid)) {
      await run('ipcrm', [flag, object], { timeout: 10_000 }).catch(warn);
    }
  }
}

/**
 * Removes the instance's user once its engine is stopped; a no-op when it is already gone.
 * Nothing of it is left: its processes, its files in the shared temp directories, its System V
 * IPC objects, the user and its group. Nothing here reads every process or every file of the
 * host but userdel, which reads the status of every process (in C, -f or not) and refuses a user
 * a live process still runs as: only then are its processes killed by pid from a scan of /proc,
 * as before, and the temp directories swept again.
 */
export async function removeInstanceUser(name: string, logger: Logger): Promise<void> {
  const identity = isValidUserName(name) ? await lookupUser(name) : undefined;
  if (identity === undefined) return;
  let alone = false;
  for (let round = 0; round < fastRounds && !alone; round += 1) {
    await killAsUser(identity);
    // a killed process takes a moment to be gone (and to be reaped)
    if (round > 0) await new Promise((resolve) => setTimeout(resolve, 10 * 2 ** (round - 1)));
    alone = await aloneAsUser(identity);
  }
  // once nothing runs as the user: nothing makes files behind the sweep (what the probe still
  // counts after 150 ms is, but for a privileged program's child, zombies: userdel tells)
  await removeLeftovers(identity, logger);
  let code = await changeAccounts('userdel', [name]);
  // 8: a live process of the user (real, effective or saved uid) outlived being killed as the user
  if (code === 8) {
    await killAllOf(identity.uid, logger);
    await removeLeftovers(identity, logger);
    code = await changeAccounts('userdel', [name]);
  }
  // 6: removed meanwhile
  if (code !== 0 && code !== 6) throw new CofferError('Internal', `userdel ${name} failed with exit code ${code}.`);
  // userdel keeps the group where login.defs says USERGROUPS_ENAB no
  if ((await lookupGroup(name)) !== undefined) await changeAccounts('groupdel', [name]);
  logger.info({ osUser: name }, 'removed the instance user');
}
