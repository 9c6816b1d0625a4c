// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
// test-long (minutes: a PostgreSQL instance is built and resized, and every openstack command starts Python)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { describeRun, lastJson, openstack, type ClientResult, type Credentials } from '../support/openstack-clients.js';
import { eventually } from '../support/wait.js';
import { startServe, type ServeRun } from './serve-run.js';

// The compute view (issue 11) through Debian's real python3-openstackclient (OSC 6.0 with
// novaclient 18.1): `openstack server list`, `server show` and `flavor list` against a real
// `coffer serve`, driven with nothing but OS_* variables. A member builds a PostgreSQL instance
// through `openstack database instance create`; its server is listed and shown to its project
// only, to an admin with --all-projects, and shows the new flavor after a resize.

const adminPassword = 'Compute-admin-pass-1234';
const memberPassword = 'Compute-member-pass-1234';
const outsiderPassword = 'Compute-outsider-pass-1234';
const addressPool = '127.83.11.0/24';
const instanceName = 'compute-pg';
const waitMs = 180_000;
/** a guard against a hung step, not a measure */
const stepMs = 600_000;

let run: ServeRun;
let admin: Credentials;
let member: Credentials;
let outsider: Credentials;
let projectId = '';
let instanceId = '';
let instanceAddress = '';

before(async () => {
  run = await startServe('coffer-e2e-compute', adminPassword, ['--address-pool', addressPool, '--warm-pool-size', '0', '--rate-limit', '100000']);
  const authUrl = `${run.baseUrl}/identity/v3`;
  admin = { authUrl, user: 'admin', password: adminPassword, project: 'admin' };
  member = { authUrl, user: 'compute-member', password: memberPassword, project: 'compute-project' };
  outsider = { authUrl, user: 'compute-outsider', password: outsiderPassword, project: 'compute-other' };
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

describe('openstack server and flavor commands against coffer serve', { concurrency: 1 }, () => {
  test('admin makes two projects with a member each; the member builds a PostgreSQL instance', { timeout: stepMs }, async () => {
    for (const c of [member, outsider]) {
      const project = await osJson(admin, ['project', 'create', c.project]);
      if (c === member) projectId = project.id;
      await os(admin, ['user', 'create', '--project', c.project, '--password', c.password, c.user]);
      await os(admin, ['role', 'add', '--project', c.project, '--user', c.user, 'member']);
    }
    const versions = await osJson(member, ['datastore', 'version', 'list', 'postgresql']);
    const created = await osJson(member, [
      'database', 'instance', 'create', instanceName,
      '--flavor', 'm1.small', '--size', '1',
      '--datastore', 'postgresql', '--datastore-version', versions[0].Name,
    ]);
    instanceId = created.id;
    const view = await waitForInstance('ACTIVE/HEALTHY after create', healthy);
    instanceAddress = view.addresses?.[0]?.address ?? view.ip;
    assert.match(instanceAddress, /^127\.83\.11\.\d+$/);
  });

  test('the catalog lists compute; openstack flavor list shows the flavors', { timeout: stepMs }, async () => {
    const services = await osJson(member, ['catalog', 'list']);
    const compute = services.find((s: any) => s.Type === 'compute');
    assert.ok(compute, JSON.stringify(services));
    assert.match(JSON.stringify(compute.Endpoints), /\/v2\.1/);
    const flavors = await osJson(member, ['flavor', 'list']);
    const small = flavors.find((f: any) => f.Name === 'm1.small');
    assert.deepEqual([small?.ID, small?.RAM, small?.VCPUs, small?.['Is Public']], ['2', 512, 1, true], JSON.stringify(flavors));
    assert.deepEqual(flavors.map((f: any) => f.Name).sort(), ['m1.large', 'm1.medium', 'm1.small', 'm1.tiny', 'm1.xlarge']);
  });

  test('member: openstack server list and server show find the instance\'s server', { timeout: stepMs }, async () => {
    const servers = await osJson(member, ['server', 'list']);
    assert.deepEqual(
      servers.map((s: any) => [s.ID, s.Name, s.Status, s.Flavor]),
      [[instanceId, instanceName, 'ACTIVE', 'm1.small']],
    );
    assert.deepEqual(servers[0].Networks, { private: [instanceAddress] });
    for (const ref of [instanceId, instanceName]) {
      const shown = await osJson(member, ['server', 'show', ref]);
      assert.equal(shown.id, instanceId);
      assert.equal(shown.status, 'ACTIVE');
      assert.equal(shown.project_id, projectId);
      assert.equal(shown.flavor, 'm1.small (2)');
      assert.deepEqual(shown.addresses, { private: [instanceAddress] });
      assert.equal(shown['OS-EXT-STS:vm_state'], 'active');
      assert.equal(shown['OS-EXT-SRV-ATTR:host'], undefined, 'the host is for admins');
    }
  });

  test('another project sees no server and cannot show it; --all-projects is refused to it', { timeout: stepMs }, async () => {
    assert.deepEqual(await osJson(outsider, ['server', 'list']), []);
    const shown = await openstack(outsider, ['server', 'show', instanceId]);
    assert.notEqual(shown.code, 0);
    assert.match(shown.stderr, /No server with a name or ID of/);
    const all = await openstack(outsider, ['server', 'list', '--all-projects']);
    assert.notEqual(all.code, 0);
    assert.match(all.stderr, /get_all_tenants.*HTTP 403/s);
  });

  test('admin: server list --all-projects (and --project) finds it, server show names its host', { timeout: stepMs }, async () => {
    const all = await osJson(admin, ['server', 'list', '--all-projects']);
    assert.ok(all.some((s: any) => s.ID === instanceId), JSON.stringify(all));
    const one = await osJson(admin, ['server', 'list', '--all-projects', '--project', member.project]);
    assert.deepEqual(one.map((s: any) => s.ID), [instanceId]);
    assert.deepEqual(await osJson(admin, ['server', 'list']), [], 'without --all-projects an admin sees its own project');
    const shown = await osJson(admin, ['server', 'show', instanceId]);
    assert.match(String(shown['OS-EXT-SRV-ATTR:host']), /\S/);
  });

  test('after openstack database instance resize flavor, the server shows the new flavor (2.47 embeds it)', { timeout: stepMs }, async () => {
    await os(member, ['database', 'instance', 'resize', 'flavor', instanceName, 'm1.medium']);
    await waitForInstance('flavor 3, ACTIVE/HEALTHY', (v) => v.flavor === '3' && healthy(v));
    assert.equal((await osJson(member, ['server', 'show', instanceId])).flavor, 'm1.medium (3)');
    const embedded = await osJson(member, ['--os-compute-api-version', '2.47', 'server', 'show', instanceId]);
    assert.deepEqual([embedded.flavor.original_name, embedded.flavor.ram], ['m1.medium', 1024], JSON.stringify(embedded.flavor));
    const listed = await osJson(member, ['server', 'list', '--flavor', '3']);
    assert.deepEqual(listed.map((s: any) => s.ID), [instanceId]);
  });

  test('once the instance is deleted, its server is gone', { timeout: stepMs }, async () => {
    await os(member, ['database', 'instance', 'delete', instanceName]);
    const gone = await eventually('the server to disappear', () => openstack(member, ['server', 'show', instanceId]), (r) => r.code !== 0, waitMs);
    assert.match(gone.stderr, /No server with a name or ID of/);
    assert.deepEqual(await osJson(member, ['server', 'list']), []);
  });
});
