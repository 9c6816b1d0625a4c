import { open, readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { sleep } from '../../common/index.js';

// An engine's server process seen from outside, shared by the engines (PostgreSQL's
// postmaster, redis-server): whether a pid is really alive, which processes work in a
// directory, polling and log tails. Everything works on a process this agent did not spawn,
// so that a restarted agent can adopt it.

/** Alive and not a zombie (a zombie answers kill(0) until its parent reaps it). */
export async function isProcessAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // the state follows the parenthesised command name, which may itself contain ") "
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Sends `name` to `pid`; a process already gone is not an error. */
export function sendSignal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Polls `condition` with a backoff from 2 ms to 25 ms; false when `timeoutMs` passed first. */
export async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 25)) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await sleep(delay);
  }
}

/** The end of a log file: what an engine said before it failed to start. */
export async function logTail(logFile: string, bytes = 1500): Promise<string> {
  try {
    const handle = await open(logFile, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(bytes, size);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString('utf8').trim();
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}

/** Whether `pid` works in `dir` (its cwd); servers chdir into their data directory. */
export async function worksIn(pid: number, dir: string): Promise<boolean | undefined> {
  try {
    const [cwd, real] = await Promise.all([readlink(`/proc/${pid}/cwd`), realpath(dir)]);
    return cwd === real;
  } catch {
    // unreadable (another user's process without privileges, or gone): the caller decides
    return undefined;
  }
}

/**
 * The live processes whose working directory is `dir` and whose executable matches
 * `executable`: an operator's shell may well sit in the directory too.
 */
export async function processesIn(dir: string, executable: RegExp): Promise<number[]> {
  const real = await realpath(dir).catch(() => dir);
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const found: number[] = [];
  await Promise.all(
    pids.map(async (pid) => {
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
      if (cwd !== real || pid === process.pid) return;
      const exe = (await readlink(`/proc/${pid}/exe`).catch(() => '')).replace(/ \(deleted\)$/, '');
      if (executable.test(exe) && (await isProcessAlive(pid))) found.push(pid);
    }),
  );
  return found;
}
