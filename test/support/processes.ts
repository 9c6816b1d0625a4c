import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

function readOr(read: () => string): string {
  try {
    return read();
  } catch {
    return ''; // the process ended, or its cwd is not ours to read
  }
}

/**
 * Pids of processes whose command line or working directory mentions `needle` (an instance id
 * or directory). Engines start from their data directory with relative paths, so that `ps` shows
 * no instance id: the working directory is where the id still shows, to root.
 */
export function processesMentioning(needle: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => pid !== process.pid)
    .filter((pid) => {
      const args = readOr(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      const cwd = readOr(() => readlinkSync(`/proc/${pid}/cwd`));
      return args.includes(needle) || cwd.includes(needle);
    });
}
