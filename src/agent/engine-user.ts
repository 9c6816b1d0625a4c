import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CofferError } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { EngineIdentity, LocalProcessRunner } from './local-process-runner.js';

// When the agent runs as root, engines run as an unprivileged system user (PostgreSQL refuses
// root). The user is created once; its uid/gid come from NSS, not from parsing /etc/passwd.

const run = promisify(execFile);
const timeout = 30_000;

async function lookup(name: string): Promise<EngineIdentity | undefined> {
  try {
    const { stdout } = await run('getent', ['passwd', name], { timeout });
    const fields = stdout.trim().split(':');
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : undefined;
  } catch (err) {
    // getent exits 2 when the key is unknown
    if ((err as { code?: unknown }).code === 2) return undefined;
    throw new CofferError('Internal', `Could not look up the engine user ${name}: ${(err as Error).message}`, { cause: err });
  }
}

export async function ensureEngineUser(name: string, logger: Logger): Promise<EngineIdentity> {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) {
    throw new CofferError('BadRequest', `Invalid engine user name "${name}".`);
  }
  const known = await lookup(name);
  if (known !== undefined) return known;
  try {
    await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name], { timeout });
    logger.info({ engineUser: name }, 'created the engine user');
  } catch (err) {
    // another agent may have created it meanwhile (useradd exits 9); the lookup below decides
    logger.warn({ err, engineUser: name }, 'useradd failed');
  }
  const created = await lookup(name);
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
