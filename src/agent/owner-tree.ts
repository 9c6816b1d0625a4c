import { lchown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { EngineIdentity } from './local-process-runner.js';

// Gives a directory tree made by one OS user to another: what the warm pool's user prepared
// becomes the instance user's. lchown and lstat never follow a symbolic link, so a link in the
// tree changes owner itself and never redirects the change elsewhere. The caller makes sure the
// previous owner can no longer reach the tree (it sits in a directory that user cannot traverse),
// so nothing swaps a directory for a link while the walk runs.

/** directories handled at once: enough to keep the disk busy without thousands of open handles */
const parallel = 16;

/**
 * Changes every entry under (and including) `root` owned by uid `from` to `to`; entries of
 * other owners (the host's secrets beside the data) keep theirs. Resolves how many changed.
 */
export async function chownTree(root: string, from: number, to: EngineIdentity): Promise<number> {
  let changed = 0;
  const visit = async (path: string, uid: number): Promise<void> => {
    if (uid !== from) return;
    await lchown(path, to.uid, to.gid);
    changed += 1;
  };
  const rootStats = await lstat(root);
  await visit(root, rootStats.uid);
  let directories = rootStats.isDirectory() ? [root] : [];
  while (directories.length > 0) {
    const next: string[] = [];
    for (let i = 0; i < directories.length; i += parallel) {
      await Promise.all(
        directories.slice(i, i + parallel).map(async (dir) => {
          for (const entry of await readdir(dir, { withFileTypes: true })) {
            const path = join(dir, entry.name);
            // lstat: a link to a directory is a link here, never walked into
            const stats = await lstat(path);
            await visit(path, stats.uid);
            if (stats.isDirectory()) next.push(path);
          }
        }),
      );
    }
    directories = next;
  }
  return changed;
}
