import { access, chmod, writeFile } from 'node:fs/promises';
import { CofferError } from '../../common/index.js';
import type { ProcessRunner } from '../process-runner.js';

// The instance directory as every engine's driver uses it: the directory belongs to the host,
// which writes the files an engine reads and then hands each to the engine's OS user; the
// engine's Unix socket lives below it and must fit in sun_path.

export async function fileExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** A file the engine reads: written by the host, then given to the engine's user. */
export async function writeEngineFile(runner: ProcessRunner, path: string, content: string): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  // writeFile's mode applies only to a file it creates
  await chmod(path, 0o600);
  await runner.handOver(path);
}

// sun_path holds 108 bytes with the final NUL; PostgreSQL refuses a longer path, Redis silently truncates it
const maxSocketPath = 107;

/** Refuses an instance directory so deep that the engine's socket path would not fit. */
export function checkSocketPath(title: string, socket: string): void {
  const length = Buffer.byteLength(socket);
  if (length > maxSocketPath) {
    throw new CofferError(
      'BadRequest',
      `The ${title} socket path ${socket} is ${length} bytes long, ` +
        `over the ${maxSocketPath} a Unix socket allows: choose a shorter --data-dir.`,
    );
  }
}
