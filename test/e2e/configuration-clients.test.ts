// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
// test-long (minutes: each openstack command starts Python)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { describeRun, lastJson, openstack, troveCli, type ClientResult, type Credentials } from '../support/openstack-clients.js';
import { eventually } from '../support/wait.js';
import { startServe, type ServeRun } from './serve-run.js';

// Configuration groups through Trove's own clients, against a real `coffer serve` and a real
// PostgreSQL: Debian's `openstack database configuration …` and `trove configuration-*`, with
// each change read back from the engine with SHOW. The steps share one instance and run in order.

const adminPassword = 'Config-admin-pass-1234';
const memberPassword = 'Config-member-pass-1234';
const appPassword = 'Config-app-pass-1234';
const addressPool = '127.98.0.0/16';
const instanceName = 'config-pg';
const waitMs = 120_000;
/** a guard against a hung step, not a measure */
const stepMs = 600_000;

let run: ServeRun;
let admin: Credentials;
let member: Credentials;
let version = '';
let groupId = '';
let instanceId = '';
let instanceAddress = '';

before(async () => {
  run = await startServe('coffer-e2e-config', adminPassword, ['--address-pool', addressPool, '--rate-limit', '100000']);
  const authUrl = `${run.baseUrl}/identity/v3`;
  admin = { authUrl, user: 'admin', password: adminPassword, project: 'admin' };
  member = { authUrl, user: 'config-member', password: memberPassword, project: 'config-project' };
});

after(async () => {
  await run?.stop();
});

async function os(c: Credentials, args: string[]): Promise<ClientResult> {
  const r = await openstack(c, args);
  assert.equal(r.code, 0, describeRun(['openstack', ...args], r));
  return r;
}

async function osJson<T = any>(c: Credentials, args: string[]): Promise<T> {
  return lastJson<T>((await os(c, [...args, '-f', 'json'])).stdout);
}

async function trove(args: string[]): Promise<ClientResult> {
  const r = await troveCli(member, args);
  assert.equal(r.code, 0, describeRun(['trove', ...args], r));
  return r;
}

function waitForInstance(what: string, ok: (view: any) => boolean): Promise<any> {
  return eventually(
    what,
    async () => {
      const view = await osJson(member, ['database', 'instance', 'show', instanceId]);
      assert.notEqual(view.status, 'ERROR', `instance went to ERROR while waiting for ${what}: ${JSON.stringify(view)}`);
      return view;
    },
    ok,
    waitMs,
  );
}

const healthy = (view: any) => view.status === 'ACTIVE' && view.operating_status === 'HEALTHY';

/** the running value of `name`, as the tenant's own session sees it */
async function show(name: string): Promise<string> {
  const client = new pg.Client({ host: instanceAddress, port: 5432, user: 'app', password: appPassword, database: 'app' });
  await client.connect();
  try {
    return (await client.query(`SHOW ${name}`)).rows[0][name];
  } finally {
    await client.end();
  }
}

