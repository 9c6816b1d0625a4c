import { spawn } from 'node:child_process';
import { once } from 'node:events';

// Runs the real OpenStack clients (`openstack` with python-troveclient's OSC plugin, and the
// legacy `trove` CLI) against a Coffer, with credentials passed the way users pass them: OS_*
// environment variables.

export interface Credentials {
  authUrl: string;
  user: string;
  password: string;
  project: string;
}

export interface ClientResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a user who sourced an openrc for `c`, and nothing else of OpenStack's. */
export function openrcEnv(c: Credentials): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('OS_')) env[key] = value;
  }
  return {
    ...env,
    OS_AUTH_URL: c.authUrl,
    OS_IDENTITY_API_VERSION: '3',
    OS_AUTH_TYPE: 'password',
    OS_USERNAME: c.user,
    OS_PASSWORD: c.password,
    OS_PROJECT_NAME: c.project,
    OS_USER_DOMAIN_ID: 'default',
    OS_PROJECT_DOMAIN_ID: 'default',
    OS_INTERFACE: 'public',
    OS_REGION_NAME: 'RegionOne',
    // Python buffers differently on pipes; the clients' messages must reach us whole.
    PYTHONUNBUFFERED: '1',
  };
}

async function run(command: string, args: string[], c: Credentials, timeoutMs: number): Promise<ClientResult> {
  const child = spawn(command, args, { env: openrcEnv(c), stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** `openstack <args>` */
export function openstack(c: Credentials, args: string[], timeoutMs = 120_000): Promise<ClientResult> {
  return run('openstack', args, c, timeoutMs);
}

/** `trove --json <args>`: the legacy CLI, asked for JSON (its tables print bytes reprs on Python 3). */
export function troveCli(c: Credentials, args: string[], timeoutMs = 120_000): Promise<ClientResult> {
  return run('trove', ['--json', ...args], c, timeoutMs);
}

/** What a failed command said, for assertion messages. */
export function describeRun(args: string[], r: ClientResult): string {
  return `${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/**
 * The JSON document a command printed last. `openstack database limit list` prints a table of
 * the absolute limits before its JSON, so the document is found from the end.
 */
export function lastJson<T = any>(stdout: string): T {
  const text = stdout.trimEnd();
  const close = text.at(-1);
  const open = close === ']' ? '[' : '{';
  for (let i = text.lastIndexOf(`\n${open}`); i >= -1; i = text.lastIndexOf(`\n${open}`, i - 1)) {
    try {
      return JSON.parse(text.slice(i + 1)) as T;
    } catch {
      if (i < 0) break;
    }
  }
  return JSON.parse(text) as T;
}
