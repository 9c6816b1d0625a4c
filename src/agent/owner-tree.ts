import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CofferError } from '../common/index.js';
import type { EngineIdentity } from './local-process-runner.js';

// Gives a directory tree made by one OS user to another: what the warm pool's user prepared
// becomes the instance user's. Coreutils' chown walks a fresh cluster (~1000 entries) in ~10 ms
// where a walk in Node takes ~150 ms (lstat and lchown each a thread-pool round trip). -R -P
// with -h never follows a symbolic link: a link changes owner itself and never redirects the
// change elsewhere. The caller makes sure the previous owner can no longer reach the tree (it
// sits in a directory that user cannot traverse), so nothing swaps a directory for a link
// while the walk runs.

const run = promisify(execFile);
const timeoutMs = 60_000;

/** Changes every entry under (and including) `root` owned by uid `from` to `to`; other owners' entries (the host's secrets) keep theirs. */
export async function chownTree(root: string, from: number, to: EngineIdentity): Promise<void> {
  try {
    await run('chown', ['-R', '-P', '-h', `--from=${from}`, `${to.uid}:${to.gid}`, '--', root], { timeout: timeoutMs });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new CofferError('Internal', `Could not give ${root} to ${to.name}: ${stderr || (err as Error).message}`, { cause: err });
  }
}
