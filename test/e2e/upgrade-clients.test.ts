// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own)
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { runCli } from '../support/coffer-process.js';
import { describeRun, openstack, troveCli, type Credentials } from '../support/openstack-clients.js';
import { waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';

// Version upgrades end to end (issue 13), through Debian's `openstack database instance upgrade`
// and `trove upgrade` and Coffer's CLI, against a real `coffer serve` whose host has Debian's
// PostgreSQL 15 and the npm builds of 16 to 18: 15 → 16 keeps the rows written before, takes a
// full backup first and answers `SELECT version()` with 16; 16 → 17 cannot be done on this host
// (no pg_upgrade for 17, no pg_dump for 16) and leaves the instance on 16, running, with a fault
// that says what to install; a downgrade is refused by the API.

const adminPassword = 'Upgrade-admin-pass-1234';
const userPassword = 'Upgrade-user-pass-1234';
let run: ServeRun;
let admin: Session;
let credentials: Credentials;

before(async () => {
  run = await startServe('coffer-e2e-upgrade', adminPassword, ['--address-pool', '127.96.23.0/24']);
  admin = run.session;
  credentials = { authUrl: `${run.baseUrl}/identity/v3`, user: 'admin', password: adminPassword, project: 'admin' };
});

after(async () => {
  await run?.stop();
});

async function call(method: string, path: string, body?: unknown) {
  return request<any>(method, trove(admin, path), { token: admin.token, ...(body === undefined ? {} : { body }) });
}

async function withPg<T>(host: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host, port: 5432, user: 'app', password: userPassword, database: 'app', connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** the instance once its upgrade task ended (ACTIVE again, on whichever version) */
const upgradeEnded = (id: string) =>
  waitForInstance(admin, id, (i) => i?.status === 'ERROR' || (i?.status === 'ACTIVE' && i?.operating_status === 'HEALTHY'), 300_000).then(({ instance }) => {
    assert.equal(instance.status, 'ACTIVE', JSON.stringify(instance.fault));
    return instance;
  });

test('PostgreSQL 15 → 16 through the openstack client keeps the data after a backup; 16 → 17 through trove is refused on this host and the instance stays on 16; no downgrade', { timeout: 900_000 }, async () => {
  const created = await call('POST', '/instances', {
    instance: { name: 'up-pg', flavorRef: '1', volume: { size: 1 }, datastore: { type: 'postgresql', version: '15' }, databases: [{ name: 'app' }], users: [{ name: 'app', password: userPassword, databases: [{ name: 'app' }] }] },
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const id = created.body.instance.id as string;
  const instance = await waitActive(admin, id, 240_000);
  const address = instance.addresses[0].address as string;
  await withPg(address, (c) => c.query("CREATE TABLE kept (id int PRIMARY KEY, v text); INSERT INTO kept SELECT i, 'row ' || i FROM generate_series(1, 1000) i"));

  const upgrade = await openstack(credentials, ['database', 'instance', 'upgrade', 'up-pg', '16']);
  assert.equal(upgrade.code, 0, describeRun(['openstack', 'database', 'instance', 'upgrade'], upgrade));
  const upgraded = await upgradeEnded(id);
  assert.equal(upgraded.datastore.version, '16', JSON.stringify(upgraded.fault));
  assert.equal(upgraded.addresses[0].address, address, 'the address is kept');
  const version = await withPg(address, async (c) => (await c.query<{ version: string }>('SELECT version()')).rows[0]!.version);
  assert.match(version, /^PostgreSQL 16\./);
  const rows = await withPg(address, async (c) => (await c.query<{ n: string; last: string }>("SELECT count(*) AS n, max(v) FILTER (WHERE id = 1000) AS last FROM kept")).rows[0]!);
  assert.deepEqual(rows, { n: '1000', last: 'row 1000' });
  await withPg(address, (c) => c.query("INSERT INTO kept VALUES (1001, 'on 16')"));
  const backups = (await call('GET', `/instances/${id}/backups`)).body.backups as Array<{ name: string; status: string; datastore: { version: string } }>;
  const before16 = backups.find((b) => b.name === 'Before the upgrade to 16');
  assert.ok(before16, JSON.stringify(backups));
  assert.equal(before16.status, 'COMPLETED');
  assert.equal(before16.datastore.version, '15', 'the backup is of the version before');

  // a downgrade is refused by the API before anything starts
  const down = await call('PATCH', `/instances/${id}`, { instance: { datastore_version: '15' } });
  assert.equal(down.status, 400, JSON.stringify(down.body));
  assert.match(down.body.badRequest.message, /cannot be downgraded to 15/);

  const refused = await troveCli(credentials, ['upgrade', id, '17']);
  assert.equal(refused.code, 0, describeRun(['trove', 'upgrade'], refused));
  const kept = await upgradeEnded(id);
  assert.equal(kept.datastore.version, '16');
  assert.match(kept.fault?.message ?? '', /^Upgrade failed: PostgreSQL 16 cannot be upgraded to 17 on this host.*postgresql-17.*The instance keeps version 16\.$/);
  const still = await withPg(address, async (c) => (await c.query<{ v: string }>('SELECT v FROM kept WHERE id = 1001')).rows[0]?.v);
  assert.equal(still, 'on 16', 'the instance runs on with its data');

  // Coffer's CLI says the same, and what to look at
  const env = { COFFER_CONFIG_DIR: join(run.dataDir.path, 'cli') };
  const login = await runCli(['login', '--url', run.baseUrl, '--user', 'admin', '--project', 'admin', '--password-stdin'], { env, input: `${adminPassword}\n` });
  assert.equal(login.code, 0, login.stderr);
  const cli = await runCli(['instance', 'upgrade', 'up-pg', '18'], { env });
  assert.equal(cli.code, 1, cli.stdout + cli.stderr);
  assert.match(cli.stderr, /Upgrade of up-pg \(.*\) failed: .*cannot be upgraded to 18 on this host/);
  assert.equal((await call('GET', `/instances/${id}`)).body.instance.datastore.version, '16');
});
