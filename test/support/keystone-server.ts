import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './coffer-process.js';
import { waitUntil } from './wait.js';

// A real Keystone (Debian's `keystone` package, which .ci/run installs) for one test file: its
// own SQLite database and Fernet keys in a temporary directory, bootstrapped with an admin in
// project `admin` and an identity endpoint in RegionOne, served by keystone-wsgi-public on a free
// loopback port (no Apache, no uwsgi). Helpers call its REST API directly: the `openstack`
// client costs seconds per command, and the tests keep it for what they prove about clients.

const run = promisify(execFile);

export interface KeystoneReply {
  status: number;
  body: any;
  headers: Headers;
}

export interface KeystoneServer {
  /** root URL, e.g. http://127.0.0.1:40123 (clients use `${url}/v3`) */
  url: string;
  adminPassword: string;
  call(method: string, path: string, options?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<KeystoneReply>;
  /** a project-scoped token for `user` in `project` (names, default domain) */
  issueToken(user: string, password: string, project: string): Promise<{ token: string; body: any }>;
  /** creates a project, a user in it with `password`, and gives it `role` there; returns their ids */
  addUser(project: string, user: string, password: string, role: string): Promise<{ projectId: string; userId: string }>;
  stop(): Promise<void>;
}

export async function startKeystone(adminPassword = 'Keystone-admin-pass-1234'): Promise<KeystoneServer> {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-keystone-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const conf = join(dir, 'keystone.conf');
  await writeFile(
    conf,
    [
      '[DEFAULT]',
      `log_file = ${join(dir, 'keystone.log')}`,
      '[database]',
      `connection = sqlite:///${join(dir, 'keystone.sqlite')}`,
      '[fernet_tokens]',
      `key_repository = ${join(dir, 'fernet-keys')}`,
      '[credential]',
      `key_repository = ${join(dir, 'credential-keys')}`,
      '[token]',
      'provider = fernet',
      '',
    ].join('\n'),
  );
  let server: ChildProcess | undefined;
  const stop = async () => {
    if (server !== undefined && server.exitCode === null && server.signalCode === null) {
      const exited = once(server, 'exit');
      server.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const manage = (...args: string[]) => run('keystone-manage', ['--config-file', conf, ...args], { timeout: 180_000 });
    const owner = ['--keystone-user', userInfo().username, '--keystone-group', (await run('id', ['-gn'])).stdout.trim()];
    await manage('db_sync');
    await manage('fernet_setup', ...owner);
    await manage('credential_setup', ...owner);
    await manage(
      'bootstrap', '--bootstrap-password', adminPassword, '--bootstrap-region-id', 'RegionOne',
      '--bootstrap-public-url', `${url}/v3/`, '--bootstrap-internal-url', `${url}/v3/`, '--bootstrap-admin-url', `${url}/v3/`,
    );
    // Under load Keystone's SQLite commits failed now and then with "database is locked" (a 500):
    // a reader it left open blocks a writer in SQLite's default journal mode, never in WAL mode.
    await run('python3', ['-c', 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("pragma journal_mode=wal")', join(dir, 'keystone.sqlite')]);
    // wsgiref prints the tracebacks of what fails outside Keystone's own handlers on stderr
    const serverLog = await open(join(dir, 'server.log'), 'a');
    server = spawn('keystone-wsgi-public', ['--host', '127.0.0.1', '--port', String(port)], {
      env: { ...process.env, OS_KEYSTONE_CONFIG_FILES: conf },
      stdio: ['ignore', serverLog.fd, serverLog.fd],
    });
    await serverLog.close();
    await waitUntil(
      'Keystone to answer',
      async () => {
        if (server!.exitCode !== null) throw new Error(`keystone-wsgi-public exited with ${server!.exitCode}`);
        return (await fetch(`${url}/v3`).then((r) => r.ok, () => false)) ? true : undefined;
      },
      60_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const call: KeystoneServer['call'] = async (method, path, options = {}) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(options.token === undefined ? {} : { 'x-auth-token': options.token }),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await response.text();
    let body: unknown = text === '' ? undefined : text;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      // wsgiref's own 500 page is text
    }
    return { status: response.status, body, headers: response.headers };
  };

  const issueToken: KeystoneServer['issueToken'] = async (user, password, project) => {
    const reply = await call('POST', '/v3/auth/tokens', {
      body: {
        auth: {
          identity: { methods: ['password'], password: { user: { name: user, domain: { id: 'default' }, password } } },
          scope: { project: { name: project, domain: { id: 'default' } } },
        },
      },
    });
    if (reply.status !== 201) throw new Error(`Keystone refused ${user}@${project}: ${reply.status} ${JSON.stringify(reply.body)}`);
    return { token: reply.headers.get('x-subject-token')!, body: reply.body };
  };

  const logTail = async (name: string) => (await readFile(join(dir, name), 'utf8').catch(() => '')).split('\n').slice(-30).join('\n');
  const expect = async (status: number, method: string, path: string, body?: unknown) => {
    const { token } = await issueToken('admin', adminPassword, 'admin');
    let reply = await call(method, path, { token, body });
    // Seen once under load: wsgiref answered a role grant with its bare 500. PUT and GET are
    // idempotent, so they are tried again, and the failure is shown in full when it persists.
    for (let retry = 0; reply.status === 500 && (method === 'PUT' || method === 'GET') && retry < 2; retry++) {
      reply = await call(method, path, { token, body });
    }
    if (reply.status !== status) {
      throw new Error(
        `${method} ${path}: ${reply.status} ${JSON.stringify(reply.body)}\nserver.log:\n${await logTail('server.log')}\nkeystone.log:\n${await logTail('keystone.log')}`,
      );
    }
    return reply.body;
  };

  const addUser: KeystoneServer['addUser'] = async (project, user, password, role) => {
    const existing = await expect(200, 'GET', `/v3/projects?name=${encodeURIComponent(project)}`);
    const projectId: string =
      existing.projects[0]?.id ?? (await expect(201, 'POST', '/v3/projects', { project: { name: project, domain_id: 'default' } })).project.id;
    const created = await expect(201, 'POST', '/v3/users', {
      user: { name: user, password, domain_id: 'default', default_project_id: projectId },
    });
    const roles = await expect(200, 'GET', `/v3/roles?name=${encodeURIComponent(role)}`);
    await expect(204, 'PUT', `/v3/projects/${projectId}/users/${created.user.id}/roles/${roles.roles[0].id}`);
    return { projectId, userId: created.user.id };
  };

  return { url, adminPassword, call, issueToken, addUser, stop };
}
