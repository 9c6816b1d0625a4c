import { spawn } from 'node:child_process';
import { lchown, open } from 'node:fs/promises';
import { constants, setPriority } from 'node:os';
import { basename } from 'node:path';
import type {
  DetachedProcess,
  ProcessExit,
  ProcessRunner,
  RunOptions,
  RunResult,
  SpawnDetachedOptions,
  StreamingProcess,
  StreamOptions,
} from '../guest/index.js';
import { CofferError } from '../common/index.js';
import { startStreamingProcess } from './streaming-process.js';

// The local driver's ProcessRunner: programs run as argument arrays (never through a shell),
// with a minimal environment (the agent's own may hold secrets), and, when the agent runs as
// root, as the unprivileged engine user: PostgreSQL refuses to run as root.

export interface EngineIdentity {
  name: string;
  uid: number;
  gid: number;
}

const maxOutput = 1024 * 1024;
const baseEnv = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

function tail(text: string, length = 1500): string {
  return text.length > length ? text.slice(-length) : text;
}

export class LocalProcessRunner implements ProcessRunner {
  /** settled `walled`: undefined while it is pending, else what it came to */
  private wall: { up: true } | { up: false; err: unknown } | undefined = { up: true };

  /**
   * `identity` undefined: run as the agent's own user. `walled`: the identity's network wall
   * being put up (network-wall.ts), which nothing this runner starts may precede: every program
   * waits for it, and none starts if it fails. A new instance's wall is raised beside the rest of
   * its create instead of ahead of it (one `nft` transaction, 15 to 25 ms here); this keeps
   * the order that matters, the wall before anything runs as the instance's user.
   */
  constructor(
    readonly identity: EngineIdentity | undefined,
    private readonly walled?: Promise<void>,
  ) {
    if (walled === undefined) return;
    this.wall = undefined;
    walled.then(
      () => (this.wall = { up: true }),
      (err: unknown) => (this.wall = { up: false, err }),
    );
  }

  private ids(): { uid?: number; gid?: number } {
    return this.identity === undefined ? {} : { uid: this.identity.uid, gid: this.identity.gid };
  }

  async run(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
    await this.walled;
    return this.runNow(file, args, options);
  }

  private runNow(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
    const name = basename(file);
    return new Promise<RunResult>((resolve, reject) => {
      const began = Date.now();
      const child = spawn(file, args, {
        ...this.ids(),
        cwd: options.cwd,
        env: { ...baseEnv, ...options.env },
        // stdin: what `input` holds, else an empty pipe (EOF at once, as /dev/null)
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        signal: options.signal,
        // its own process group: a run killed for its deadline or an abort takes what it started
        // with it (initdb's postgres), instead of leaving it to end when its input closes
        detached: true,
      });
      child.once('exit', (_code, signal) => {
        if (signal !== 'SIGKILL' || child.pid === undefined) return;
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // nothing of the group is left
        }
      });
      if (options.lowPriority === true && child.pid !== undefined) {
        // inherited by what it forks next; set before it has got far enough to fork anything big
        try {
          setPriority(child.pid, constants.priority.PRIORITY_LOW);
        } catch {
          // already exited: its close event reports how
        }
      }
      // a program that exits before reading all of it must not crash the agent with EPIPE
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input ?? '');
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        if (stdout.length < maxOutput) stdout += chunk;
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        if (stderr.length < maxOutput) stderr += chunk;
      });
      let settled = false;
      child.on('error', (err) => {
        if (settled) return;
        settled = true;
        reject(new CofferError('EngineError', `${name} could not run: ${err.message}`, { cause: err }));
      });
      child.on('close', (code, signal) => {
        if (settled) return;
        settled = true;
        if (code === 0) {
          resolve({ stdout, stderr });
          return;
        }
        const timedOut = signal === 'SIGKILL' && Date.now() - began >= options.timeoutMs;
        const how = timedOut
          ? `timed out after ${options.timeoutMs} ms`
          : signal !== null
            ? `was killed by ${signal}`
            : `exited with code ${code}`;
        reject(new CofferError('EngineError', `${name} ${how}.`, { details: tail(stderr.trim() || stdout.trim()) }));
      });
    });
  }

  async ready(): Promise<void> {
    await this.walled;
  }

  stream(file: string, args: readonly string[], options: StreamOptions): StreamingProcess {
    // started at once or not at all: a stream is asked for once the instance runs (its backups),
    // long after its wall went up, or by a restore's prepare, which waits for `ready` first
    if (this.wall === undefined) throw new CofferError('Internal', `${basename(file)} was not started: the instance's network wall is not up yet.`);
    if (!this.wall.up) throw this.wall.err;
    return startStreamingProcess(file, args, options, { ...this.ids(), env: { ...baseEnv, ...options.env } });
  }

  async spawnDetached(file: string, args: readonly string[], options: SpawnDetachedOptions): Promise<DetachedProcess> {
    await this.walled;
    const log = await open(options.logFile, 'a', 0o600);
    try {
      await this.handOver(options.logFile);
      // detached: its own process group and session, so the agent's exit or a signal to the
      // agent's group does not reach it; unref'd below so it does not keep the agent alive
      const child = spawn(file, args, {
        ...this.ids(),
        cwd: options.cwd,
        env: { ...baseEnv, ...options.env },
        detached: true,
        stdio: ['ignore', log.fd, log.fd],
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (err) =>
          reject(new CofferError('EngineError', `${basename(file)} could not start: ${err.message}`, { cause: err })),
        );
      });
      child.on('error', () => undefined);
      const exited = new Promise<ProcessExit>((resolve) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
      child.unref();
      return { pid: child.pid!, exited };
    } finally {
      await log.close();
    }
  }

  async handOver(path: string): Promise<void> {
    if (this.identity !== undefined) await lchown(path, this.identity.uid, this.identity.gid);
  }
}
