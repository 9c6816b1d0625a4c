// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
// test-long (minutes: each openstack command starts Python)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { describeRun, lastJson, openstack, troveCli, type ClientResult, type Credentials } from '../support/openstack-clients.js';
import { eventually } from '../support/wait.js';
import { startServe, type ServeRun } from './serve-run.js';

// Trove's guest logs through Debian's `openstack database log list / show / set`, against a real
// `coffer serve` (with its default local backup storage) and a real PostgreSQL: the general log
// turned on takes the tenant's statements, and a publish stores them.

const adminPassword = 'Logs-admin-pass-1234';
const memberPassword = 'Logs-member-pass-1234';
const appPassword = 'Logs-app-pass-1234';
const addressPool = '127.84.5.0/24';
const instanceName = 'logs-pg';
const waitMs = 120_000;
/** a guard against a hung step, not a measure */
const stepMs = 600_000;

let run: ServeRun;
let admin: Credentials;
let member: Credentials;
let instanceAddress = '';
let instanceId = '';

before(async () => {
  run = await startServe('coffer-e2e-logs', adminPassword, ['--address-pool', addressPool, '--rate-limit', '100000']);
  const authUrl = `${run.baseUrl}/identity/v3`;
  admin = { authUrl, user: 'admin', password: adminPassword, project: 'admin' };
  member = { authUrl, user: 'logs-member', password: memberPassword, project: 'logs-project' };
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

async function tenantQuery(text: string): Promise<void> {
  const client = new pg.Client({ host: instanceAddress, port: 5432, user: 'app', password: appPassword, database: 'app' });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

describe('guest logs through the OpenStack client', { concurrency: 1 }, () => {
  test('admin makes a project and a member; the member creates a PostgreSQL instance', { timeout: stepMs }, async () => {
    await os(admin, ['project', 'create', member.project]);
    await os(admin, ['user', 'create', '--project', member.project, '--password', memberPassword, member.user]);
    await os(admin, ['role', 'add', '--project', member.project, '--user', member.user, 'member']);
    const version = (await osJson(member, ['datastore', 'version', 'list', 'postgresql']))[0].Name;
    const created = await osJson(member, [
      'database', 'instance', 'create', instanceName,
      '--flavor', 'm1.small', '--size', '1',
      '--datastore', 'postgresql', '--datastore-version', version,
      '--databases', 'app', '--users', `app:${appPassword}`,
    ]);
    const view = await eventually(
      'ACTIVE/HEALTHY after create',
      () => osJson(member, ['database', 'instance', 'show', created.id]),
      (v: any) => v.status === 'ACTIVE' && v.operating_status === 'HEALTHY',
      waitMs,
    );
    instanceAddress = view.addresses?.[0]?.address ?? view.ip;
    instanceId = created.id;
  });

  test('openstack database log list: the general log, off, nothing stored', { timeout: stepMs }, async () => {
    const logs = await osJson(member, ['database', 'log', 'list', instanceName]);
    assert.equal(logs.length, 1, JSON.stringify(logs));
    assert.equal(logs[0].Name, 'general');
    assert.equal(logs[0].Type, 'USER');
    assert.equal(logs[0].Status, 'Disabled');
  });

  test('openstack database log set --enable, then --publish: the statements are stored', { timeout: stepMs }, async () => {
    const enabled = await osJson(member, ['database', 'log', 'set', '--enable', instanceName, 'general']);
    assert.equal(enabled.status, 'Enabled', JSON.stringify(enabled));
    await tenantQuery("SELECT 'e2e-log-marker'");
    const published = await osJson(member, ['database', 'log', 'set', '--publish', instanceName, 'general']);
    assert.equal(published.status, 'Published', JSON.stringify(published));
    assert.ok(Number(published.published) > 0);
    assert.equal(published.container, 'database_logs');
    const shown = await osJson(member, ['database', 'log', 'show', instanceName, 'general']);
    assert.equal(shown.status, 'Published');
    assert.equal(shown.prefix, published.prefix);
    // read back through Coffer's extension, as `coffer logs` does
    const token = await osJson(member, ['token', 'issue']);
    const res = await fetch(`${run.baseUrl}/v1.0/${token.project_id}/instances/${instanceId}/log/general`, { headers: { 'x-auth-token': token.id } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { contents: { text: string } };
    assert.match(body.contents.text, /e2e-log-marker/);
  });

  test('enable with disable, and a log the member may not see, are refused', { timeout: stepMs }, async () => {
    const both = await openstack(member, ['database', 'log', 'set', '--enable', '--disable', instanceName, 'general']);
    assert.notEqual(both.code, 0);
    const hidden = await openstack(member, ['database', 'log', 'show', instanceName, 'guest']);
    assert.notEqual(hidden.code, 0);
    assert.match(hidden.stderr, /No log guest/);
  });

  test('the legacy trove CLI: log-list and log-show', { timeout: stepMs }, async () => {
    const listed = await troveCli(member, ['log-list', instanceName]);
    assert.equal(listed.code, 0, describeRun(['trove', 'log-list'], listed));
    assert.deepEqual(lastJson<any[]>(listed.stdout).map((log) => log.name), ['general']);
    const shown = await troveCli(member, ['log-show', instanceName, 'general']);
    assert.equal(shown.code, 0, describeRun(['trove', 'log-show'], shown));
    assert.equal(lastJson<any>(shown.stdout).status, 'Published');
  });

  test('openstack database log set --discard --disable: nothing stored, off again', { timeout: stepMs }, async () => {
    const discarded = await osJson(member, ['database', 'log', 'set', '--discard', '--disable', instanceName, 'general']);
    assert.equal(discarded.status, 'Disabled');
    assert.equal(Number(discarded.published), 0);
    assert.equal(discarded.container, 'None');
  });
});
