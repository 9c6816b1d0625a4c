// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
// test-long (minutes: every openstack and trove command it runs, some in loops, starts Python)
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  describeRun,
  lastJson,
  openstack,
  troveCli,
  type ClientResult,
  type Credentials,
} from '../support/openstack-clients.js';
import { login, request, trove as troveUrl } from '../support/api-client.js';
import { eventually } from '../support/wait.js';
import { startServe, type ServeRun } from './serve-run.js';

// The proof that Trove's own clients work against Coffer unchanged: a real `coffer serve`, and
// Debian's python3-openstackclient (OSC 6.0 with python-troveclient 8.0's plugin) and `trove`
// CLI driven as child processes with nothing but OS_* variables, as a user would. An admin makes
// a project and a member; the member does everything else. The steps share one instance and run
// in order; each is a test of its own so that one missing feature does not hide the others.

const adminPassword = 'Clients-admin-pass-1234';
const memberPassword = 'Clients-member-pass-1234';
const appPassword = 'Clients-app-pass-1234';
const bobPassword = 'Clients-bob-pass-1234';
const rootPassword = 'Clients-root-pass-1234';
const addressPool = '127.97.0.0/16';
const instanceName = 'clients-pg';
const waitMs = 120_000;
/** a guard against a hung step, not a measure: client commands take seconds each on a busy machine */
const stepMs = 600_000;

let run: ServeRun;
let baseUrl = '';
let admin: Credentials;
let member: Credentials;
let projectId = '';
let instanceId = '';
let instanceAddress = '';
/** every password the steps used or were given, for the log check at the end */
const passwordsSeen = [adminPassword, memberPassword, appPassword, bobPassword, rootPassword];

before(async () => {
  run = await startServe('coffer-e2e-clients', adminPassword, [
    '--address-pool', addressPool,
    '--warm-pool-size', '1',
    // Trove's 200 requests a minute per verb is within reach of a client polling and resolving
    // names; the limit is raised, not turned off, so that GET /limits still lists it.
    '--rate-limit', '100000',
  ]);
  baseUrl = run.baseUrl;
  const authUrl = `${baseUrl}/identity/v3`;
  admin = { authUrl, user: 'admin', password: adminPassword, project: 'admin' };
  member = { authUrl, user: 'clients-member', password: memberPassword, project: 'clients-project' };
});

after(async () => {
  await run?.stop();
});

/** Runs `openstack <args>` and insists that it succeeded. */
async function os(c: Credentials, args: string[]): Promise<ClientResult> {
  const r = await openstack(c, args);
  assert.equal(r.code, 0, describeRun(['openstack', ...args], r));
  return r;
}

async function osJson<T = any>(c: Credentials, args: string[]): Promise<T> {
  return lastJson<T>((await os(c, [...args, '-f', 'json'])).stdout);
}

/** Runs `trove --json <args>` and insists that it succeeded. */
async function trove(args: string[]): Promise<ClientResult> {
  const r = await troveCli(member, args);
  assert.equal(r.code, 0, describeRun(['trove', ...args], r));
  return r;
}

async function showInstance(): Promise<any> {
  return osJson(member, ['database', 'instance', 'show', instanceId]);
}

/** Polls `openstack database instance show` until `ok` holds; returns that view. */
function waitForInstance(what: string, ok: (view: any) => boolean): Promise<any> {
  return eventually(
    what,
    async () => {
      const view = await showInstance();
      assert.notEqual(view.status, 'ERROR', `instance went to ERROR while waiting for ${what}: ${JSON.stringify(view)}`);
      return view;
    },
    ok,
    waitMs,
  );
}

const healthy = (view: any) => view.status === 'ACTIVE' && view.operating_status === 'HEALTHY';

