// Runs the client commands in-process (fast, with terminals and stdin faked) or as a real child
// process through cli-entry.ts (exit codes, real stdio).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { registerClientCommands, type CliIo } from '../../src/cli/index.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  stdin?: CliIo['stdin'];
  stdoutIsTty?: boolean;
  stderrIsTty?: boolean;
  pollIntervalMs?: number;
}

export async function tempConfigDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const base = await mkdtemp(join(tmpdir(), 'coffer-cli-test-'));
  // A directory login must create, so its mode can be checked.
  return { dir: join(base, 'config'), cleanup: () => rm(base, { recursive: true, force: true }) };
}

export async function runCli(configDir: string, args: string[], options: RunOptions = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  let code = 0;
  const program = new Command('coffer')
    .exitOverride()
    .configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s) });
  registerClientCommands(program, {
    env: { COFFER_CONFIG_DIR: configDir, ...options.env },
    homeDir: join(configDir, 'home-not-used'),
    stdin: options.stdin ?? Readable.from([]),
    stdout: { write: (s: string) => (stdout += s), isTTY: options.stdoutIsTty ?? false },
    stderr: { write: (s: string) => (stderr += s), isTTY: options.stderrIsTty ?? false },
    setExitCode: (c) => {
      code = c;
    },
    pollIntervalMs: options.pollIntervalMs ?? 20,
  });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    code = err.exitCode;
  }
  return { code, stdout, stderr };
}

const entry = fileURLToPath(new URL('./cli-entry.ts', import.meta.url));

/** The real thing: `node --import tsx cli-entry.ts ...args`, with only the env given here (plus PATH). */
export function spawnCli(args: string[], env: Record<string, string>, stdin = ''): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: env.COFFER_CONFIG_DIR ?? '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** A loopback URL nothing listens on: a port the OS just handed out and that was closed again. */
export async function unreachableUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** `instance create <name>` with the required options (small flavor, 1 GB) plus `extra`, which may override them. */
export function createArgs(name: string, ...extra: string[]): string[] {
  return ['instance', 'create', name, '--datastore', 'postgresql', '--flavor', 'small', '--size', '1', ...extra];
}
