import { join } from 'node:path';
import { CofferError } from '../common/index.js';
import { engineNames, engineRegistry } from '../guest/index.js';

// Every engine keeps a Unix socket inside its instance's directory, and a socket path holds at
// most 107 bytes. A create in a data directory too deep for that used to fail only when the
// engine started; the agent refuses such a directory when it starts instead, saying how long
// the data directory may be.

/** An instance id as long as they come (a UUID): the deepest directory an instance may get. */
const longestInstanceId = '00000000-0000-0000-0000-000000000000';

/** The longest data directory, in bytes, whose instances' sockets fit for every engine. */
function maxDataDirBytes(): number {
  let max = Number.POSITIVE_INFINITY;
  for (const name of engineNames) {
    // Each engine knows its socket's place in the instance directory: grow a directory until it refuses.
    for (let bytes = 1; bytes <= 200; bytes += 1) {
      const dataDir = `/${'x'.repeat(bytes - 1)}`;
      try {
        engineRegistry[name].checkInstanceDir(join(dataDir, 'instances', longestInstanceId));
      } catch {
        max = Math.min(max, bytes - 1);
        break;
      }
    }
  }
  return max;
}

/** Throws when an instance in `instancesDir` (under `dataDir`) could not have its engine's socket. */
export function checkDataDirDepth(dataDir: string, instancesDir: string): void {
  for (const name of engineNames) {
    try {
      engineRegistry[name].checkInstanceDir(join(instancesDir, longestInstanceId));
    } catch (err) {
      if (!(err instanceof CofferError)) throw err;
      throw new CofferError(
        'BadRequest',
        `The data directory ${dataDir} is too long (${Buffer.byteLength(dataDir)} bytes): ` +
          `instances keep their engine's Unix socket in it, and a socket path holds at most 107 bytes. ` +
          `Choose a --data-dir of at most ${maxDataDirBytes()} bytes, e.g. /var/lib/coffer.`,
      );
    }
  }
}