async function withPg<T>(user: string, password: string, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: instanceAddress, port: 5432, user, password, database });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function pgRefuses(user: string, password: string, database: string): Promise<string> {
  const client = new pg.Client({ host: instanceAddress, port: 5432, user, password, database });
  try {
    await client.connect();
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
  return '';
}

const names = (rows: Array<{ Name: string }>) => rows.map((r) => r.Name).sort();

describe('OpenStack clients against coffer serve', { concurrency: 1 }, () => {
  test('admin: openstack project create, user create --password, role add member', { timeout: stepMs }, async () => {
    const project = await osJson(admin, ['project', 'create', '--description', 'client proof', member.project]);
    assert.equal(project.name, member.project);
    assert.equal(project.enabled, true);
    assert.match(project.id, /^[0-9a-f]{32}$/);
    projectId = project.id;

    const user = await osJson(admin, ['user', 'create', '--project', member.project, '--password', memberPassword, member.user]);
    assert.equal(user.name, member.user);
    assert.equal(user.default_project_id, projectId);
    assert.ok(!JSON.stringify(user).includes(memberPassword), 'the password is not echoed');

    await os(admin, ['role', 'add', '--project', member.project, '--user', member.user, 'member']);
    const assignments = await osJson(admin, ['role', 'assignment', 'list', '--project', member.project, '--user', member.user, '--names']);
    assert.deepEqual(
      assignments.map((a: any) => [a.Role, a.User, a.Project]),
      [['member', `${member.user}@Default`, `${member.project}@Default`]],
    );

    const token = await osJson(member, ['token', 'issue']);
    assert.equal(token.project_id, projectId);

    // The member changes its own password, and keeps using the new one.
    const changed = `${memberPassword}-new`;
    passwordsSeen.push(changed);
    await os(member, ['user', 'password', 'set', '--original-password', memberPassword, '--password', changed]);
    member = { ...member, password: changed };
    assert.equal((await osJson(member, ['token', 'issue'])).user_id, user.id);
  });

  test('member: openstack datastore list, datastore version list postgresql', { timeout: stepMs }, async () => {
    const datastores = await osJson(member, ['datastore', 'list']);
    assert.ok(datastores.some((d: any) => d.Name === 'postgresql'), JSON.stringify(datastores));
    const versions = await osJson(member, ['datastore', 'version', 'list', 'postgresql']);
    assert.ok(versions.length >= 1, 'postgresql has an active version');
    for (const v of versions) {
      assert.match(v.ID, /^[0-9a-f-]{36}$/);
      assert.match(v.Version, /^\d+(\.\d+)*$/);
    }
    const shown = await osJson(member, ['datastore', 'show', 'postgresql']);
    assert.equal(shown.name, 'postgresql');
    const version = await osJson(member, ['datastore', 'version', 'show', versions[0].Name, '--datastore', 'postgresql']);
    assert.equal(version.id, versions[0].ID);
    assert.equal(version.datastore, shown.id);
    const parameters = await osJson(member, ['database', 'configuration', 'parameter', 'list', versions[0].Name, '--datastore', 'postgresql']);
    assert.ok(parameters.length > 0, 'the engine reports the parameters it validates');
    for (const p of parameters) assert.match(p.Type, /^(integer|string|boolean|float)$/, JSON.stringify(p));
  });

  test('member: openstack database flavor list, trove flavor-list', { timeout: stepMs }, async () => {
    const flavors = await osJson(member, ['database', 'flavor', 'list']);
    const small = flavors.find((f: any) => f.Name === 'm1.small');
    assert.ok(small, JSON.stringify(flavors));
    assert.equal(small.RAM, 512);
    const shown = await osJson(member, ['database', 'flavor', 'show', 'm1.small']);
    assert.equal(shown.name, 'm1.small');
    assert.equal(shown.ram, 512);
    const legacy = lastJson((await trove(['flavor-list'])).stdout);
    assert.deepEqual(
      legacy.map((f: any) => f.name).sort(),
      flavors.map((f: any) => f.Name).sort(),
    );
  });

  test('member: openstack database instance create with a database and a user, until ACTIVE/HEALTHY', { timeout: stepMs }, async () => {
    const versions = await osJson(member, ['datastore', 'version', 'list', 'postgresql']);
    const created = await osJson(member, [
      'database', 'instance', 'create', instanceName,
      '--flavor', 'm1.small', '--size', '1',
      '--datastore', 'postgresql', '--datastore-version', versions[0].Name,
      '--databases', 'app', '--users', `app:${appPassword}`,
    ]);
    assert.equal(created.name, instanceName);
    assert.equal(created.status, 'BUILD');
    assert.equal(created.datastore, 'postgresql');
    assert.equal(created.datastore_version, versions[0].Name);
    assert.equal(created.flavor, '2');
    assert.equal(created.volume, 1);
    assert.equal(created.public, false);
    assert.ok(!JSON.stringify(created).includes(appPassword), 'the user password is not echoed');
    instanceId = created.id;

    const view = await waitForInstance('ACTIVE/HEALTHY after create', healthy);
    instanceAddress = view.addresses?.[0]?.address ?? view.ip;
    assert.match(instanceAddress, /^127\.97\.\d+\.\d+$/, 'the address comes from the configured pool');
    const who = await withPg('app', appPassword, 'app', async (c) => (await c.query('SELECT current_user AS u')).rows[0].u);
    assert.equal(who, 'app');
  });

  test('member: trove list, trove show', { timeout: stepMs }, async () => {
    const list = lastJson((await trove(['list'])).stdout);
    assert.deepEqual(list.map((i: any) => [i.id, i.name, i.status]), [[instanceId, instanceName, 'ACTIVE']]);
    const shown = lastJson((await trove(['show', instanceName])).stdout);
    assert.equal(shown.id, instanceId);
    assert.equal(shown.operating_status, 'HEALTHY');
    assert.equal(shown.datastore, 'postgresql');
    assert.equal(shown.flavor, '2');
    assert.equal(shown.ip, instanceAddress);
    const osList = await osJson(member, ['database', 'instance', 'list']);
    assert.deepEqual(osList.map((i: any) => i.ID), [instanceId]);
  });

  test('member: openstack database db create / list / delete, trove database-list', { timeout: stepMs }, async () => {
    await os(member, ['database', 'db', 'create', instanceName, 'reports']);
    assert.deepEqual(names(await osJson(member, ['database', 'db', 'list', instanceName])), ['app', 'reports']);
    const legacy = lastJson((await trove(['database-list', instanceName])).stdout);
    assert.deepEqual(legacy.map((d: any) => d.name).sort(), ['app', 'reports']);
    const inEngine = await withPg('app', appPassword, 'app', async (c) =>
      (await c.query("SELECT datname FROM pg_database WHERE datname = 'reports'")).rowCount,
    );
    assert.equal(inEngine, 1, 'the database exists in PostgreSQL');

    const duplicate = await openstack(member, ['database', 'db', 'create', instanceName, 'reports']);
    assert.notEqual(duplicate.code, 0);
    assert.match(duplicate.stderr, /already exists.*HTTP 400/s);

    await os(member, ['database', 'db', 'delete', instanceName, 'reports']);
    assert.deepEqual(names(await osJson(member, ['database', 'db', 'list', instanceName])), ['app']);
  });

  test('member: db list and user list follow the next links past a page of 20 (openstack and trove)', { timeout: stepMs }, async () => {
    // Made over HTTP in one request each: 25 client commands would only slow the proof down.
    const session = await login(baseUrl, member.user, member.password, member.project);
    const dbNames = Array.from({ length: 25 }, (_, i) => `page_db_${String(i).padStart(2, '0')}`);
    const userNames = Array.from({ length: 25 }, (_, i) => `page_user_${String(i).padStart(2, '0')}`);
    const made = await request('POST', troveUrl(session, `/instances/${instanceId}/databases`), {
      token: session.token,
      body: { databases: dbNames.map((name) => ({ name })) },
    });
    assert.equal(made.status, 202, JSON.stringify(made.body));
    const users = await request('POST', troveUrl(session, `/instances/${instanceId}/users`), {
      token: session.token,
      body: { users: userNames.map((name) => ({ name, password: appPassword })) },
    });
    assert.equal(users.status, 202, JSON.stringify(users.body));

    assert.deepEqual(names(await osJson(member, ['database', 'db', 'list', instanceName])), ['app', ...dbNames].sort());
    assert.deepEqual(lastJson((await trove(['database-list', instanceName])).stdout).map((d: any) => d.name).sort(), ['app', ...dbNames].sort());
    // OSC asks for the later pages with the instance argument as given: an id works, as with Trove.
    assert.deepEqual(names(await osJson(member, ['database', 'user', 'list', instanceId])), ['app', ...userNames].sort());
    assert.deepEqual(lastJson((await trove(['user-list', instanceName])).stdout).map((u: any) => u.name).sort(), ['app', ...userNames].sort());

    for (const name of userNames) {
      const r = await request('DELETE', troveUrl(session, `/instances/${instanceId}/users/${name}`), { token: session.token });
      assert.equal(r.status, 202);
    }
    for (const name of dbNames) {
      const r = await request('DELETE', troveUrl(session, `/instances/${instanceId}/databases/${name}`), { token: session.token });
      assert.equal(r.status, 202);
    }
    assert.deepEqual(names(await osJson(member, ['database', 'db', 'list', instanceName])), ['app']);
  });

  test('member: openstack database user create / list / show / delete; trove user-grant/revoke/show-access', { timeout: stepMs }, async () => {
    await os(member, ['database', 'db', 'create', instanceName, 'scratch']);
    await os(member, ['database', 'user', 'create', instanceName, 'bob', bobPassword, '--databases', 'scratch']);
    const users = await osJson(member, ['database', 'user', 'list', instanceName]);
    assert.deepEqual(
      users.map((u: any) => [u.Name, u.Host, u.Databases]).sort(),
      [['app', '%', 'app'], ['bob', '%', 'scratch']],
    );
    const bob = await osJson(member, ['database', 'user', 'show', instanceName, 'bob']);
    assert.equal(bob.name, 'bob');
    assert.equal(bob.host, '%');
    assert.deepEqual(bob.databases, [{ name: 'scratch' }]);
    assert.ok(!JSON.stringify(bob).includes(bobPassword));
    assert.equal(await withPg('bob', bobPassword, 'scratch', async (c) => (await c.query('SELECT 1 AS one')).rows[0].one), 1);

    await os(member, ['database', 'user', 'update', 'attributes', instanceName, 'bob', '--new_password', `${bobPassword}-new`]);
    assert.match(await pgRefuses('bob', bobPassword, 'scratch'), /authentication failed/i);
    await os(member, ['database', 'user', 'update', 'attributes', instanceName, 'bob', '--new_password', bobPassword]);
    assert.equal(await withPg('bob', bobPassword, 'scratch', async (c) => (await c.query('SELECT 1 AS one')).rows[0].one), 1);

    await trove(['user-grant-access', instanceName, 'bob', 'app']);
    const granted = lastJson((await trove(['user-show-access', instanceName, 'bob'])).stdout);
    assert.deepEqual(granted.map((d: any) => d.name).sort(), ['app', 'scratch']);
    assert.equal(await withPg('bob', bobPassword, 'app', async (c) => (await c.query('SELECT 1 AS one')).rows[0].one), 1);

    await trove(['user-revoke-access', instanceName, 'bob', 'app']);
    const revoked = lastJson((await trove(['user-show-access', instanceName, 'bob'])).stdout);
    assert.deepEqual(revoked.map((d: any) => d.name), ['scratch']);
    assert.match(await pgRefuses('bob', bobPassword, 'app'), /permission denied|not have CONNECT/i);

    await os(member, ['database', 'user', 'delete', instanceName, 'bob']);
    const after = await osJson(member, ['database', 'user', 'list', instanceName]);
    assert.deepEqual(after.map((u: any) => u.Name), ['app']);
    assert.match(await pgRefuses('bob', bobPassword, 'scratch'), /authentication failed|does not exist/i);
    const missing = await openstack(member, ['database', 'user', 'show', instanceName, 'bob']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /HTTP 404/);
    await os(member, ['database', 'db', 'delete', instanceName, 'scratch']);
  });

  test('member: openstack database root enable, log in as root with pg, root show, root disable', { timeout: stepMs }, async () => {
    const generated = await osJson(member, ['database', 'root', 'enable', instanceName]);
    const rootName: string = generated.name;
    passwordsSeen.push(generated.password);
    assert.ok(generated.password.length >= 16, 'a generated password');
    const isSuper = await withPg(rootName, generated.password, 'postgres', async (c) =>
      (await c.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user')).rows[0].rolsuper,
    );
    assert.equal(isSuper, true);

    const chosen = await osJson(member, ['database', 'root', 'enable', instanceName, '--root_password', rootPassword]);
    assert.deepEqual(chosen, { name: rootName, password: rootPassword });
    assert.equal(await withPg(rootName, rootPassword, 'postgres', async (c) => (await c.query('SELECT 1 AS one')).rows[0].one), 1);
    assert.deepEqual(await osJson(member, ['database', 'root', 'show', instanceName]), { is_root_enabled: true });

    await os(member, ['database', 'root', 'disable', instanceName]);
    assert.match(await pgRefuses(rootName, rootPassword, 'postgres'), /authentication failed|not permitted to log in/i);
    // Trove reports the history, not the current state: still true after a disable.
    assert.deepEqual(await osJson(member, ['database', 'root', 'show', instanceName]), { is_root_enabled: true });
    // Checked last, so that the steps above are proven whatever the name: Trove 18's PostgreSQL
    // guest names its root user "root" (PgSqlAdmin.build_root_user), and clients show that name.
    assert.equal(rootName, 'root', "Trove's root user on PostgreSQL is named root");
  });

  test('member: openstack database instance restart', { timeout: stepMs }, async () => {
    const startedAt = () =>
      withPg('app', appPassword, 'app', async (c) => String((await c.query('SELECT pg_postmaster_start_time() AS t')).rows[0].t));
    const before = await startedAt();
    await os(member, ['database', 'instance', 'restart', instanceName]);
    await waitForInstance('ACTIVE/HEALTHY after restart', healthy);
    const after = await eventually('the engine accepts connections again', () => startedAt().catch(() => ''), (t) => t !== '');
    assert.notEqual(after, before, 'PostgreSQL was restarted');
  });

  test('member: openstack database instance resize flavor', { timeout: stepMs }, async () => {
    await os(member, ['database', 'instance', 'resize', 'flavor', instanceName, 'm1.medium']);
    const view = await waitForInstance('flavor 3, ACTIVE/HEALTHY', (v) => v.flavor === '3' && healthy(v));
    assert.equal(view.flavor, '3');
    assert.equal(await withPg('app', appPassword, 'app', async (c) => (await c.query('SELECT 1 AS one')).rows[0].one), 1);
  });

  test('member: openstack database instance resize volume', { timeout: stepMs }, async () => {
    await os(member, ['database', 'instance', 'resize', 'volume', instanceName, '2']);
    const view = await waitForInstance('volume 2, ACTIVE/HEALTHY', (v) => v.volume === 2 && healthy(v));
    assert.equal(view.volume, 2);
    const smaller = await openstack(member, ['database', 'instance', 'resize', 'volume', instanceName, '1']);
    assert.notEqual(smaller.code, 0);
    assert.match(smaller.stderr, /must be larger than the current volume size.*HTTP 400/s);
  });

  test('member: openstack database instance update --is-private/--is-public --allowed-cidr', { timeout: stepMs }, async () => {
    await os(member, ['database', 'instance', 'update', instanceName, '--is-private', '--allowed-cidr', '10.20.0.0/16']);
    const closed = await waitForInstance(
      'access 10.20.0.0/16 applied',
      (v) => healthy(v) && JSON.stringify(v.allowed_cidrs) === '["10.20.0.0/16"]',
    );
    assert.equal(closed.public, false);
    const refusal = await eventually('PostgreSQL refuses 127.0.0.1', () => pgRefuses('app', appPassword, 'app'), (m) => m !== '');
    assert.match(refusal, /pg_hba\.conf/);

    await os(member, ['database', 'instance', 'update', instanceName, '--is-public', '--allowed-cidr', '127.0.0.0/8']);
    const open = await waitForInstance(
      'access 127.0.0.0/8 applied',
      (v) => healthy(v) && v.public === true && JSON.stringify(v.allowed_cidrs) === '["127.0.0.0/8"]',
    );
    assert.equal(open.public, true);
    await eventually('PostgreSQL accepts 127.0.0.1 again', () => pgRefuses('app', appPassword, 'app'), (m) => m === '');

    await os(member, ['database', 'instance', 'update', instanceName, '--name', `${instanceName}-renamed`]);
    assert.equal((await showInstance()).name, `${instanceName}-renamed`);
    await os(member, ['database', 'instance', 'update', instanceId, '--name', instanceName]);
  });

  test('member: openstack database limit list, trove limit-list', { timeout: stepMs }, async () => {
    const r = await os(member, ['database', 'limit', 'list', '-f', 'json']);
    // OSC prints the absolute limits as a table before the JSON of the rate limits.
    assert.match(r.stdout, /max_instances/);
    const rates = lastJson(r.stdout);
    assert.deepEqual(rates.map((l: any) => l.Verb).sort(), ['DELETE', 'GET', 'POST', 'POST', 'PUT']);
    for (const l of rates) {
      assert.equal(typeof l.Value, 'number');
      assert.equal(typeof l.Remaining, 'number');
      assert.equal(l.Unit, 'MINUTE');
    }
    const legacy = await trove(['limit-list']);
    assert.match(legacy.stdout, /"verb": "ABSOLUTE"/);
    assert.deepEqual(lastJson(legacy.stdout).map((l: any) => l.verb).sort(), ['DELETE', 'GET', 'POST', 'POST', 'PUT']);
  });

  test('openstack database quota show (member by id, admin by name), quota update (admin)', { timeout: stepMs }, async () => {
    const quotas = await osJson(member, ['database', 'quota', 'show', projectId]);
    const instances = quotas.find((q: any) => q.Resource === 'instances');
    assert.ok(instances, JSON.stringify(quotas));
    assert.equal(instances['In Use'], 1);
    assert.equal(typeof instances.Limit, 'number');
    const byName = await osJson(admin, ['database', 'quota', 'show', member.project]);
    assert.deepEqual(byName, quotas);

    assert.deepEqual(await osJson(admin, ['database', 'quota', 'update', projectId, 'instances', '20']), { instances: 20 });
    const raised = await osJson(member, ['database', 'quota', 'show', projectId]);
    assert.equal(raised.find((q: any) => q.Resource === 'instances').Limit, 20);
    const refused = await openstack(member, ['database', 'quota', 'update', projectId, 'instances', '30']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /HTTP 401/);
  });

  test('admin: openstack database instance list --all-projects (a member is refused)', { timeout: stepMs }, async () => {
    const all = await osJson(admin, ['database', 'instance', 'list', '--all-projects']);
    const mine = all.find((i: any) => i.ID === instanceId);
    assert.ok(mine, JSON.stringify(all));
    assert.equal(mine['Tenant ID'], projectId);
    const refused = await openstack(member, ['database', 'instance', 'list', '--all-projects']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /admin privileges.*HTTP 401/s);
  });

  test('member: openstack database instance delete, until it is gone', { timeout: stepMs }, async () => {
    await os(member, ['database', 'instance', 'delete', instanceName]);
    const gone = await eventually(
      'the instance to disappear',
      () => openstack(member, ['database', 'instance', 'show', instanceId, '-f', 'json']),
      (r) => r.code !== 0,
      waitMs,
    );
    assert.match(gone.stderr, /No instance with a name or ID of '[0-9a-f-]{36}' exists/);
    assert.deepEqual(lastJson((await trove(['list'])).stdout), []);
    assert.match(await pgRefuses('app', appPassword, 'app'), /ECONNREFUSED|connect/i);
  });

  test('no password reached the log of coffer serve', async () => {
    const log = await readFile(join(run.dataDir.path, 'coffer.log'), 'utf8');
    assert.ok(log.length > 0, 'coffer serve logs to its data directory');
    for (const password of passwordsSeen) assert.ok(!log.includes(password), 'a password is in coffer.log');
  });
});
