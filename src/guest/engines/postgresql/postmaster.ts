import { readFile, readlink, realpath } from 'node:fs/promises';
import { CofferError, sleep } from '../../../common/index.js';
import type { ProcessExit } from '../../process-runner.js';
import { isProcessAlive, logTail, processesIn, sendSignal, waitFor } from '../process-watch.js';

export { isProcessAlive };

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

/**
 * SIGINT is PostgreSQL's "fast" shutdown: sessions are cut, a checkpoint is written, and the
 * postmaster exits in tens of ms (pg_ctl would add ~0.1 s of polling). After `timeoutMs` the
 * postmaster and every process still working in its data directory are killed.
 */
export async function stopPostmaster(pid: number, dataDir: string, timeoutMs: number): Promise<'stopped' | 'killed'> {
  sendSignal(pid, 'SIGINT');
  if (await waitFor(async () => !(await isProcessAlive(pid)), timeoutMs)) return 'stopped';
  sendSignal(pid, 'SIGKILL');
  await killDataDirProcesses(dataDir);
  return 'killed';
}

// only PostgreSQL's own processes: an operator's shell may well sit in the data directory
const postgresExecutable = /\/postgres$/;

/**
 * Kills what remains of a postmaster that died abruptly. Its backends and helpers (each its
 * own process group: PostgreSQL calls setsid() in every child) may linger for a moment with the
 * old shared memory attached, and a new postmaster refuses to start while they do. They all
 * run the postgres binary in the data directory, which is how they are found.
 */
export async function killDataDirProcesses(dataDir: string, timeoutMs = 10_000): Promise<void> {
  let pids = await processesIn(dataDir, postgresExecutable);
  if (pids.length === 0) return;
  const gone = await waitFor(async () => {
    for (const pid of pids) sendSignal(pid, 'SIGKILL');
    pids = await processesIn(dataDir, postgresExecutable);
    return pids.length === 0;
  }, timeoutMs);
  if (!gone) throw new CofferError('EngineError', `Processes ${pids.join(', ')} of ${dataDir} did not exit after SIGKILL.`);
}
