import type { Command } from 'commander';
import { ApiClient, isRecord } from './api-client.js';
import { ApiError, CliError, defaultUrl } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import type { StoredCredentials } from './credentials-store.js';
import { readPassword } from './password-prompt.js';
import { serverKey } from './credentials-store.js';
import { chosenServer, credentialsStore } from './session.js';

interface LoginOptions {
  url?: string;
  user: string;
  project: string;
  domain: string;
  passwordStdin?: boolean;
}

export function registerLoginCommands(program: Command, io: CliIo): void {
  program
    .command('login')
    .description('Sign in to a Coffer API and keep the token for the other commands')
    .option('--url <url>', `the Coffer API (default: COFFER_URL, else ${defaultUrl})`)
    .option('--user <name>', 'user name', 'admin')
    .option('--project <name>', 'project to work in', 'admin')
    .option('--domain <id>', 'domain of the user and the project', 'default')
    .option('--password-stdin', 'read the password from standard input (else COFFER_PASSWORD, else a prompt)')
    .action((options: LoginOptions) => runAction(io, () => login(io, options)));

  program
    .command('logout')
    .description('Forget the saved token of one server and revoke it there (logins to other servers stay)')
    .option('--url <url>', 'the server to log out of (default: COFFER_URL, else the one of the last login)')
    .action((options: { url?: string }) => runAction(io, () => logout(io, options.url ?? chosenServer(io))));
}

async function login(io: CliIo, options: LoginOptions): Promise<void> {
  const url = normaliseUrl(options.url ?? chosenServer(io) ?? defaultUrl);
  const password = await readPassword(io, options.passwordStdin === true);
  const identity = new ApiClient({ baseUrl: `${url}/identity/v3`, serverUrl: url });
  const domain = { id: options.domain };
  let response;
  try {
    response = await identity.request('POST', '/auth/tokens', {
      auth: {
        identity: { methods: ['password'], password: { user: { name: options.user, domain, password } } },
        scope: { project: { name: options.project, domain } },
      },
    });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      throw new ApiError(401, `Login failed: ${err.message}`, 'Check the user name, project and password.');
    }
    throw err;
  }
  const credentials = credentialsFrom(url, response.headers.get('x-subject-token'), response.body);
  await credentialsStore(io).write(credentials);
  io.stdout.write(
    `Logged in to ${url} as ${options.user} (project ${options.project}) until ${credentials.expiresAt}.\n`,
  );
}

function normaliseUrl(raw: string): string {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new CliError(`"${raw}" is not a URL.`, `Give the API's address, e.g. --url ${defaultUrl}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CliError(`"${raw}" is not an http(s) URL.`, `Give the API's address, e.g. --url ${defaultUrl}`);
  }
  return serverKey(raw);
}

/** Keystone's token answer: the token in X-Subject-Token, the database endpoint in the catalog. */
function credentialsFrom(url: string, token: string | null, body: unknown): StoredCredentials {
  const tokenBody = isRecord(body) && isRecord(body.token) ? body.token : undefined;
  const expiresAt = typeof tokenBody?.expires_at === 'string' ? Date.parse(tokenBody.expires_at) : NaN;
  const project = isRecord(tokenBody?.project) ? tokenBody.project : undefined;
  const projectId = project?.id;
  const notIdentity = () => new CliError(`${url} did not answer like Coffer's identity API.`, 'Check the --url.');
  if (token === null || token === '' || tokenBody === undefined) throw notIdentity();
  if (Number.isNaN(expiresAt) || typeof projectId !== 'string') throw notIdentity();
  const databaseEndpoint = publicDatabaseEndpoint(tokenBody.catalog);
  if (databaseEndpoint === undefined) {
    throw new CliError(`${url} has no public database endpoint in its service catalog.`, 'Check the --url.');
  }
  return { url, token, expiresAt: new Date(expiresAt).toISOString(), projectId, databaseEndpoint };
}

function publicDatabaseEndpoint(catalog: unknown): string | undefined {
  if (!Array.isArray(catalog)) return undefined;
  for (const service of catalog) {
    if (!isRecord(service) || service.type !== 'database' || !Array.isArray(service.endpoints)) continue;
    for (const endpoint of service.endpoints) {
      const url = isRecord(endpoint) && endpoint.interface === 'public' ? endpoint.url : undefined;
      if (typeof url === 'string') return url;
    }
  }
  return undefined;
}

async function logout(io: CliIo, url: string | undefined): Promise<void> {
  const store = credentialsStore(io);
  const credentials = await store.read(url);
  if (credentials === undefined) {
    io.stdout.write(url === undefined ? 'Not logged in.\n' : `Not logged in to ${serverKey(url)}.\n`);
    return;
  }
  await revoke(credentials);
  await store.remove(credentials.url);
  io.stdout.write(`Logged out of ${credentials.url}.\n`);
  const next = await store.read();
  if (next !== undefined) io.stdout.write(`Commands now go to ${next.url}, where you are still logged in.\n`);
}

/** Best effort: an unreachable server or an already expired token must not keep the user logged in. */
async function revoke(credentials: StoredCredentials): Promise<void> {
  const identity = new ApiClient({
    baseUrl: `${credentials.url}/identity/v3`,
    serverUrl: credentials.url,
    token: credentials.token,
    timeoutMs: 5_000,
  });
  try {
    await identity.request('DELETE', '/auth/tokens', undefined, { 'X-Subject-Token': credentials.token });
  } catch {
    // Deliberately ignored: see above.
  }
}
