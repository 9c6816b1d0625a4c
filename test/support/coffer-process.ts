import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { NetnsHost } from './netns-hosts.js';

// Starts `coffer <role>` as a real child process from the TypeScript sources, the way an
// operator runs it, and stops it the way an operator (or a crash) would.

const entry = fileURLToPath(new URL('../../src/main/coffer.ts', import.meta.url));

export interface RoleProcess {
  readonly child: ChildProcess;
  /** everything the process printed so far */
  output(): string;
  /** resolves when a line matching `pattern` was printed */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM and wait for exit (clean stop) */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit (a crash) */
  kill(): Promise<void>;
}

export function startRole(
  args: string[],
  env: Record<string, string> = {},
  as: { uid?: number; gid?: number; host?: NetnsHost } = {},
): RoleProcess {
  const { host, ...ids } = as;
  const command = [process.execPath, '--import', 'tsx', entry, ...args];
  const options = {
    // Tests poll far faster than Trove's 200 requests a minute allow; a test may still set its own.
    env: { COFFER_RATE_LIMIT: '100000', ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'],
    ...ids,
  };
  // inside a namespace host (netns-hosts.ts), as a role runs on another machine
  const child = host === undefined ? spawn(command[0]!, command.slice(1), options) : host.spawn(command[0]!, command.slice(1), options);
  let text = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString();
    for (const waiter of waiters) waiter();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = once(child, 'exit');

  const waitExit = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await exited;
  };

  return {
    child,
    output: () => text,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(text);
          if (match) {
            cleanup();
            resolve(match[0]);
          } else if (child.exitCode !== null) {
            cleanup();
            reject(new Error(`coffer ${args[0]} exited (${child.exitCode}) before printing ${pattern}:\n${text}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern} from coffer ${args[0]}:\n${text}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
          child.off('exit', check);
        };
        waiters.add(check);
        child.on('exit', check);
        check();
      });
    },
    stop: () => waitExit('SIGTERM'),
    kill: () => waitExit('SIGKILL'),
  };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Runs one `coffer` client command to completion. */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: options.timeoutMs ?? 120_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin!.end(options.input ?? '');
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}
