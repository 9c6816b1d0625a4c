import { readFileSync } from 'node:fs';
import { open, readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import { CofferError, sleep } from '../../common/index.js';
import type { ProcessExit } from '../process-runner.js';
import { startFailureCause } from './start-failure-cause.js';

// An engine's server process seen from outside, shared by the engines (PostgreSQL's
// postmaster, mariadbd/mysqld, redis-server): whether a pid is really alive, which processes
// work in a directory, waiting for a start, stopping, polling and log tails. Everything works
// on a process this agent did not spawn, so that a restarted agent can adopt it.

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

/** `pid`'s start time in clock ticks since boot, undefined when it is gone or a zombie. */
function startTicks(pid: number): string | undefined {
  try {
    // read in place: /proc is memory, and the thread pool's open, fstat, read and close cost more
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after the command name: state is field 3, starttime field 22
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/**
 * An engine's server as last found and verified by `find` (the pid file, the working directory,
 * the executable), kept as its pid and start time: a health check every 10 s then costs one read
 * of /proc/<pid>/stat. Once verified, a process stays the instance's server for its life; a pid
 * reused by another process has another start time, and a gone one is looked for anew.
 */
export class ServerWatch {
  private known: { pid: number; startTicks: string } | undefined;

  constructor(private readonly find: () => Promise<number | undefined>) {}

  async pid(): Promise<number | undefined> {
    const known = this.known;
    if (known !== undefined && startTicks(known.pid) === known.startTicks) return known.pid;
    this.known = undefined;
    const pid = await this.find();
    const ticks = pid === undefined ? undefined : startTicks(pid);
    if (pid !== undefined && ticks !== undefined) this.known = { pid, startTicks: ticks };
    return pid;
  }
}

/** Sends `name` to `pid`; a process already gone is not an error. */
function sendSignal(pid: number, name: NodeJS.Signals): void {
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
 * Whether `pid` runs as the owner of `dir` (its real uid). Where another user's working
 * directory is unreadable (root without CAP_SYS_PTRACE, as in containers) this is what ties an
 * engine to its instance: its command line names no path (so that ps does not show instance
 * ids), and as root each instance's data directory belongs to a user no other instance has.
 */
export async function runsAsOwnerOf(pid: number, dir: string): Promise<boolean> {
  try {
    const [status, owner] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), stat(dir)]);
    return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) === owner.uid;
  } catch {
    return false;
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

/**
 * SIGKILLs every process `executable` runs in `dir` until none is left: what remains of a
 * server that died abruptly (children it forked, still writing or holding shared memory).
 */
export async function killProcessesIn(dir: string, executable: RegExp, timeoutMs = 10_000): Promise<void> {
  let pids = await processesIn(dir, executable);
  if (pids.length === 0) return;
  const gone = await waitFor(async () => {
    for (const pid of pids) sendSignal(pid, 'SIGKILL');
    pids = await processesIn(dir, executable);
    return pids.length === 0;
  }, timeoutMs);
  if (!gone) throw new CofferError('EngineError', `Processes ${pids.join(', ')} of ${dir} did not exit after SIGKILL.`);
}

/** Sends the engine's orderly shutdown `signal`, then SIGKILL when `pid` outlives `timeoutMs`. */
export async function stopProcess(pid: number, signal: NodeJS.Signals, timeoutMs: number): Promise<'stopped' | 'killed'> {
  sendSignal(pid, signal);
  if (await waitFor(async () => !(await isProcessAlive(pid)), timeoutMs)) return 'stopped';
  sendSignal(pid, 'SIGKILL');
  return 'killed';
}

export interface ServingWait {
  /** the engine's name in messages */
  title: string;
  /** what the engine failed to do in time, as in "did not accept connections" */
  readiness: string;
  pid: number;
  /** the spawned child's exit; undefined for an adopted process, watched through its pid */
  exited: Promise<ProcessExit> | undefined;
  logFile: string;
  timeoutMs: number;
  /** true once the engine serves; throws where waiting cannot help */
  ready: () => Promise<boolean>;
  /** the poll interval during the first 2 s (a normal start) and after (a long recovery or load) */
  pollMs: readonly [first: number, later: number];
}

/** The failure with the cause the log names in its message, and the log's tail as details. */
async function startFailed(what: string, logFile: string): Promise<CofferError> {
  const details = await logTail(logFile);
  const cause = startFailureCause(details);
  return new CofferError('EngineError', cause === undefined ? `${what}.` : `${what}: ${cause}.`, { details });
}

/** Polls `ready` until it holds; a process that exits or the timeout fails with the log's tail. */
export async function waitUntilServing(wait: ServingWait): Promise<void> {
  let exit: ProcessExit | undefined;
  wait.exited?.then((value) => {
    exit = value;
  });
  const began = Date.now();
  for (;;) {
    if (await wait.ready()) return;
    if (exit !== undefined || (wait.exited === undefined && !(await isProcessAlive(wait.pid)))) {
      const how = exit === undefined ? 'exited' : `exited (code ${exit.code}${exit.signal === null ? '' : `, signal ${exit.signal}`})`;
      throw await startFailed(`${wait.title} ${how} while starting`, wait.logFile);
    }
    if (Date.now() - began > wait.timeoutMs) {
      throw await startFailed(`${wait.title} did not ${wait.readiness} within ${wait.timeoutMs} ms`, wait.logFile);
    }
    await sleep(Date.now() - began < 2_000 ? wait.pollMs[0] : wait.pollMs[1]);
  }
}
