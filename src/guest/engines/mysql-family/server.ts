import { open, readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { CofferError, sleep } from '../../../common/index.js';
import type { ProcessExit } from '../../process-runner.js';
import { probeServer, type AdminEndpoint } from './connection.js';

// The server seen from outside: its pid file, whether that pid is alive and really serves our
// data directory (the server chdirs there), how to wait for it to answer and to stop it.
// Everything works on a server this process did not spawn, so an agent can adopt one after a
// restart.

const serverExe = /\/(mariadbd|mysqld)( \(deleted\))?$/;

/** Alive and not a zombie (a zombie answers kill(0) until its parent reaps it). */
export async function isProcessAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function servesDataDir(pid: number, dataDir: string): Promise<boolean> {
  const [cwd, real] = await Promise.all([readlink(`/proc/${pid}/cwd`).catch(() => undefined), realpath(dataDir).catch(() => dataDir)]);
  if (cwd !== undefined) return cwd === real;
  // another user's /proc/<pid>/cwd is unreadable: fall back on the command line
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const args = cmdline.split('\0');
  return serverExe.test(`/${args[0]?.split('/').pop() ?? ''}`) && cmdline.includes(dataDir);
}

/** The pid of the server serving `dataDir` according to `pidFile`, if one runs. */
export async function runningServer(pidFile: string, dataDir: string): Promise<number | undefined> {
  const text = await readFile(pidFile, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (!(await isProcessAlive(pid))) return undefined;
  return (await servesDataDir(pid, dataDir)) ? pid : undefined;
}

/** Servers working in `dataDir` whether or not they wrote a pid file yet. */
export async function serversIn(dataDir: string): Promise<number[]> {
  const real = await realpath(dataDir).catch(() => dataDir);
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const found: number[] = [];
  await Promise.all(
    pids.map(async (pid) => {
      if (pid === process.pid) return;
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
      if (cwd !== real) return;
      const exe = await readlink(`/proc/${pid}/exe`).catch(() => '');
      if (serverExe.test(exe) && (await isProcessAlive(pid))) found.push(pid);
    }),
  );
  return found;
}

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

export interface WaitReadyOptions {
  title: string;
  endpoint: AdminEndpoint;
  pid: number;
  exited: Promise<ProcessExit> | undefined;
  logFile: string;
  timeoutMs: number;
}

/** Polls with a login over the socket (≈0.5 ms each): the server answers once it is ready. */
export async function waitUntilReady(options: WaitReadyOptions): Promise<void> {
  let exit: ProcessExit | undefined;
  options.exited?.then((value) => {
    exit = value;
  });
  const began = Date.now();
  for (;;) {
    const answer = await probeServer(options.endpoint, 2_000);
    if (answer === 'yes') return;
    if (answer === 'denied') {
      // waiting would not help: the server is up and only a new admin password would let the guest in
      throw new CofferError('EngineError', `${options.title} runs but refuses the guest's administrative login.`);
    }
    if (exit !== undefined || (options.exited === undefined && !(await isProcessAlive(options.pid)))) {
      const how = exit === undefined ? 'exited' : `exited (code ${exit.code}, signal ${exit.signal})`;
      throw new CofferError('EngineError', `${options.title} ${how} while starting.`, { details: await logTail(options.logFile) });
    }
    if (Date.now() - began > options.timeoutMs) {
      throw new CofferError('EngineError', `${options.title} did not accept connections within ${options.timeoutMs} ms.`, {
        details: await logTail(options.logFile),
      });
    }
    await sleep(Date.now() - began < 2_000 ? 5 : 50);
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 25)) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await sleep(delay);
  }
}

/**
 * SIGTERM is the server's normal shutdown (InnoDB flushes, the pid file goes) and takes tens
 * of ms; `mariadb-admin shutdown` would add about a second. Killed after `timeoutMs`.
 */
export async function stopServer(pid: number, timeoutMs: number): Promise<'stopped' | 'killed'> {
  signal(pid, 'SIGTERM');
  if (await waitFor(async () => !(await isProcessAlive(pid)), timeoutMs)) return 'stopped';
  signal(pid, 'SIGKILL');
  await waitFor(async () => !(await isProcessAlive(pid)), 10_000);
  return 'killed';
}
