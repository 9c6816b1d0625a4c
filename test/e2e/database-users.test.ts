// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { request, trove, type Session } from '../support/api-client.js';
import { join } from 'node:path';
import { runCli } from '../support/coffer-process.js';
import { appPassword, createInstance, deleteAndVerifyGone, waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';

// `coffer serve` end to end: the database, user, user-access and root APIs on one real
// PostgreSQL instance, each change checked by logging in with a real driver.

const adminPassword = 'Dbusers-admin-pass-1234';
let run: ServeRun;
let dataDir: ServeRun['dataDir'];
let session: Session;
let baseUrl: string;

before(async () => {
  run = await startServe('coffer-e2e-dbusers', adminPassword, ['--address-pool', '127.94.0.0/24']);
  ({ dataDir, session, baseUrl } = run);
});

after(() => run?.stop());

async function call(method: string, path: string, body?: unknown) {
  return request<any>(method, trove(session, path), { token: session.token, ...(body === undefined ? {} : { body }) });
}

async function expect(method: string, path: string, status: number, body?: unknown) {
  const res = await call(method, path, body);
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Logs in as `user` and runs `sql` in `database`. */
async function asUser(host: string, user: string, password: string, database: string, sql = 'SELECT current_user AS u'): Promise<any[]> {
  const client = new pg.Client({ host, port: 5432, user, password, database });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

test('databases, users, their access and root on a running PostgreSQL, each checked by logging in', async () => {
  const created = await createInstance(session, 'e2e-dbusers');
  const instance = await waitActive(session, created.id);
  const host = instance.addresses[0].address as string;
  const base = `/instances/${created.id}`;

  // databases: list, create, page, refuse a duplicate, delete
  assert.deepEqual(await expect('GET', `${base}/databases`, 200), { databases: [{ name: 'app' }] });
  await expect('POST', `${base}/databases`, 202, { databases: [{ name: 'sales' }, { name: 'archive' }] });
  const page = await expect('GET', `${base}/databases?limit=2`, 200);
  assert.deepEqual(page.databases, [{ name: 'app' }, { name: 'archive' }]);
  const next = new URL(page.links[0].href);
  assert.equal(next.searchParams.get('marker'), 'archive');
  assert.deepEqual(await expect('GET', `${base}/databases${next.search}`, 200), { databases: [{ name: 'sales' }] });
  const duplicate = await expect('POST', `${base}/databases`, 400, { databases: [{ name: 'app' }] });
  assert.match(duplicate.badRequest.message, /already exists/);
  assert.equal((await expect('DELETE', `${base}/databases/no_such_db`, 404)).itemNotFound.code, 404);

  // users: create with access to one database; it logs in there and nowhere else
  const analystPassword = 'Analyst-pass-1234';
  await expect('POST', `${base}/users`, 202, { users: [{ name: 'analyst', password: analystPassword, databases: [{ name: 'sales' }] }] });
  assert.deepEqual(await expect('GET', `${base}/users`, 200), {
    users: [
      { name: 'analyst', host: '%', databases: [{ name: 'sales' }] },
      { name: 'app', host: '%', databases: [{ name: 'app' }] },
    ],
  });
  assert.deepEqual(await expect('GET', `${base}/users/analyst`, 200), { user: { name: 'analyst', host: '%', databases: [{ name: 'sales' }] } });
  await asUser(host, 'analyst', analystPassword, 'sales', 'CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)');
  await assert.rejects(asUser(host, 'analyst', analystPassword, 'app'), /permission denied for database "app"/);
  assert.match((await expect('POST', `${base}/users`, 400, { users: [{ name: 'analyst', password: 'x-y-z-1234' }] })).badRequest.message, /already exists/);

  // access: grant archive, revoke sales
  await expect('PUT', `${base}/users/analyst/databases`, 202, { databases: [{ name: 'archive' }] });
  assert.deepEqual(await expect('GET', `${base}/users/analyst/databases`, 200), { databases: [{ name: 'archive' }, { name: 'sales' }] });
  await asUser(host, 'analyst', analystPassword, 'archive');
  await expect('DELETE', `${base}/users/analyst/databases/sales`, 202);
  await assert.rejects(asUser(host, 'analyst', analystPassword, 'sales'), /permission denied for database "sales"/);
  await expect('DELETE', `${base}/users/analyst/databases/sales`, 404);

  // update attributes: a new password, then a new name that logs in with it
  const newPassword = 'Analyst-new-pass-5678';
  await expect('PUT', `${base}/users/analyst`, 202, { user: { password: newPassword } });
  await assert.rejects(asUser(host, 'analyst', analystPassword, 'archive'), /password authentication failed/);
  await expect('PUT', `${base}/users/analyst`, 202, { user: { name: 'auditor' } });
  await expect('GET', `${base}/users/analyst`, 404);
  assert.deepEqual(await asUser(host, 'auditor', newPassword, 'archive'), [{ u: 'auditor' }]);

  // change passwords (PUT /users), then delete a user
  const appNewPassword = 'App-new-pass-5678';
  await expect('PUT', `${base}/users`, 202, { users: [{ name: 'app', password: appNewPassword }] });
  await assert.rejects(asUser(host, 'app', appPassword, 'app'), /password authentication failed/);
  assert.deepEqual(await asUser(host, 'app', appNewPassword, 'app'), [{ u: 'app' }]);
  await expect('DELETE', `${base}/users/auditor`, 202);
  await assert.rejects(asUser(host, 'auditor', newPassword, 'archive'), /password authentication failed|does not exist/);
  await expect('DELETE', `${base}/databases/archive`, 202);
  assert.deepEqual(await expect('GET', `${base}/databases`, 200), { databases: [{ name: 'app' }, { name: 'sales' }] });

  // root: never enabled, enabled (a superuser that logs in), disabled (locked out), still "enabled once"
  assert.deepEqual(await expect('GET', `${base}/root`, 200), { rootEnabled: false });
  await expect('DELETE', `${base}/root`, 404);
  const { user: root } = await expect('POST', `${base}/root`, 200);
  assert.equal(root.password.length, 36);
  assert.deepEqual(await asUser(host, root.name, root.password, 'postgres', 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user'), [{ rolsuper: true }]);
  assert.deepEqual(await expect('GET', `${base}/root`, 200), { rootEnabled: true });
  await expect('DELETE', `${base}/root`, 204);
  await assert.rejects(asUser(host, root.name, root.password, 'postgres'), /password authentication failed|not permitted to log in/);
  assert.deepEqual(await expect('GET', `${base}/root`, 200), { rootEnabled: true });

  await deleteAndVerifyGone(session, created.id, dataDir.path);
});

test('the coffer CLI creates a database, a user with a generated password and enables root, each of which logs in', async () => {
  const env = { COFFER_CONFIG_DIR: join(dataDir.path, 'cli') };
  const cli = async (args: string[], input?: string) => {
    const result = await runCli(args, { env, ...(input === undefined ? {} : { input }) });
    assert.equal(result.code, 0, `coffer ${args.join(' ')}: ${result.stderr}${result.stdout}`);
    return result.stdout;
  };
  await cli(['login', '--url', baseUrl, '--password-stdin'], `${adminPassword}\n`);
  const created = await createInstance(session, 'e2e-dbusers-cli');
  const instance = await waitActive(session, created.id);
  const host = instance.addresses[0].address as string;

  await cli(['database', 'create', 'e2e-dbusers-cli', 'ledger']);
  assert.match(await cli(['database', 'list', 'e2e-dbusers-cli']), /ledger/);
  const user = await cli(['user', 'create', 'e2e-dbusers-cli', 'clerk', '--database', 'ledger']);
  const password = /^Password: (\S+)$/m.exec(user)?.[1];
  assert.ok(password !== undefined, user);
  assert.deepEqual(await asUser(host, 'clerk', password, 'ledger'), [{ u: 'clerk' }]);

  const root = await cli(['root', 'enable', 'e2e-dbusers-cli', '--json']);
  const { name, password: rootPassword } = JSON.parse(root) as { name: string; password: string };
  assert.deepEqual(await asUser(host, name, rootPassword, 'postgres', 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user'), [{ rolsuper: true }]);
  await cli(['root', 'disable', 'e2e-dbusers-cli']);
  await assert.rejects(asUser(host, name, rootPassword, 'postgres'), /password authentication failed|not permitted to log in/);

  await deleteAndVerifyGone(session, created.id, dataDir.path);
});
