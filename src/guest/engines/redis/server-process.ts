import { readFile, readlink } from 'node:fs/promises';
import { CofferError, isCofferError } from '../../../common/index.js';
import type { ProcessExit } from '../../process-runner.js';
import { isProcessAlive, killProcessesIn, runsAsOwnerOf, stopProcess, waitFor, waitUntilServing, worksIn } from '../process-watch.js';
import { withoutPaths } from '../start-failure-cause.js';
import { probeServer, type AdminEndpoint } from './admin.js';

// redis-server seen from outside: its pid file, whether that pid really is our server, how
// to wait for it to answer and how to stop it. All of it works on a server this process did
// not spawn, so that an agent restarted under a running Redis adopts it.

// Debian's /usr/bin/redis-server is a link to redis-check-rdb, which the kernel reports as exe
const serverExecutable = /\/redis-(server|check-rdb)$/;
const termRetryMs = 1_000;

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
  if (!args.some((arg) => /redis-(server|check-rdb)$/.test(arg))) return undefined;
  // a server started before command lines were relative names its config file
  return args.includes(files.configFile) || (await runsAsOwnerOf(pid, files.dataDir)) ? pid : undefined;
}

export interface WaitReadyOptions {
  pid: number;
  exited: Promise<ProcessExit> | undefined;
  endpoint: () => Promise<AdminEndpoint>;
  logFile: string;
  timeoutMs: number;
}

// How redis-server reports a redis.conf line it refuses, as the last thing it writes:
//   *** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***
//   Reading the configuration file, at line 2
//   >>> 'maxmemory-policy "bogus-policy"'
//   argument(s) must be one of the following: …
const configFileError = /\*\*\* FATAL CONFIG FILE ERROR[^\n]*\n[^\n]*\n>>> '([^\s']+)[^\n]*\n([^\n]+)$/;

/**
 * The directive and Redis's reason when the log ends with its refusal of a redis.conf line
 * (a configuration-group value only Redis checks), without the value or any path.
 */
export function refusedDirective(logTail: string): { name: string; reason: string } | undefined {
  const match = configFileError.exec(logTail.trimEnd());
  return match === null ? undefined : { name: match[1]!, reason: withoutPaths(match[2]!.trim()) };
}

/**
 * Polls until the server answers PING as the guest's user. A server loading its AOF answers
 * LOADING first; a server that exits meanwhile fails the wait with the end of its log.
 */
export async function waitUntilReady(options: WaitReadyOptions): Promise<void> {
  try {
    await waitUntilServing({
      ...options,
      title: 'Redis',
      readiness: 'answer',
      ready: async () => (await probeServer(await options.endpoint(), 1_000)) === 'ready',
      // a start takes ~15 ms: poll tightly at first, gently while a large dataset loads
      pollMs: [3, 50],
    });
  } catch (err) {
    const refused = isCofferError(err) ? refusedDirective(err.details ?? '') : undefined;
    if (refused === undefined) throw err;
    throw new CofferError('EngineError', `Redis refused the value of ${refused.name} in its configuration: ${refused.reason}`, {
      details: (err as CofferError).details,
      cause: err,
    });
  }
}

/**
 * SIGTERM: Redis flushes its AOF, writes a final RDB snapshot (save points are configured)
 * and exits. After `timeoutMs` it and whatever it forked are killed; the AOF keeps the data.
 */
export async function stopServer(pid: number, dataDir: string, timeoutMs: number): Promise<'stopped' | 'killed'> {
  // Redis drops a SIGTERM it cannot act on now ("Writing initial AOF, can't exit": a replica
  // right after its first sync): asked again each second until it goes, SIGKILL only at the end
  const deadline = Date.now() + timeoutMs;
  while (Date.now() + termRetryMs < deadline) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return 'stopped';
      throw err;
    }
    if (await waitFor(async () => !(await isProcessAlive(pid)), termRetryMs)) return 'stopped';
  }
  const how = await stopProcess(pid, 'SIGTERM', Math.max(0, deadline - Date.now()));
  if (how === 'killed') await killServerProcesses(dataDir);
  return how;
}

/**
 * Kills what remains of a server that died abruptly: a snapshot or AOF-rewrite child it
 * forked may still be writing in the data directory, racing the next server's files.
 */
export async function killServerProcesses(dataDir: string): Promise<void> {
  await killProcessesIn(dataDir, serverExecutable);
}
