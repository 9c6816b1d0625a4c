import { readFile, readlink } from 'node:fs/promises';
import { CofferError, sleep } from '../../../common/index.js';
import type { ProcessExit } from '../../process-runner.js';
import { isProcessAlive, logTail, processesIn, sendSignal, waitFor, worksIn } from '../process-watch.js';
import { probeServer, type AdminEndpoint } from './admin.js';

// redis-server seen from outside: its pid file, whether that pid really is our server, how
// to wait for it to answer and how to stop it. All of it works on a server this process did
// not spawn, so that an agent restarted under a running Redis adopts it.

// Debian's /usr/bin/redis-server is a link to redis-check-rdb, which the kernel reports as exe
const serverExecutable = /\/redis-(server|check-rdb)$/;

export interface ServerFiles {
  dataDir: string;
  pidFile: string;
  configFile: string;
}

/**
 * The pid of the redis-server serving `dataDir`, if one runs. The pid file sits where the
 * engine's user writes, so its pid must also be a redis-server working in the data directory
 * (Redis chdirs to `dir`) before the host sends it any signal.
 */
export async function runningServer(files: ServerFiles): Promise<number | undefined> {
  const text = await readFile(files.pidFile, 'utf8').catch(() => undefined);
  const pid = Number(text?.trim());
  if (!Number.isInteger(pid) || pid <= 0 || !(await isProcessAlive(pid))) return undefined;
  const inDataDir = await worksIn(pid, files.dataDir);
  if (inDataDir === true) {
    const exe = (await readlink(`/proc/${pid}/exe`).catch(() => '')).replace(/ \(deleted\)$/, '');
    return serverExecutable.test(exe) ? pid : undefined;
  }
  if (inDataDir === false) return undefined;
  // /proc/<pid>/cwd is unreadable for another user's process: the command line names our config
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const args = cmdline.split('\0');
  return args.some((arg) => /redis-(server|check-rdb)$/.test(arg)) && args.includes(files.configFile) ? pid : undefined;
}

export interface WaitReadyOptions {
  pid: number;
  exited: Promise<ProcessExit> | undefined;
  endpoint: () => Promise<AdminEndpoint>;
  logFile: string;
  timeoutMs: number;
}

/**
 * Polls until the server answers PING as the guest's user. A server loading its AOF answers
 * LOADING first; a server that exits meanwhile fails the wait with the end of its log.
 */
export async function waitUntilReady(options: WaitReadyOptions): Promise<void> {
  let exit: ProcessExit | undefined;
  options.exited?.then((value) => {
    exit = value;
  });
  const began = Date.now();
  const deadline = began + options.timeoutMs;
  for (;;) {
    if ((await probeServer(await options.endpoint(), 1_000)) === 'ready') return;
    if (exit !== undefined || (options.exited === undefined && !(await isProcessAlive(options.pid)))) {
      const how = exit === undefined ? 'exited' : `exited (code ${exit.code}, signal ${exit.signal})`;
      throw new CofferError('EngineError', `Redis ${how} while starting.`, { details: await logTail(options.logFile) });
    }
    if (Date.now() > deadline) {
      throw new CofferError('EngineError', `Redis did not answer within ${options.timeoutMs} ms.`, {
        details: await logTail(options.logFile),
      });
    }
    // a start takes ~15 ms: poll tightly at first, gently while a large dataset loads
    await sleep(Date.now() - began < 2_000 ? 3 : 50);
  }
}

/**
 * SIGTERM: Redis flushes its AOF, writes a final RDB snapshot (save points are configured)
 * and exits. After `timeoutMs` it and whatever it forked are killed; the AOF keeps the data.
 */
export async function stopServer(pid: number, dataDir: string, timeoutMs: number): Promise<'stopped' | 'killed'> {
  sendSignal(pid, 'SIGTERM');
  if (await waitFor(async () => !(await isProcessAlive(pid)), timeoutMs)) return 'stopped';
  sendSignal(pid, 'SIGKILL');
  await killServerProcesses(dataDir);
  return 'killed';
}

/**
 * Kills what remains of a server that died abruptly: a snapshot or AOF-rewrite child it
 * forked may still be writing in the data directory, racing the next server's files.
 */
export async function killServerProcesses(dataDir: string, timeoutMs = 10_000): Promise<void> {
  let pids = await processesIn(dataDir, serverExecutable);
  if (pids.length === 0) return;
  const gone = await waitFor(async () => {
    for (const pid of pids) sendSignal(pid, 'SIGKILL');
    pids = await processesIn(dataDir, serverExecutable);
    return pids.length === 0;
  }, timeoutMs);
  if (!gone) throw new CofferError('EngineError', `Processes ${pids.join(', ')} of ${dataDir} did not exit after SIGKILL.`);
}
