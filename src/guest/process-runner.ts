import type { Readable, Writable } from 'node:stream';

// The port through which a guest runs its engine's programs. The guest never decides which OS
// user a program runs as or how it is detached: its host (the agent's local driver, later a
// container driver) implements this port and owns those choices.

export interface RunOptions {
  /** the program is killed and the run rejected after this long */
  timeoutMs: number;
  signal?: AbortSignal;
  cwd?: string;
  /** added to the runner's minimal environment; the host's own environment is never passed on */
  env?: Record<string, string>;
  /** work done ahead of time (a warm pool's initdb) yields the CPU to what users wait for */
  lowPriority?: boolean;
  /** written to the program's standard input (closed after it); without it stdin is empty */
  input?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface StreamOptions {
  /** the program (and its process group) is killed and `exited` rejected after this long */
  timeoutMs: number;
  /** aborting kills the program and its process group */
  signal?: AbortSignal;
  cwd?: string;
  /** added to the runner's minimal environment; the host's own environment is never passed on */
  env?: Record<string, string>;
  lowPriority?: boolean;
  /**
   * A stream backed by a descriptor (another child's stdin) that the program writes its output
   * into itself, so that output never passes through this process; `stdout` then carries
   * nothing and ends once the program exited.
   */
  stdout?: Writable;
}

/**
 * A program whose standard input and output are Node streams, for data too large to hold in
 * memory (backups, restores). Writing to `stdin` honours backpressure (`write()` returns false,
 * `pipeline()` waits); the program blocks on its stdout until `stdout` is read.
 */
export interface StreamingProcess {
  readonly pid: number;
  readonly stdin: Writable;
  readonly stdout: Readable;
  /**
   * Resolves once the program exited with status 0 and its output is closed; rejects with
   * CofferError `EngineError` (carrying the tail of stderr) when it cannot start, exits
   * non-zero, is aborted or times out. `stdout` must be read (or destroyed) for it to settle.
   */
  readonly exited: Promise<void>;
  /** Kills the program and its process group; `exited` rejects unless it had already settled. */
  kill(): void;
  /**
   * What the program wrote to its standard error so far, its last 64 KiB: whole once `exited`
   * resolved (a tool's own account of what it did, pg_basebackup's WAL positions).
   */
  stderrTail(): string;
}

export interface SpawnDetachedOptions {
  /** stdout and stderr are appended to this file */
  logFile: string;
  cwd?: string;
  env?: Record<string, string>;
}

export interface ProcessExit {
  code: number | null;
  signal: string | null;
}

export interface DetachedProcess {
  readonly pid: number;
  /**
   * Settles when the process exits, as long as the host that spawned it lives; a process
   * adopted after a host restart has no such promise (watch its pid instead). Never rejects.
   */
  readonly exited: Promise<ProcessExit>;
}

export interface ProcessRunner {
  /**
   * Runs a program to completion as the engine's OS user. Rejects with CofferError `EngineError`
   * (carrying the tail of stderr) when it cannot start, exits non-zero or times out.
   */
  run(file: string, args: readonly string[], options: RunOptions): Promise<RunResult>;
  /**
   * Starts a program as the engine's OS user in its own process group with its stdin and
   * stdout as streams. Nothing it forks outlives it: the whole group is killed when it exits,
   * is aborted or times out.
   */
  stream(file: string, args: readonly string[], options: StreamOptions): StreamingProcess;
  /**
   * Resolves once programs may start as the engine's OS user: its network wall is up (`stream`
   * refuses before, where `run` and `spawnDetached` wait). Rejects, with why, when they never may.
   */
  ready(): Promise<void>;
  /**
   * Starts a long-running program as the engine's OS user in its own process group, detached
   * from the host so that it outlives it. Resolves once the process exists.
   */
  spawnDetached(file: string, args: readonly string[], options: SpawnDetachedOptions): Promise<DetachedProcess>;
  /** Gives a file or directory the host created to the engine's OS user (no-op when they are the same). */
  handOver(path: string): Promise<void>;
}
