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

/**
 * Kills whatever still runs as the instance's user: its engine is stopped by then, but a
 * tenant's superuser may have started programs of its own. Repeated until none is left, as
 * one may fork while the others die.
 */
async function killAllOf(uid: number, logger: Logger): Promise<void> {
  for (let round = 0; round < killRounds; round += 1) {
    const pids = await processesOf(uid);
    if (pids.length === 0) return;
    if (round === 0) logger.warn({ uid, pids }, 'processes of the instance user outlived its engine: killing them');
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

/** What the user leaves outside its instance directory, which the next user given its uid would own. */
async function removeLeftovers(identity: EngineIdentity, logger: Logger): Promise<void> {
  const warn = (err: unknown) => logger.warn({ err, osUser: identity.name }, 'could not remove all the instance user left');
  for (const dir of sharedTempDirs) {
    if (!(await access(dir).then(() => true, () => false))) continue;
    await run('find', [dir, '-xdev', '-user', String(identity.uid), '-delete'], { timeout: 60_000 }).catch(warn);
  }
  for (const { table, id, flag } of sysvIpc) {
    for (const object of await ipcObjectsOf(table, id, identity.uid)) {
      await run('ipcrm', [flag, object], { timeout: 10_000 }).catch(warn);
    }
  }
}

/** Removes the instance's user once its engine is stopped; a no-op when it is already gone. */
export async function removeInstanceUser(name: string, logger: Logger): Promise<void> {
  const identity = isValidUserName(name) ? await lookupUser(name) : undefined;
  if (identity === undefined) return;
  await killAllOf(identity.uid, logger);
  await removeLeftovers(identity, logger);
  const code = await changeAccounts('userdel', [name]);
  // 6: removed meanwhile
  if (code !== 0 && code !== 6) throw new CofferError('Internal', `userdel ${name} failed with exit code ${code}.`);
  // userdel keeps the group where login.defs says USERGROUPS_ENAB no
  if ((await lookupGroup(name)) !== undefined) await changeAccounts('groupdel', [name]);
  logger.info({ osUser: name }, 'removed the instance user');
}
