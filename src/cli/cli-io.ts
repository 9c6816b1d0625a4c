import { homedir } from 'node:os';

/** Where output goes; `isTTY` decides between live progress and plain lines. */
export interface OutputStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/** What the client commands take from the outside world, so tests can run them in-process. */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly homeDir: string;
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /** Records the process exit code (the real one sets `process.exitCode`, so output is flushed). */
  setExitCode(code: number): void;
  /** How often waits poll the API; 250 ms unless a test wants it faster. */
  readonly pollIntervalMs: number;
}

/** The real process: the CLI's one place that reads the environment. */
export function processIo(): CliIo {
  return {
    env: process.env,
    homeDir: homedir(),
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    setExitCode: (code) => {
      process.exitCode = code;
    },
    pollIntervalMs: 250,
  };
}
