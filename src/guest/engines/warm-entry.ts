import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/index.js';
import type { WarmSource } from './engine.js';

// What every engine's warm pool entry shares (postgresql/warm-cluster.ts,
// mysql-family/install.ts): `<entry>/data`, made ahead of time by the engine's own tool, and
// beside it, readable by the host only, the random password the engine's administrative
// account was given. An instance that takes an entry rotates that password to its own at its
// first start; the file goes with the directory it came in.

/** the pool password's file in an entry, named after the account it opens */
export function poolSecretName(account: string): string {
  return `${account}.pool-password`;
}

/** Written and synced: the pool counts its entry complete once `make` resolves, the password included. */
export async function writeDurably(path: string, content: string): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes the renames in `dir` durable, as the engines' own fsync does for the files they write. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Takes a pool entry whose data directory becomes `dataDir` (which must not exist), landing
 * first at `landing` in the instance's directory, and returns the password in its
 * `secretName`; undefined when the pool had none or the entry was incomplete, and the caller
 * initialises as it would without a pool.
 */
export async function takeWarmEntry(
  source: WarmSource,
  landing: string,
  dataDir: string,
  secretName: string,
  logger: Logger,
): Promise<string | undefined> {
  // whatever an interrupted take left there goes first
  await rm(landing, { recursive: true, force: true });
  if (!(await source.take(landing))) return undefined;
  try {
    const password = await readFile(join(landing, secretName), 'utf8');
    if (password === '') throw new Error(`${secretName} is empty`);
    await rename(join(landing, 'data'), dataDir);
    return password;
  } catch (err) {
    logger.warn({ err }, 'the warm pool entry taken was incomplete: initialising one instead');
    return undefined;
  } finally {
    // the pool's password leaves with the directory it came in
    await rm(landing, { recursive: true, force: true });
  }
}
