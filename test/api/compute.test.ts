import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { after, before, describe, test } from 'node:test';
import { newUuid } from '../../src/common/ids.js';
import type { ServiceStatusName, TaskStatusName } from '../../src/db/index.js';
import { adminSession, json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';

// The compute view (issue 11): Nova's compute API v2.1, read-only, over the same instances as
// Trove's API, each instance's server being its engine process. Over HTTP against the real API
// and an SQLite state store; the instances are written the way the taskmanager leaves them.

let h: Harness;
let admin: Session;
let alice: Session;
let bob: Session;
let versionId: string;
let a1: Made;
let a2: Made;
let b1: Made;

const base = 'http://compute.example';

before(async () => {
  h = await startHarness({ publicUrl: base, heartbeatExpirySeconds: 60 });
  admin = await adminSession(h.app);
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
  versionId = (await seedDatastores(h.store)).activeVersionId;
  a1 = await makeInstance(alice, 'orders-primary');
  a2 = await makeInstance(alice, 'orders-analytics', { flavorId: '3' });
  b1 = await makeInstance(bob, 'orders-bob');
  // neither a deleted instance nor Coffer's own scratch instance is anyone's server
  const gone = await makeInstance(alice, 'orders-gone');
  await h.store.instances.markDeleted(gone.id, new Date());
  await makeInstance(alice, 'orders-verify-scratch', { internal: true });
});
after(() => h.close());

interface Made {
  id: string;
  name: string;
}

let clock = Date.parse('2030-01-01T00:00:00Z');

/** An instance of `s`'s project in the state it would be in: placed, with its guest's last report. */
async function makeInstance(
  s: Session,
  name: string,
  options: { task?: TaskStatusName; service?: ServiceStatusName | null; flavorId?: string; reportedAt?: Date; internal?: boolean } = {},
): Promise<Made> {
  const id = newUuid();
  // distinct creation times, so that the newest-first order is known
  clock += 1000;
  const created = new Date(clock);
  await h.store.instances.create({
    id,
    name,
    tenantId: s.projectId,
    flavorId: options.flavorId ?? '2',
    volumeSizeGb: 1,
    datastoreVersionId: versionId,
    taskStatus: options.task ?? 'NONE',
    taskDescription: '',
    taskStartTime: null,
    access: null,
    createdAt: created,
    updatedAt: created,
    ...(options.internal === true ? { internal: true } : {}),
  });
  await h.store.instances.update(id, { host: 'host-a', address: `127.96.0.${(clock / 1000) % 250}` });
  if (options.service !== null) {
    await h.store.serviceStatuses.set({ instanceId: id, status: options.service ?? 'HEALTHY', updatedAt: options.reportedAt ?? new Date() });
  }
  return { id, name };
}

function get(s: Session | undefined, url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return h.app.inject({ method: 'GET', url, headers: { ...(s === undefined ? {} : { 'x-auth-token': s.token }), ...headers } });
}

function expectFault(res: LightMyRequestResponse, status: number, fault: string, message: string | RegExp) {
  assert.equal(res.statusCode, status, res.body);
  const body = json(res);
  assert.deepEqual(Object.keys(body), [fault]);
  assert.equal(body[fault].code, status);
  if (typeof message === 'string') assert.equal(body[fault].message, message);
  else assert.match(body[fault].message, message);
}

const ids = (res: LightMyRequestResponse) => json(res).servers.map((s: { id: string }) => s.id);


describe('discovery', () => {
  test('GET /v2.1 is the version document, without a token, with the maximum microversion served', async () => {
    const res = await get(undefined, '/v2.1');
    assert.equal(res.statusCode, 200);
    assert.deepEqual(json(res), {
      version: {
        id: 'v2.1',
        status: 'CURRENT',
        version: '2.73',
        min_version: '2.1',
        updated: '2013-07-23T11:33:21Z',
        links: [
          { rel: 'self', href: `${base}/v2.1/` },
          { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' },
        ],
        'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
      },
    });
  });

  test('the catalog lists compute at /v2.1 and an image service', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/identity/v3/auth/tokens', headers: { 'x-auth-token': alice.token, 'x-subject-token': alice.token } });
    const catalog = json(res).token.catalog as { type: string; name: string; endpoints: { url: string; interface: string }[] }[];
    const compute = catalog.find((s) => s.type === 'compute');
    assert.equal(compute?.name, 'nova');
    assert.deepEqual(compute?.endpoints.map((e) => [e.interface, e.url]), [['public', `${base}/v2.1`], ['internal', `${base}/v2.1`], ['admin', `${base}/v2.1`]]);
    assert.equal(catalog.find((s) => s.type === 'image')?.endpoints[0]?.url, `${base}/image`);
  });

  test('the image service lists no images, to a token only', async () => {
    assert.equal((await get(undefined, '/image/v2/images')).statusCode, 401);
    const res = await get(alice, '/image/v2/images');
    assert.equal(res.statusCode, 200);
    assert.deepEqual(json(res).images, []);
  });
});

describe('authentication and the project in the URL', () => {
  test('no token or a bad one is 401 in Keystone shape, before anything is read', async () => {
    for (const s of [undefined, { ...alice, token: 'not-a-token' }]) {
      const res = await get(s, '/v2.1/servers');
      assert.equal(res.statusCode, 401);
      assert.deepEqual(json(res), { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
      assert.match(String(res.headers['www-authenticate']), /^Keystone uri=/);
    }
  });

  test("/v2.1/{project_id}/servers serves the token's project, with the project in the links", async () => {
    const res = await get(alice, `/v2.1/${alice.projectId}/servers`);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(ids(res), [a2.id, a1.id]);
    assert.deepEqual(json(res).servers[1].links, [
      { rel: 'self', href: `${base}/v2.1/${alice.projectId}/servers/${a1.id}` },
      { rel: 'bookmark', href: `${base}/${alice.projectId}/servers/${a1.id}` },
    ]);
  });

  test("another project's id in the URL is Nova's 400, admins included", async () => {
    for (const s of [alice, admin]) {
      const res = await get(s, `/v2.1/${bob.projectId}/servers/detail`);
      expectFault(res, 400, 'badRequest', `Malformed request URL: URL's project_id '${bob.projectId}' doesn't match Context's project_id '${s.projectId}'`);
    }
  });
});

describe('servers of a project', () => {
  test("a member's list is its project's servers, newest first, as id, name and links", async () => {
    const res = await get(alice, '/v2.1/servers');
    assert.equal(res.statusCode, 200);
    assert.deepEqual(json(res), {
      servers: [a2, a1].map((m) => ({
        id: m.id,
        name: m.name,
        links: [
          { rel: 'self', href: `${base}/v2.1/servers/${m.id}` },
          { rel: 'bookmark', href: `${base}/servers/${m.id}` },
        ],
      })),
    });
    assert.deepEqual(ids(await get(bob, '/v2.1/servers')), [b1.id]);
  });

  test("another project's server is 404 itemNotFound, as a missing one", async () => {
    expectFault(await get(bob, `/v2.1/servers/${a1.id}`), 404, 'itemNotFound', `Instance ${a1.id} could not be found.`);
    expectFault(await get(bob, `/v2.1/${bob.projectId}/servers/${a1.id}`), 404, 'itemNotFound', `Instance ${a1.id} could not be found.`);
    const missing = newUuid();
    expectFault(await get(alice, `/v2.1/servers/${missing}`), 404, 'itemNotFound', `Instance ${missing} could not be found.`);
  });

  test('a deleted instance and an internal one are no servers, even to an admin', async () => {
    const all = await h.store.instances.listAll({ tenantId: alice.projectId });
    const hidden = all.filter((i) => i.deleted || i.internal === true);
    assert.equal(hidden.length, 2);
    for (const i of hidden) expectFault(await get(admin, `/v2.1/servers/${i.id}`), 404, 'itemNotFound', `Instance ${i.id} could not be found.`);
    const everyone = ids(await get(admin, '/v2.1/servers?all_tenants=1'));
    for (const i of hidden) assert.ok(!everyone.includes(i.id));
  });

  test("the owner's detail: Nova's fields, the flavor by id before 2.47, no admin-only ones", async () => {
    const res = await get(alice, `/v2.1/servers/${a1.id}`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['openstack-api-version'], 'compute 2.1');
    assert.equal(res.headers['x-openstack-nova-api-version'], '2.1');
    const server = json(res).server;
    const row = (await h.store.instances.get(a1.id))!;
    assert.equal(server.id, a1.id);
    assert.equal(server.name, 'orders-primary');
    assert.equal(server.status, 'ACTIVE');
    assert.equal(server.tenant_id, alice.projectId);
    assert.deepEqual(server.metadata, {});
    assert.deepEqual(server.addresses, { private: [{ version: 4, addr: row.address, 'OS-EXT-IPS:type': 'fixed' }] });
    assert.deepEqual(server.flavor, { id: '2', links: [{ rel: 'bookmark', href: `${base}/flavors/2` }] });
    assert.equal(server.created, `${row.createdAt.toISOString().slice(0, 19)}Z`);
    assert.equal(server['OS-EXT-STS:vm_state'], 'active');
    assert.equal(server['OS-EXT-STS:power_state'], 1);
    assert.equal(server['OS-EXT-STS:task_state'], null);
    assert.equal(server.image, '');
    assert.match(server.hostId, /^[0-9a-f]{56}$/);
    // the host's hash differs per project, as Nova's hostId
    const other = json(await get(bob, `/v2.1/servers/${b1.id}`)).server;
    assert.notEqual(other.hostId, server.hostId);
    for (const key of Object.keys(server)) assert.doesNotMatch(key, /^OS-EXT-SRV-ATTR:|^host_status$/, key);
    assert.equal(server.locked, undefined, 'locked arrives with 2.9');
  });

  test('an admin sees the host of any project\'s server', async () => {
    const res = await get(admin, `/v2.1/servers/${b1.id}`, { 'openstack-api-version': 'compute 2.16' });
    const server = json(res).server;
    assert.equal(server['OS-EXT-SRV-ATTR:host'], 'host-a');
    assert.equal(server['OS-EXT-SRV-ATTR:hostname'], 'orders-bob');
    assert.equal(server.host_status, 'UP');
    assert.equal(server.locked, false);
  });
});

describe("Trove's admin views name the same server", () => {
  test('server_id of the instance detail and server.id of the management view are the server\'s id', async () => {
    const detail = json(await get(admin, `/v1.0/${admin.projectId}/mgmt/instances/${a1.id}`)).instance;
    assert.equal(detail.server_id, a1.id);
    assert.equal(detail.server.id, a1.id);
    assert.equal(detail.server.host, 'host-a');
    const server = json(await get(admin, `/v2.1/servers/${detail.server_id}`)).server;
    assert.deepEqual([server.id, server.name, server['OS-EXT-SRV-ATTR:host']], [a1.id, 'orders-primary', 'host-a']);
  });
});

describe('all_tenants', () => {
  test("is Nova's admin-only policy: 403 for a member, on the list and the detail", async () => {
    for (const [path, action] of [['/v2.1/servers?all_tenants=1', 'index'], ['/v2.1/servers/detail?all_tenants', 'detail']] as const) {
      expectFault(await get(alice, path), 403, 'forbidden', `Policy doesn't allow os_compute_api:servers:${action}:get_all_tenants to be performed.`);
    }
    // without all_tenants, tenant_id is ignored, as Nova does (lp:#1185290): the caller's own
    assert.deepEqual(ids(await get(alice, `/v2.1/servers?tenant_id=${bob.projectId}`)), [a2.id, a1.id]);
    assert.deepEqual(ids(await get(alice, `/v2.1/servers?project_id=${bob.projectId}`)), [a2.id, a1.id]);
    // all_tenants=0 is no request for every project
    assert.deepEqual(ids(await get(alice, '/v2.1/servers?all_tenants=false')), [a2.id, a1.id]);
  });

  test("gives an admin every project's servers, or one project's with tenant_id", async () => {
    const all = ids(await get(admin, '/v2.1/servers/detail?all_tenants=True'));
    for (const m of [a1, a2, b1]) assert.ok(all.includes(m.id), m.name);
    assert.deepEqual(ids(await get(admin, `/v2.1/servers?all_tenants=1&tenant_id=${bob.projectId}`)), [b1.id]);
    assert.deepEqual(ids(await get(admin, `/v2.1/servers?all_tenants=yes&project_id=${alice.projectId}`)), [a2.id, a1.id]);
    // without it an admin sees the admin project's own servers only
    for (const id of ids(await get(admin, '/v2.1/servers'))) assert.ok(![a1.id, a2.id, b1.id].includes(id));
  });

  test('a value that is no boolean is 400', async () => {
    expectFault(await get(admin, '/v2.1/servers?all_tenants=maybe'), 400, 'badRequest', /^Invalid input received: Unrecognized value 'maybe'/);
  });
});

describe('filters and pages', () => {
  test('name is a regular expression searched in the name, as Nova', async () => {
    assert.deepEqual(ids(await get(alice, '/v2.1/servers?name=primary')), [a1.id]);
    assert.deepEqual(ids(await get(alice, `/v2.1/servers?name=${encodeURIComponent('^orders-(p|a)')}`)), [a2.id, a1.id]);
    assert.deepEqual(ids(await get(alice, `/v2.1/servers/detail?name=${encodeURIComponent('^primary')}`)), []);
    // another project's server never matches
    assert.deepEqual(ids(await get(alice, '/v2.1/servers?name=bob')), []);
  });

  test('a malformed pattern is 400, and a catastrophically backtracking one is cut off with 400', async () => {
    expectFault(await get(alice, `/v2.1/servers?name=${encodeURIComponent('(unclosed')}`), 400, 'badRequest', /not a valid regular expression/);
    await makeInstance(alice, `${'a'.repeat(60)}!`);
    const started = Date.now();
    const res = await get(alice, `/v2.1/servers?name=${encodeURIComponent('^(a+)+$')}`);
    expectFault(res, 400, 'badRequest', /takes too long/);
    assert.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`);
  });

  test('status and flavor filter the list', async () => {
    const stopped = await makeInstance(alice, 'stopped-one', { task: 'STOPPED', service: 'SHUTDOWN' });
    assert.deepEqual(ids(await get(alice, '/v2.1/servers?status=SHUTOFF')), [stopped.id]);
    assert.deepEqual(ids(await get(alice, '/v2.1/servers/detail?status=shutoff')), [stopped.id]);
    // a status Nova does not know lists nothing, and is 400 from 2.38
    assert.deepEqual(ids(await get(alice, '/v2.1/servers?status=NOSUCH')), []);
    expectFault(await get(alice, '/v2.1/servers?status=NOSUCH', { 'openstack-api-version': 'compute 2.38' }), 400, 'badRequest', 'Invalid status value');
    assert.deepEqual(ids(await get(alice, '/v2.1/servers?status=SUSPENDED', { 'openstack-api-version': 'compute 2.38' })), []);
    assert.deepEqual(ids(await get(alice, '/v2.1/servers?flavor=3')), [a2.id]);
  });

  test('limit and marker page the list, with servers_links while a page is full', async () => {
    const first = await get(alice, '/v2.1/servers?limit=1&name=orders');
    assert.deepEqual(ids(first), [a2.id]);
    const next = json(first).servers_links[0];
    assert.equal(next.rel, 'next');
    const url = new URL(next.href);
    assert.equal(url.pathname, '/v2.1/servers');
    assert.equal(url.searchParams.get('marker'), a2.id);
    const second = await get(alice, `${url.pathname}${url.search}`);
    assert.deepEqual(ids(second), [a1.id]);
    const third = await get(alice, `/v2.1/servers?limit=1&name=orders&marker=${a1.id}`);
    assert.deepEqual(json(third), { servers: [] });
    expectFault(await get(alice, '/v2.1/servers?marker=nope'), 400, 'badRequest', 'marker [nope] not found');
    expectFault(await get(alice, '/v2.1/servers?limit=-1'), 400, 'badRequest', 'limit param must be positive');
    expectFault(await get(alice, '/v2.1/servers?limit=x'), 400, 'badRequest', 'limit param must be an integer');
  });
});

describe('status, as Nova reports a server', () => {
  const cases: [string, TaskStatusName, ServiceStatusName | null, string, string, string | null][] = [
    ['running', 'NONE', 'HEALTHY', 'ACTIVE', 'active', null],
    ['being built', 'BUILDING', 'BUILDING', 'BUILD', 'building', 'spawning'],
    ['rebooting', 'REBOOTING', 'HEALTHY', 'REBOOT', 'active', 'rebooting'],
    ['resizing', 'RESIZING', 'HEALTHY', 'RESIZE', 'active', 'resize_migrating'],
    ['stopped by its owner', 'STOPPED', 'SHUTDOWN', 'SHUTOFF', 'stopped', null],
    ['being stopped', 'STOPPING', 'HEALTHY', 'ACTIVE', 'active', 'powering-off'],
    ['being started', 'STARTING', 'SHUTDOWN', 'SHUTOFF', 'stopped', 'powering-on'],
    ['crashed', 'NONE', 'CRASHED', 'SHUTOFF', 'stopped', null],
    ['failed to build', 'BUILDING_ERROR_SERVER', 'FAILED', 'ERROR', 'error', null],
    ['with no report', 'NONE', null, 'ERROR', 'error', null],
    ['being deleted', 'DELETING', 'HEALTHY', 'ACTIVE', 'active', 'deleting'],
  ];
  for (const [what, task, service, status, vmState, taskState] of cases) {
    test(`an instance ${what} is ${status}`, async () => {
      const made = await makeInstance(alice, `state-${task}`, { task, service });
      const server = json(await get(alice, `/v2.1/servers/${made.id}`)).server;
      assert.deepEqual([server.status, server['OS-EXT-STS:vm_state'], server['OS-EXT-STS:task_state']], [status, vmState, taskState]);
    });
  }

  test('a server in ERROR shows its fault, with details to admins only', async () => {
    const made = await makeInstance(alice, 'broken', { task: 'BUILDING_ERROR_SERVER', service: 'FAILED' });
    await h.store.faults.record({ id: newUuid(), instanceId: made.id, message: 'engine did not start', details: 'trace here', createdAt: new Date() });
    const own = json(await get(alice, `/v2.1/servers/${made.id}`)).server;
    assert.equal(own.fault.message, 'engine did not start');
    assert.equal(own.fault.code, 500);
    assert.equal(own.fault.details, undefined);
    assert.equal(json(await get(admin, `/v2.1/servers/${made.id}`)).server.fault.details, 'trace here');
  });

  test('a guest silent for longer than the heartbeat expiry leaves host_status UNKNOWN (2.16, admins)', async () => {
    const made = await makeInstance(alice, 'silent', { reportedAt: new Date(Date.now() - 120_000) });
    const server = json(await get(admin, `/v2.1/servers/${made.id}`, { 'x-openstack-nova-api-version': '2.16' })).server;
    assert.equal(server.host_status, 'UNKNOWN');
    assert.equal(server.status, 'ACTIVE');
  });
});

describe('microversions', () => {
  test('2.47 embeds the flavor the server has now: a resize shows at once', async () => {
    const made = await makeInstance(alice, 'resized', { flavorId: '1' });
    const at = (v: string) => get(alice, `/v2.1/servers/${made.id}`, { 'openstack-api-version': `compute ${v}` });
    const before = json(await at('2.47')).server.flavor;
    assert.deepEqual(before, { vcpus: 1, ram: 256, disk: 0, ephemeral: 0, swap: 0, original_name: 'm1.tiny', extra_specs: {} });
    await h.store.instances.update(made.id, { flavorId: '4' });
    const res = await at('2.47');
    assert.equal(res.headers['openstack-api-version'], 'compute 2.47');
    assert.equal(json(res).server.flavor.original_name, 'm1.large');
    assert.equal(json(res).server.flavor.ram, 2048);
    assert.equal(json(await at('2.46')).server.flavor.id, '4');
    // the detail list embeds it too
    const listed = json(await get(alice, '/v2.1/servers/detail?name=^resized$', { 'x-openstack-nova-api-version': '2.47' })).servers;
    assert.equal(listed[0].flavor.original_name, 'm1.large');
  });

  test('latest is 2.73, the new header wins over the legacy one, and later fields arrive in order', async () => {
    const res = await get(alice, `/v2.1/servers/${a1.id}`, { 'openstack-api-version': 'compute latest', 'x-openstack-nova-api-version': '2.5' });
    assert.equal(res.headers['openstack-api-version'], 'compute 2.73');
    assert.match(String(res.headers.vary), /OpenStack-API-Version/);
    const server = json(res).server;
    assert.deepEqual([server.locked, server.description, server.tags, server.server_groups, server.locked_reason], [false, null, [], [], null]);
    // show has server_groups at 2.71, the detail list has not
    const listed = json(await get(alice, '/v2.1/servers/detail', { 'openstack-api-version': 'compute 2.73' })).servers[0];
    assert.equal(listed.server_groups, undefined);
    assert.equal(listed.locked_reason, null);
  });

  test('a version outside 2.1..2.73 is 406 computeFault; a malformed one 400', async () => {
    for (const v of ['2.74', '2.0', '3.0']) {
      expectFault(await get(alice, '/v2.1/servers', { 'openstack-api-version': `compute ${v}` }), 406, 'computeFault', `Version ${v} is not supported by the API. Minimum is 2.1 and maximum is 2.73.`);
    }
    expectFault(await get(alice, '/v2.1/servers', { 'x-openstack-nova-api-version': 'two' }), 400, 'badRequest', /is of invalid format/);
    // a header for another service is not the compute version
    assert.equal((await get(alice, '/v2.1/servers', { 'openstack-api-version': 'volume 3.0' })).headers['openstack-api-version'], 'compute 2.1');
  });
});

describe('flavors', () => {
  test('list and detail in flavor id order, with Nova fields', async () => {
    const list = json(await get(alice, '/v2.1/flavors'));
    assert.deepEqual(list.flavors.map((f: { id: string }) => f.id), ['1', '2', '3', '4', '5']);
    assert.deepEqual(list.flavors[0], {
      id: '1',
      name: 'm1.tiny',
      links: [
        { rel: 'self', href: `${base}/v2.1/flavors/1` },
        { rel: 'bookmark', href: `${base}/flavors/1` },
      ],
    });
    const detail = json(await get(bob, `/v2.1/${bob.projectId}/flavors/detail?minRam=1024`)).flavors;
    assert.deepEqual(detail.map((f: { id: string }) => f.id), ['3', '4', '5']);
    assert.deepEqual(detail[1], {
      id: '4',
      name: 'm1.large',
      ram: 2048,
      disk: 0,
      vcpus: 2,
      'OS-FLV-EXT-DATA:ephemeral': 0,
      'OS-FLV-DISABLED:disabled': false,
      swap: '',
      rxtx_factor: 1.0,
      'os-flavor-access:is_public': true,
      links: [
        { rel: 'self', href: `${base}/v2.1/${bob.projectId}/flavors/4` },
        { rel: 'bookmark', href: `${base}/${bob.projectId}/flavors/4` },
      ],
    });
  });

  test('show, extra specs, 2.55/2.61 fields, and 404 for an unknown flavor', async () => {
    const res = await get(alice, '/v2.1/flavors/2', { 'openstack-api-version': 'compute 2.61' });
    assert.equal(res.statusCode, 200);
    const flavor = json(res).flavor;
    assert.deepEqual([flavor.name, flavor.ram, flavor.description, flavor.extra_specs], ['m1.small', 512, null, {}]);
    assert.deepEqual(json(await get(alice, '/v2.1/flavors/2/os-extra_specs')), { extra_specs: {} });
    expectFault(await get(alice, '/v2.1/flavors/99'), 404, 'itemNotFound', 'Flavor 99 could not be found.');
    expectFault(await get(alice, '/v2.1/flavors/99/os-extra_specs'), 404, 'itemNotFound', 'Flavor 99 could not be found.');
    expectFault(await get(alice, '/v2.1/flavors?minRam=lots'), 400, 'badRequest', 'Invalid minRam filter [lots]');
    const paged = json(await get(alice, '/v2.1/flavors?limit=2&marker=2'));
    assert.deepEqual(paged.flavors.map((f: { id: string }) => f.id), ['3', '4']);
    assert.equal(new URL(paged.flavors_links[0].href).searchParams.get('marker'), '4');
  });
});
