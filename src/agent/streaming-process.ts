import { spawn } from 'node:child_process';
import { constants, setPriority } from 'node:os';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import type { StreamOptions, StreamingProcess } from '../guest/index.js';
import { CofferError } from '../common/index.js';

// The streaming form of the local driver's runner. The child leads its own process group so
// that a kill reaches what it forked too (a compressor's helpers, a shell pipeline): killing the
// leader alone would leave those holding the pipes open and running.

/** only the tail of stderr is kept: it explains a failure, and a chatty program must not grow the agent */
const stderrLimit = 64 * 1024;

export interface StreamSpawn {
  uid?: number;
  gid?: number;
  env: Record<string, string>;
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already gone
  }
}

export function startStreamingProcess(
  file: string,
  args: readonly string[],
  options: StreamOptions,
  how: StreamSpawn,
): StreamingProcess {
  const name = basename(file);
  const child = spawn(file, args, {
    uid: how.uid,
    gid: how.gid,
    cwd: options.cwd,
    env: how.env,
    stdio: ['pipe', options.stdout ?? 'pipe', 'pipe'],
    // its own process group (and session); not unref'd: the agent waits for and reaps it
    detached: true,
  });
  const pid = child.pid;
  // piped: only stdout may go elsewhere
  const stdin = child.stdin!;
  const stderrPipe = child.stderr!;
  if (pid !== undefined && options.lowPriority === true) {
    try {
      setPriority(pid, constants.priority.PRIORITY_LOW);
    } catch {
      // already exited: its close event reports how
    }
  }
  // the program may exit before reading all its input; the writer learns of it through
  // `exited`, and an EPIPE must not crash the agent as an unhandled 'error'
  stdin.on('error', () => undefined);

  let stderr = Buffer.alloc(0);
  stderrPipe.on('data', (chunk: Buffer) => {
    stderr = Buffer.concat([stderr, chunk]);
    if (stderr.length > stderrLimit) stderr = stderr.subarray(stderr.length - stderrLimit);
  });

  // why the runner killed it, when it did; an exit status then means nothing more
  let stoppedBecause: string | undefined;
  let exitedAlready = false;
  const stop = (reason: string): void => {
    if (stoppedBecause !== undefined || exitedAlready) return;
    stoppedBecause = reason;
    if (pid !== undefined) killGroup(pid);
    // unblock whoever is piping into or out of it
    stdin.destroy();
  };
  const timer = setTimeout(() => stop(`timed out after ${options.timeoutMs} ms`), options.timeoutMs);
  const onAbort = (): void => stop('was aborted');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort();

  child.on('exit', () => {
    exitedAlready = true;
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    // whatever the leader left behind in its group goes with it
    if (pid !== undefined) killGroup(pid);
  });

  const exited = new Promise<void>((resolve, reject) => {
    let settled = false;
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(new CofferError('EngineError', `${name} could not run: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      if (stoppedBecause === undefined && code === 0) {
        resolve();
        return;
      }
      const what =
        stoppedBecause ?? (signal !== null ? `was killed by ${signal}` : `exited with code ${code}`);
      const text = stderr.toString('utf8').trim();
      reject(new CofferError('EngineError', `${name} ${what}.`, text === '' ? {} : { details: text.slice(-1500) }));
    });
  });
  // a caller that only awaits the streams must not see an unhandled rejection
  exited.catch(() => undefined);

  // with a stdout target the program writes there itself: ours only ends, once it is gone
  let stdout: Readable;
  if (child.stdout !== null) {
    stdout = child.stdout;
  } else {
    stdout = new Readable({ read: () => undefined });
    child.on('close', () => stdout.push(null));
  }

  return {
    pid: pid ?? -1,
    stdin,
    stdout,
    exited,
    kill: () => stop('was killed'),
    stderrTail: () => stderr.toString('utf8'),
  };
}