describe('configuration groups through the OpenStack clients', { concurrency: 1 }, () => {
  test('admin makes a project and a member', { timeout: stepMs }, async () => {
    await os(admin, ['project', 'create', member.project]);
    await os(admin, ['user', 'create', '--project', member.project, '--password', memberPassword, member.user]);
    await os(admin, ['role', 'add', '--project', member.project, '--user', member.user, 'member']);
  });

  test('openstack database configuration parameter list / show', { timeout: stepMs }, async () => {
    version = (await osJson(member, ['datastore', 'version', 'list', 'postgresql']))[0].Name;
    const parameters = await osJson(member, ['database', 'configuration', 'parameter', 'list', version, '--datastore', 'postgresql']);
    const byName = new Map(parameters.map((p: any) => [p.Name, p]));
    assert.ok(byName.has('statement_timeout') && byName.has('max_locks_per_transaction'), JSON.stringify(parameters));
    const timeout = await osJson(member, ['database', 'configuration', 'parameter', 'show', version, 'statement_timeout', '--datastore', 'postgresql']);
    assert.equal(timeout.restart_required, false);
    assert.equal(timeout.type, 'integer');
    const locks = await osJson(member, ['database', 'configuration', 'parameter', 'show', version, 'max_locks_per_transaction', '--datastore', 'postgresql']);
    assert.equal(locks.restart_required, true);
  });

  test('a value outside the rules is refused with Trove’s message, and nothing is made', { timeout: stepMs }, async () => {
    const r = await openstack(member, [
      'database', 'configuration', 'create', 'bad', '{"statement_timeout": "soon"}',
      '--datastore', 'postgresql', '--datastore-version', version,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /The value provided for the configuration parameter statement_timeout is not of type integer/);
    const unknown = await openstack(member, [
      'database', 'configuration', 'create', 'bad', '{"archive_command": "sh -c evil"}',
      '--datastore', 'postgresql', '--datastore-version', version,
    ]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /The configuration parameter archive_command is not supported for this datastore/);
    assert.deepEqual(await osJson(member, ['database', 'configuration', 'list']), []);
  });

  test('openstack database configuration create / show / list', { timeout: stepMs }, async () => {
    const created = await osJson(member, [
      'database', 'configuration', 'create', 'tuned', '{"statement_timeout": 5000}',
      '--datastore', 'postgresql', '--datastore-version', version, '--description', 'e2e',
    ]);
    groupId = created.id;
    assert.equal(created.name, 'tuned');
    const shown = await osJson(member, ['database', 'configuration', 'show', 'tuned']);
    assert.equal(shown.id, groupId);
    assert.deepEqual(JSON.parse(typeof shown.values === 'string' ? shown.values : JSON.stringify(shown.values)), { statement_timeout: 5000 });
    const listed = await osJson(member, ['database', 'configuration', 'list']);
    assert.deepEqual(listed.map((g: any) => g.Name), ['tuned']);
    const legacy = lastJson((await trove(['configuration-list'])).stdout);
    assert.deepEqual(legacy.map((g: any) => g.id), [groupId]);
  });

  test('openstack database instance create --configuration: the values are live from the first start', { timeout: stepMs }, async () => {
    const created = await osJson(member, [
      'database', 'instance', 'create', instanceName,
      '--flavor', 'm1.small', '--size', '1',
      '--datastore', 'postgresql', '--datastore-version', version,
      '--databases', 'app', '--users', `app:${appPassword}`,
      '--configuration', groupId,
    ]);
    instanceId = created.id;
    const view = await waitForInstance('ACTIVE/HEALTHY after create', healthy);
    instanceAddress = view.addresses?.[0]?.address ?? view.ip;
    assert.equal(view.configuration, groupId);
    assert.equal(await show('statement_timeout'), '5s');
    const instances = await osJson(member, ['database', 'configuration', 'instances', 'tuned']);
    assert.deepEqual(instances.map((i: any) => i.ID), [instanceId]);
    const defaults = await osJson(member, ['database', 'configuration', 'default', instanceName]);
    assert.equal(String(defaults.statement_timeout), '5000');
  });

  test('a group with instances cannot be deleted', { timeout: stepMs }, async () => {
    const r = await openstack(member, ['database', 'configuration', 'delete', 'tuned']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot be deleted if it is associated with one or more non-terminated instances/);
  });

  test('openstack database configuration detach: back to Coffer’s value, live', { timeout: stepMs }, async () => {
    await os(member, ['database', 'configuration', 'detach', instanceName]);
    await waitForInstance('detached', (v) => healthy(v) && v.configuration === undefined);
    assert.equal(await show('statement_timeout'), '0');
  });

  test('trove configuration-patch with a restart-only value, trove configuration-attach: RESTART_REQUIRED until a restart', { timeout: stepMs }, async () => {
    await trove(['configuration-patch', groupId, '{"max_locks_per_transaction": 128}']);
    const patched = lastJson((await trove(['configuration-show', groupId])).stdout);
    // troveclient prints the values as a JSON text inside its JSON
    const values = typeof patched.values === 'string' ? JSON.parse(patched.values) : patched.values;
    assert.deepEqual(values, { statement_timeout: 5000, max_locks_per_transaction: 128 });
    await trove(['configuration-attach', instanceId, groupId]);
    const pending = await waitForInstance('RESTART_REQUIRED after attach', (v) => v.status === 'RESTART_REQUIRED');
    assert.equal(pending.configuration, groupId);
    assert.equal(await show('statement_timeout'), '5s', 'the dynamic value is live at once');
    assert.equal(await show('max_locks_per_transaction'), '64', 'the restart-only one waits');
    await os(member, ['database', 'instance', 'restart', instanceName]);
    await waitForInstance('ACTIVE/HEALTHY after restart', healthy);
    const live = await eventually('the restarted engine', () => show('max_locks_per_transaction').catch(() => ''), (v) => v !== '');
    assert.equal(live, '128');
  });

  test('detach, then openstack database configuration delete; trove shows it gone', { timeout: stepMs }, async () => {
    await trove(['configuration-detach', instanceId]);
    await waitForInstance('detached', (v) => v.configuration === undefined);
    await os(member, ['database', 'configuration', 'delete', 'tuned']);
    const r = await troveCli(member, ['configuration-show', groupId]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Configuration group with ID .* could not be found|No configuration/i);
  });

  test('openstack database instance delete', { timeout: stepMs }, async () => {
    await os(member, ['database', 'instance', 'delete', instanceName]);
    await eventually(
      'the instance to disappear',
      () => openstack(member, ['database', 'instance', 'show', instanceId, '-f', 'json']),
      (r) => r.code !== 0,
      waitMs,
    );
  });
});
