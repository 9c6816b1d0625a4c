import { chmod, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';

// The data directory holds Coffer's own secrets (the state database with its password hashes
// and tokens, the admin password, the log) beside the instances. When the agent runs as root,
// each engine runs as an OS user of its own, which a tenant's superuser can act as: such a user
// may traverse the directory to its instance's, and read nothing of Coffer's.

/** files of `serve`'s that only Coffer's own user may read */
const privateFiles = ['coffer.sqlite', 'coffer.sqlite-wal', 'coffer.sqlite-shm', 'coffer.sqlite-journal', 'coffer.log', 'admin-password'];
/** made before their writers open them, so that they never exist with the umask's mode */
const createdPrivate = ['coffer.sqlite', 'coffer.log'];

async function restrict(path: string, create: boolean): Promise<void> {
  if (create) {
    // SQLite gives its -wal and -shm files the database file's mode
    await (await open(path, 'a', 0o600)).close();
  }
  await chmod(path, 0o600).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/**
 * Makes `dir` (if needed) searchable but not listable by others when engines run as users of
 * their own (root), private otherwise; with `serve`, its state database, log and admin password
 * readable by Coffer's user alone.
 */
export async function secureDataDir(dir: string, options: { serve: boolean }): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, process.getuid?.() === 0 ? 0o711 : 0o700);
  if (!options.serve) return;
  for (const name of privateFiles) await restrict(join(dir, name), createdPrivate.includes(name));
}
