import { open, readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { CofferError, sleep } from '../../../common/index.js';
import type { ProcessExit } from '../../process-runner.js';

// The postmaster seen from outside: its lock file, whether its pid is really alive and really
// serves our data directory, and how to wait for it to be ready or gone. Everything works on a
// postmaster this process did not spawn, so an agent can adopt one after a restart.

export interface PostmasterPid {
  pid: number;
  dataDir: string;
  /** "starting", "ready", "stopping", "standby" (line 8 of postmaster.pid since PostgreSQL 10) */
  status: string;
}

export async function readPostmasterPid(dataDir: string): Promise<PostmasterPid | undefined> {
  let text: string;
  try {
    text = await readFile(`${dataDir}/postmaster.pid`, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return { pid, dataDir: lines[1] ?? '', status: (lines[7] ?? '').trim() };
}

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

/** Guards against a recycled pid: the postmaster's working directory is its data directory. */
async function servesDataDir(pid: number, dataDir: string): Promise<boolean> {
  try {
    const [cwd, real] = await Promise.all([readlink(`/proc/${pid}/cwd`), realpath(dataDir)]);
    return cwd === real;
  } catch {
    // /proc/<pid>/cwd is unreadable for another user's process: fall back on the command line
    try {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      return cmdline.split('\0').some((arg) => arg.endsWith('postgres')) && cmdline.includes(dataDir);
    } catch {
      return false;
    }
  }
}

/** The pid of the postmaster serving `dataDir`, if one runs. */
export async function runningPostmaster(dataDir: string): Promise<number | undefined> {
  const lock = await readPostmasterPid(dataDir);
  if (lock === undefined) return undefined;
  if (!(await isProcessAlive(lock.pid))) return undefined;
  return (await servesDataDir(lock.pid, dataDir)) ? lock.pid : undefined;
}

async function logTail(logFile: string, bytes = 1500): Promise<string> {
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
  dataDir: string;
  pid: number;
  exited: Promise<ProcessExit> | undefined;
  logFile: string;
  timeoutMs: number;
}

/** Polls the lock file as `pg_ctl -w` does, but every few ms: readiness costs no connection. */
export async function waitUntilReady(options: WaitReadyOptions): Promise<void> {
  let exit: ProcessExit | undefined;
  options.exited?.then((value) => {
    exit = value;
  });
  const began = Date.now();
  const deadline = began + options.timeoutMs;
  for (;;) {
    const lock = await readPostmasterPid(options.dataDir);
    if (lock?.pid === options.pid && lock.status === 'ready') return;
    if (exit !== undefined || (options.exited === undefined && !(await isProcessAlive(options.pid)))) {
      const how = exit === undefined ? 'exited' : `exited (code ${exit.code}, signal ${exit.signal})`;
      throw new CofferError('EngineError', `PostgreSQL ${how} while starting.`, {
        details: await logTail(options.logFile),
      });
    }
    if (Date.now() > deadline) {
      throw new CofferError('EngineError', `PostgreSQL did not accept connections within ${options.timeoutMs} ms.`, {
        details: await logTail(options.logFile),
      });
    }
    // a normal start takes ~30 ms: poll tightly at first, gently during a long crash recovery
    await sleep(Date.now() - began < 2_000 ? 2 : 20);
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

function signal(target: number, name: NodeJS.Signals): void {
  try {
    process.kill(target, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * SIGINT is PostgreSQL's "fast" shutdown: sessions are cut, a checkpoint is written, and the
 * postmaster exits in tens of ms (pg_ctl would add ~0.1 s of polling). After `timeoutMs` the
 * postmaster and every process still working in its data directory are killed.
 */
export async function stopPostmaster(pid: number, dataDir: string, timeoutMs: number): Promise<'stopped' | 'killed'> {
  signal(pid, 'SIGINT');
  if (await waitFor(async () => !(await isProcessAlive(pid)), timeoutMs)) return 'stopped';
  signal(pid, 'SIGKILL');
  await killDataDirProcesses(dataDir);
  return 'killed';
}

async function processesIn(dataDir: string): Promise<number[]> {
  const real = await realpath(dataDir).catch(() => dataDir);
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const found: number[] = [];
  await Promise.all(
    pids.map(async (pid) => {
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
      if (cwd !== real || pid === process.pid) return;
      // only PostgreSQL's own processes: an operator's shell may well sit in the data directory
      const exe = await readlink(`/proc/${pid}/exe`).catch(() => '');
      if (/\/postgres( \(deleted\))?$/.test(exe) && (await isProcessAlive(pid))) found.push(pid);
    }),
  );
  return found;
}

/**
 * Kills what remains of a postmaster that died abruptly. Its backends and helpers (each its
 * own process group: PostgreSQL calls setsid() in every child) may linger for a moment with the
 * old shared memory attached, and a new postmaster refuses to start while they do. They all
 * run the postgres binary in the data directory, which is how they are found.
 */
export async function killDataDirProcesses(dataDir: string, timeoutMs = 10_000): Promise<void> {
  let pids = await processesIn(dataDir);
  if (pids.length === 0) return;
  const gone = await waitFor(async () => {
    for (const pid of pids) signal(pid, 'SIGKILL');
    pids = await processesIn(dataDir);
    return pids.length === 0;
  }, timeoutMs);
  if (!gone) throw new CofferError('EngineError', `Processes ${pids.join(', ')} of ${dataDir} did not exit after SIGKILL.`);
}
