import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RestoreLink } from './engine.js';

// How a restore link's output reaches the process that unpacks it (tar, mbstream): written into
// the process's stdin by the link itself where it can (a stored backup's decompressor then
// writes there directly), else streamed through from `open`.

/**
 * Writes the link's output into `stdin` and ends it. Rejects with the link's own failure (a
 * CofferError: missing object, checksum, decryption) or, when the process stopped reading, with
 * a plain error (its exit status says why); `stdin` is destroyed then, so the process never
 * waits for input that will not come.
 */
export async function feedRestore(link: RestoreLink, stdin: Writable): Promise<void> {
  try {
    if (link.writeTo !== undefined) await link.writeTo(stdin);
    else await pipeline(await link.open(), stdin);
  } catch (err) {
    stdin.destroy();
    throw err;
  }
}
