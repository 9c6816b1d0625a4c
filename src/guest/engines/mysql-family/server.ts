import { readFile, readlink, realpath } from 'node:fs/promises';
import { CofferError } from '../../../common/index.js';
import type { ProcessExit } from '../../process-runner.js';
import { isProcessAlive, killProcessesIn, processesIn, runsAsOwnerOf, stopProcess, waitFor, waitUntilServing } from '../process-watch.js';
import { probeServer, type AdminEndpoint } from './connection.js';

// The server seen from outside: its pid file, whether that pid is alive and really serves our
// data directory (the server chdirs there), how to wait for it to answer and to stop it.
// Everything works on a server this process did not spawn, so an agent can adopt one after a
// restart.

const serverExe = /\/(mariadbd|mysqld)$/;

async function servesDataDir(pid: number, dataDir: string): Promise<boolean> {
  const [cwd, real] = await Promise.all([readlink(`/proc/${pid}/cwd`).catch(() => undefined), realpath(dataDir).catch(() => dataDir)]);
  if (cwd !== undefined) return cwd === real;
  // another user's /proc/<pid>/cwd is unreadable: fall back on the command line
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const args = cmdline.split('\0');
  // a server started before command lines were relative names its defaults file, beside the data directory
  return serverExe.test(`/${args[0]?.split('/').pop() ?? ''}`) && (cmdline.includes(dataDir) || (await runsAsOwnerOf(pid, dataDir)));
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
export function serversIn(dataDir: string): Promise<number[]> {
  return processesIn(dataDir, serverExe);
}

/** Kills every server working in `dataDir`: for a directory being thrown away, whose data nobody needs flushed. */
export function killServersIn(dataDir: string): Promise<void> {
  return killProcessesIn(dataDir, serverExe);
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
  await waitUntilServing({
    ...options,
    readiness: 'accept connections',
    ready: async () => {
      const answer = await probeServer(options.endpoint, 2_000);
      if (answer === 'denied') {
        // waiting would not help: the server is up and only a new admin password would let the guest in
        throw new CofferError('EngineError', `${options.title} runs but refuses the guest's administrative login.`);
      }
      return answer === 'yes';
    },
    pollMs: [5, 50],
  });
}

/**
 * SIGTERM is the server's normal shutdown (InnoDB flushes, the pid file goes) and takes tens
 * of ms; `mariadb-admin shutdown` would add about a second. Killed after `timeoutMs`.
 */
export async function stopServer(pid: number, timeoutMs: number): Promise<'stopped' | 'killed'> {
  const how = await stopProcess(pid, 'SIGTERM', timeoutMs);
  if (how === 'killed') await waitFor(async () => !(await isProcessAlive(pid)), 10_000);
  return how;
}
