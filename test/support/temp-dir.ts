import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeInstanceUsersUnder } from './instance-users.js';

/**
 * A temporary data directory that the unprivileged engine user can traverse (mkdtemp makes
 * it 0700, which would lock PostgreSQL out when the tests run as root, as CI does). Keep
 * `prefix` short: sockets live under it.
 */
export async function tempDataDir(prefix: string): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  await chmod(path, 0o755);
  return path;
}

/** {@link tempDataDir} with a `-` after `prefix`, and how to remove it. */
export async function makeDataDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await tempDataDir(`${prefix}-`);
  const remove = async () => {
    // instances left in it take their OS users (and what those still run) with them
    await removeInstanceUsersUnder(path);
    await rm(path, { recursive: true, force: true });
  };
  return { path, remove };
}
