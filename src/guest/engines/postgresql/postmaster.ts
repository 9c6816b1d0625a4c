import { readFile } from 'node:fs/promises';
import type { ProcessExit } from '../../process-runner.js';
import { isProcessAlive, killProcessesIn, runsAsOwnerOf, stopProcess, waitUntilServing, worksIn } from '../process-watch.js';

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
  const inDataDir = await worksIn(pid, dataDir);
  if (inDataDir !== undefined) return inDataDir;
  // /proc/<pid>/cwd is unreadable for another user's process: fall back on the command line
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    // a postmaster started before command lines were relative names its data directory
    return cmdline.split('\0').some((arg) => arg.endsWith('postgres')) && (cmdline.includes(dataDir) || (await runsAsOwnerOf(pid, dataDir)));
  } catch {
    return false;
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
  await waitUntilServing({
    ...options,
    title: 'PostgreSQL',
    readiness: 'accept connections',
    ready: async () => {
      const lock = await readPostmasterPid(options.dataDir);
      return lock?.pid === options.pid && lock.status === 'ready';
    },
    // a normal start takes ~30 ms: poll tightly at first, gently during a long crash recovery
    pollMs: [2, 20],
  });
}

/**
 * SIGINT is PostgreSQL's "fast" shutdown: sessions are cut, a checkpoint is written, and the
 * postmaster exits in tens of ms (pg_ctl would add ~0.1 s of polling). After `timeoutMs` the
 * postmaster and every process still working in its data directory are killed.
 */
export async function stopPostmaster(pid: number, dataDir: string, timeoutMs: number): Promise<'stopped' | 'killed'> {
  const how = await stopProcess(pid, 'SIGINT', timeoutMs);
  if (how === 'killed') await killDataDirProcesses(dataDir);
  return how;
}

// only PostgreSQL's own processes: an operator's shell may well sit in the data directory
const postgresExecutable = /\/postgres$/;

/**
 * Kills what remains of a postmaster that died abruptly. Its backends and helpers (each its
 * own process group: PostgreSQL calls setsid() in every child) may linger for a moment with the
 * old shared memory attached, and a new postmaster refuses to start while they do. They all
 * run the postgres binary in the data directory, which is how they are found.
 */
export async function killDataDirProcesses(dataDir: string): Promise<void> {
  await killProcessesIn(dataDir, postgresExecutable);
}
