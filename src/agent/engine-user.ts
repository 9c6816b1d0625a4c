import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { CofferError } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { EngineIdentity, LocalProcessRunner } from './local-process-runner.js';

// When the agent runs as root, engines run as unprivileged system users (PostgreSQL refuses
// root): `coffer-db` for the host's own work (discovery, the warm pool) and one user per
// instance (instance-user.ts). Users are created with useradd; their uid/gid come from NSS, not
// from parsing /etc/passwd.

const run = promisify(execFile);
const timeout = 30_000;
/** useradd, userdel and groupdel exit 1 or 10 when another process holds the lock on /etc/passwd or /etc/group */
const lockBusyCodes = new Set([1, 10]);
const lockRetries = 20;

const userName = /^[a-z_][a-z0-9_-]{0,31}$/;

export function isValidUserName(name: string): boolean {
  return userName.test(name);
}

function exitCode(err: unknown): unknown {
  return (err as { code?: unknown }).code;
}

export async function lookupUser(name: string): Promise<EngineIdentity | undefined> {
  try {
    const { stdout } = await run('getent', ['passwd', name], { timeout });
    const fields = stdout.trim().split(':');
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : undefined;
  } catch (err) {
    // getent exits 2 when the key is unknown
    if (exitCode(err) === 2) return undefined;
    throw new CofferError('Internal', `Could not look up the engine user ${name}: ${(err as Error).message}`, { cause: err });
  }
}

// One change of the account files at a time from this process: concurrent ones fight over the lock files.
let accountsTail: Promise<unknown> = Promise.resolve();

/**
 * Runs useradd, userdel or groupdel, waiting out a lock another process (another agent on this host)
 * holds; resolves the exit code, 0 on success.
 */
export function changeAccounts(program: 'useradd' | 'userdel' | 'groupdel', args: readonly string[]): Promise<number> {
  const work = async (): Promise<number> => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await run(program, [...args], { timeout });
        return 0;
      } catch (err) {
        const code = exitCode(err);
        if (typeof code !== 'number') {
          throw new CofferError('Internal', `${program} could not run: ${(err as Error).message}`, { cause: err });
        }
        if (!lockBusyCodes.has(code) || attempt >= lockRetries) return code;
        await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 100));
      }
    }
  };
  const result = accountsTail.then(work, work);
  accountsTail = result.catch(() => undefined);
  return result;
}

/** A range of uids and gids, both ends included. */
export interface IdRange {
  min: number;
  max: number;
}

/**
 * A system user without home or login shell, with a group of its own (whatever login.defs'
 * USERGROUPS_ENAB says): `useradd` exit code, 9 when the name is taken. `ids`: where its uid
 * and gid come from instead of login.defs' system range (SYS_UID_MIN..SYS_UID_MAX, 101..999 by
 * default: room for fewer than 900 users beside the packages' own).
 */
export function addSystemUser(name: string, ids?: IdRange): Promise<number> {
  const range =
    ids === undefined
      ? []
      : ['SYS_UID_MIN', 'SYS_GID_MIN'].flatMap((key) => ['-K', `${key}=${ids.min}`]).concat(['SYS_UID_MAX', 'SYS_GID_MAX'].flatMap((key) => ['-K', `${key}=${ids.max}`]));
  // --no-log-init: no lastlog or faillog record, which for a high uid would be written far into those files
  return changeAccounts('useradd', ['--system', ...range, '--user-group', '--no-create-home', '--no-log-init', '--shell', '/usr/sbin/nologin', name]);
}

/** The gid of the group `name`, if there is one. */
export async function lookupGroup(name: string): Promise<number | undefined> {
  try {
    const { stdout } = await run('getent', ['group', name], { timeout });
    const gid = Number(stdout.trim().split(':')[2]);
    return Number.isInteger(gid) ? gid : undefined;
  } catch (err) {
    if (exitCode(err) === 2) return undefined;
    throw new CofferError('Internal', `Could not look up the group ${name}: ${(err as Error).message}`, { cause: err });
  }
}

/** The entry of `name` in an account file (/etc/passwd, /etc/group): its fields, or undefined. */
function fileEntry(text: string, name: string): string[] | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${name}:`));
  return line?.split(':');
}

/**
 * Whether `identity` is still as it was made: the user with its uid and gid, and a group of the
 * same name with that gid. useradd writes both into the local account files, so those files
 * answer for a user Coffer made without a process start (a getent each costs 5 to 10 ms on the
 * path of a create); only where they do not hold the name (NSS finds it elsewhere, or it is
 * gone) does getent decide, as every other lookup here does.
 */
export async function stillAsMade(identity: EngineIdentity): Promise<boolean> {
  const [passwd, group] = await Promise.all([readFile('/etc/passwd', 'utf8').catch(() => ''), readFile('/etc/group', 'utf8').catch(() => '')]);
  const user = fileEntry(passwd, identity.name);
  const own = fileEntry(group, identity.name);
  if (user !== undefined && own !== undefined) {
    return Number(user[2]) === identity.uid && Number(user[3]) === identity.gid && Number(own[2]) === identity.gid;
  }
  const [found, gid] = await Promise.all([lookupUser(identity.name), lookupGroup(identity.name)]);
  return found !== undefined && found.uid === identity.uid && found.gid === identity.gid && gid === identity.gid;
}

export async function ensureEngineUser(name: string, logger: Logger): Promise<EngineIdentity> {
  if (!isValidUserName(name)) {
    throw new CofferError('BadRequest', `Invalid engine user name "${name}".`);
  }
  const known = await lookupUser(name);
  if (known !== undefined) return known;
  const code = await addSystemUser(name);
  // 9: another agent created it meanwhile; the lookup below decides
  if (code === 0) logger.info({ engineUser: name }, 'created the engine user');
  else logger.warn({ engineUser: name, code }, 'useradd failed');
  const created = await lookupUser(name);
  if (created === undefined) {
    throw new CofferError('Internal', `Could not create the engine user ${name}: run useradd --system ${name} yourself.`);
  }
  return created;
}

/** The engine user must traverse every parent of the instances directory (e.g. not under /root, mode 700). */
export async function checkEngineUserReaches(dir: string, runner: LocalProcessRunner): Promise<void> {
  if (runner.identity === undefined) return;
  try {
    await runner.run('test', ['-x', dir], { timeoutMs: timeout });
  } catch {
    throw new CofferError(
      'BadRequest',
      `The engine user ${runner.identity.name} cannot reach ${dir}: choose a --data-dir that user can ` +
        'traverse (e.g. /var/lib/coffer), or make every parent directory searchable by it.',
    );
  }
}
