import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { guestContract, guestTopic, serveRpc } from '../../src/bus/index.js';
import { newUuid } from '../../src/common/ids.js';
import type { ServiceStatusName } from '../../src/db/index.js';
import { adminSession, json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';
import { fakeGuestHandlers } from '../support/fake-guest.js';
import { localVolumeType } from '../../src/api/trove/volume-types.js';
import { until } from '../support/wait.js';

let h: Harness;
let admin: Session;
let alice: Session;
let bob: Session;
let seeded: Awaited<ReturnType<typeof seedDatastores>>;

before(async () => {
  h = await startHarness();
  admin = await adminSession(h.app);
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
  seeded = await seedDatastores(h.store);
});
after(() => h.close());

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });
const url = (s: Session, path = '') => `/v1.0/${s.projectId}/instances${path}`;

function body(overrides: Record<string, unknown> = {}) {
  return {
    instance: {
      name: 'orders-db',
      flavorRef: '2',
      volume: { size: 2 },
      datastore: { type: 'postgresql', version: '15' },
      databases: [{ name: 'orders' }],
      users: [{ name: 'app', password: 'app-secret', databases: [{ name: 'orders' }] }],
      ...overrides,
    },
  };
}

function create(s: Session, payload: unknown) {
  return h.app.inject({ method: 'POST', url: url(s), headers: headers(s), payload: payload as object });
}

/** An instance row written straight into the store, for list/show/delete tests. */
async function insertInstance(
  s: Session,
  options: { name?: string; createdAt?: Date; service?: ServiceStatusName; heartbeatAt?: Date; task?: 'NONE' | 'BUILDING'; address?: string; port?: number } = {},
) {
  const id = newUuid();
  const createdAt = options.createdAt ?? new Date();
  await h.store.instances.create({
    id,
    name: options.name ?? `db-${id.slice(0, 6)}`,
    tenantId: s.projectId,
    flavorId: '1',
    volumeSizeGb: 1,
    datastoreVersionId: seeded.activeVersionId,
    taskStatus: options.task ?? 'NONE',
    taskDescription: '',
    taskStartTime: null,
    access: null,
    createdAt,
    updatedAt: createdAt,
  });
  if (options.address !== undefined) {
    await h.store.instances.update(id, { host: 'host-a', address: options.address, port: options.port ?? 5432 });
  }
  await h.store.serviceStatuses.set({ instanceId: id, status: options.service ?? 'HEALTHY', updatedAt: options.heartbeatAt ?? new Date() });
  return id;
}

describe('POST /instances', () => {
  test('creates the instance, its service status and task in the store, casts runTask, answers 200 BUILD', async () => {
    const castsBefore = h.casts.length;
    const res = await create(alice, body({ access: { is_public: false, allowed_cidrs: ['10.0.0.0/8'] }, unknown_key: 1 }));
    assert.equal(res.statusCode, 200, res.body);
    const view = json(res).instance;
    assert.equal(view.status, 'BUILD');
    assert.equal(view.operating_status, '');
    assert.equal(view.name, 'orders-db');
    assert.deepEqual(view.volume, { size: 2 });
    assert.deepEqual(view.datastore, { type: 'postgresql', version: '15', version_number: '15.19' });
    assert.deepEqual(view.flavor, {
      id: '2',
      links: [
        { href: `https://db.example/v1.0/${alice.projectId}/flavors/2`, rel: 'self' },
        { href: 'https://db.example/flavors/2', rel: 'bookmark' },
      ],
    });
    assert.deepEqual(view.access, { is_public: false, allowed_cidrs: ['10.0.0.0/8'] });
    assert.doesNotMatch(res.body, /app-secret/);

    const row = await h.store.instances.get(view.id);
    assert.equal(row?.taskStatus, 'BUILDING');
    assert.equal(row?.tenantId, alice.projectId);
    assert.equal(row?.volumeSizeGb, 2);
    assert.equal(row?.datastoreVersionId, seeded.activeVersionId);
    assert.equal((await h.store.serviceStatuses.get(view.id))?.status, 'NEW');
    const task = await h.store.tasks.activeForInstance(view.id);
    assert.equal(task?.kind, 'create_instance');
    assert.equal(task?.step, 'start');
    assert.equal(task?.state, 'pending');
    assert.deepEqual(task?.payload, {
      databases: [{ name: 'orders' }],
      users: [{ name: 'app', password: 'app-secret', host: '%', databases: [{ name: 'orders' }] }],
      access: { isPublic: false, allowedCidrs: ['10.0.0.0/8'] },
      requestId: res.headers['x-openstack-request-id'],
    });

    await until('the create cast', () => h.casts.length === castsBefore + 1);
    const cast = h.casts.at(-1)!;
    assert.equal(cast.taskId, task?.id);
    assert.equal(cast.instanceId, view.id);
    assert.equal(cast.projectId, alice.projectId);
    assert.equal(cast.requestId, res.headers['x-openstack-request-id']);
    assert.match(cast.requestId, /^req-[0-9a-f-]{36}$/);
  });

  test('tls.required (Coffer) at create: the prepare asks for it and the view says so', async () => {
    const res = await create(alice, body({ name: 'tls-db', tls: { required: true } }));
    assert.equal(res.statusCode, 200, res.body);
    const view = json(res).instance;
    assert.deepEqual(view.tls, { required: true, ca_certificate: null, expires: null, port: null });
    assert.equal('access' in view && Object.keys(view.access).length, 0, 'Trove access keys untouched');
    const task = await h.store.tasks.activeForInstance(view.id);
    assert.deepEqual((task?.payload as { access: unknown }).access, { requireTls: true });
    const bad = await create(alice, body({ name: 'tls-bad', tls: { required: 'yes' } }));
    assert.equal(bad.statusCode, 400);
  });

  test('the create response has exactly the detail fields a non-admin sees', async () => {
    const view = json(await create(alice, body({ name: 'shape' }))).instance;
    assert.deepEqual(Object.keys(view).sort(), [
      'access', 'created', 'datastore', 'flavor', 'generation', 'id', 'links', 'name', 'operating_status', 'region',
      'service_status_updated', 'status', 'tls', 'updated', 'volume',
    ]);
    // created is the first desired state; nothing is applied until the guest prepared it
    assert.deepEqual(view.generation, { desired: 1, applied: 0 });
    assert.match(view.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.match(view.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    assert.equal(view.region, 'RegionOne');
    assert.deepEqual(view.links, [
      { href: `https://db.example/v1.0/${alice.projectId}/instances/${view.id}`, rel: 'self' },
      { href: `https://db.example/instances/${view.id}`, rel: 'bookmark' },
    ]);
  });

  test('flavorRef may be an int or an href; the datastore version defaults; version may be given by id', async () => {
    for (const overrides of [
      { flavorRef: 3 },
      { flavorRef: 'https://db.example/v1.0/x/flavors/4' },
      { datastore: { type: 'postgresql' } },
      { datastore: { type: seeded.datastoreId, version: seeded.activeVersionId } },
      { volume: { size: '10' } },
      { datastore: { type: 'mysql', version: '8.0' }, databases: [{ name: 'orders', character_set: 'utf8mb4', collate: 'utf8mb4_bin' }] },
    ]) {
      const res = await create(alice, body({ name: 'variant', ...overrides }));
      assert.equal(res.statusCode, 200, `${JSON.stringify(overrides)}: ${res.body}`);
    }
  });

  const rejected: [string, () => Promise<{ statusCode: number; body: string }>, number, string, string | (() => string)][] = [
    ['malformed JSON', () => h.app.inject({ method: 'POST', url: url(alice), headers: { ...headers(alice), 'content-type': 'application/json' }, payload: '{"instance": {' }), 400, 'badRequest', 'Malformed message body: cannot understand JSON'],
    ['missing name', () => create(alice, body({ name: undefined })), 400, 'badRequest', "Validation error: instance 'name' is a required property"],
    ['name without a letter or digit', () => create(alice, body({ name: '---' })), 400, 'badRequest', 'Validation error: instance.name'],
    ['missing instance', () => create(alice, {}), 400, 'badRequest', "'instance' is a required property"],
    ['unknown flavor', () => create(alice, body({ flavorRef: '99' })), 400, 'badRequest', 'Resource 99 cannot be found.'],
    ['no datastore', () => create(alice, body({ datastore: undefined })), 400, 'badRequest', 'Please specify datastore. No default datastore is defined.'],
    ['unknown datastore', () => create(alice, body({ datastore: { type: 'oracle' } })), 404, 'itemNotFound', "Datastore 'oracle' cannot be found. Datastores: mysql, postgresql."],
    ['a datastore without a default version', () => create(alice, body({ datastore: { type: 'mysql' } })), 400, 'badRequest', "Default version for datastore 'mysql' not found."],
    ['unknown version', () => create(alice, body({ datastore: { type: 'postgresql', version: '9.6' } })), 400, 'badRequest', "Datastore version '9.6' cannot be found."],
    ['inactive version', () => create(alice, body({ datastore: { type: 'postgresql', version: '16' } })), 400, 'badRequest', "Datastore version '16' is not active. postgres 16 binaries not found."],
    ['version of another datastore', () => create(alice, body({ datastore: { type: 'mysql', version: seeded.activeVersionId } })), 400, 'badRequest', "Datastore 'mysql' has no version"],
    ['no volume', () => create(alice, body({ volume: undefined })), 400, 'badRequest', 'Volume size was not specified.'],
    ['volume size 0', () => create(alice, body({ volume: { size: 0 } })), 400, 'badRequest', 'Validation error: instance.volume.size'],
    ['volume too big', () => create(alice, body({ volume: { size: 11 } })), 413, 'overLimit', "Volume 'size' cannot exceed maximum of 10 GB, 11 cannot be accepted."],
    ['unknown volume type', () => create(alice, body({ volume: { size: 1, type: 'ssd' } })), 400, 'badRequest', 'Volume type ssd cannot be found'],
    ['database name too short', () => create(alice, body({ databases: [{ name: 'a' }], users: [] })), 400, 'badRequest', "'a' is not a valid schema name."],
    ['database name with a slash', () => create(alice, body({ databases: [{ name: 'bad/name' }], users: [] })), 400, 'badRequest', "'bad/name' is not a valid schema name."],
    ['database name too long', () => create(alice, body({ databases: [{ name: 'x'.repeat(65) }], users: [] })), 400, 'badRequest', 'is too long. Max length = 64.'],
    ['reserved database', () => create(alice, body({ databases: [{ name: 'postgres' }], users: [] })), 400, 'badRequest', 'Database name "postgres" is on the reserved list'],
    ['duplicate databases', () => create(alice, body({ databases: [{ name: 'orders' }, { name: 'orders' }], users: [] })), 400, 'badRequest', 'Two or more databases share the same name'],
    ['user name too long', () => create(alice, body({ users: [{ name: 'u'.repeat(17), password: 'p' }] })), 400, 'badRequest', 'Max length = 16.'],
    ['user name with a quote', () => create(alice, body({ users: [{ name: "o'neil", password: 'p' }] })), 400, 'badRequest', "'o'neil' is not a valid user name."],
    ['reserved user', () => create(alice, body({ users: [{ name: 'root', password: 'p' }] })), 400, 'badRequest', 'User name "root" is on the reserved list'],
    ['bad user host', () => create(alice, body({ users: [{ name: 'app', password: 'p', host: 'not a host' }] })), 400, 'badRequest', "'not a host' is not a valid hostname."],
    ['duplicate users', () => create(alice, body({ users: [{ name: 'app', password: 'p' }, { name: 'app', password: 'q' }] })), 400, 'badRequest', 'Two or more users share the same name and host'],
    ['user database not created', () => create(alice, body({ users: [{ name: 'app', password: 'p', databases: [{ name: 'other' }] }] })), 400, 'badRequest', 'database other is not included in the initial databases list'],
    ['bad mysql charset', () => create(alice, body({ datastore: { type: 'mysql', version: '8.0' }, databases: [{ name: 'orders', character_set: 'klingon' }], users: [] })), 400, 'badRequest', "'klingon' not a valid character set."],
    ['bad access cidr', () => create(alice, body({ access: { allowed_cidrs: ['10.0.0.0/99'] } })), 400, 'badRequest', 'Validation error: instance.access.allowed_cidrs[0]'],
    ['replica_of with a restorePoint', () => create(alice, body({ replica_of: newUuid(), restorePoint: { backupRef: newUuid() } })), 400, 'badRequest', 'Cannot specify restorePoint when creating replicas'],
    ['replica_of naming no instance', () => create(alice, { instance: { name: 'r', replica_of: newUuid() } }), 404, 'itemNotFound', 'cannot be found'],
    ['no flavorRef and no replica_of', () => create(alice, body({ flavorRef: undefined })), 400, 'badRequest', "Validation error: instance 'flavorRef' is a required property"],
    ["another project's id in the URL", () => h.app.inject({ method: 'POST', url: url(bob), headers: headers(alice), payload: body() }), 403, 'forbidden', () => `User with tenant id ${alice.projectId} cannot access this resource.`],
  ];

  test('accepts the one volume type, local, by name or id, and no type', async () => {
    for (const type of ['local', localVolumeType.id, null]) {
      const res = await create(alice, body({ volume: { size: 1, type } }));
      assert.equal(res.statusCode, 200, res.body);
    }
  });

  for (const [name, send, status, fault, message] of rejected) {
    test(`rejects ${name} with ${status} ${fault} and creates nothing`, async () => {
      const before = (await h.store.instances.list({ limit: 1000 })).items.length;
      const castsBefore = h.casts.length;
      const res = await send();
      assert.equal(res.statusCode, status, res.body);
      const parsed = JSON.parse(res.body);
      assert.deepEqual(Object.keys(parsed), [fault]);
      assert.equal(parsed[fault].code, status);
      const expected = typeof message === 'string' ? message : message();
      assert.ok(parsed[fault].message.includes(expected), parsed[fault].message);
      assert.doesNotMatch(res.body, /app-secret/);
      assert.equal((await h.store.instances.list({ limit: 1000 })).items.length, before);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(h.casts.length, castsBefore);
    });
  }

  test('a datastore whose versions are all inactive says why at create, with what the agent reported', async () => {
    const mariadb = await h.store.datastores.ensureDatastore('mariadb', newUuid());
    await h.store.datastores.upsertVersion({
      id: newUuid(),
      datastoreId: mariadb.id,
      name: '10.11',
      version: '10.11',
      manager: 'mariadb',
      active: false,
      inactiveReason: 'mariadbd not found in /usr/sbin, /usr/bin: apt-get install mariadb-server',
      updatedAt: new Date(),
    });
    const res = await create(alice, body({ datastore: { type: 'mariadb' } }));
    assert.equal(res.statusCode, 400, res.body);
    assert.deepEqual(JSON.parse(res.body), {
      badRequest: {
        code: 400,
        message:
          "Default version for datastore 'mariadb' not found. No version of it is active: " +
          '10.11: mariadbd not found in /usr/sbin, /usr/bin: apt-get install mariadb-server.',
      },
    });
    const unknown = JSON.parse((await create(alice, body({ datastore: { type: 'oracle' } }))).body);
    assert.equal(unknown.itemNotFound.message, "Datastore 'oracle' cannot be found. Datastores: mysql, postgresql.", 'mariadb has nothing to offer');
  });

  test('the volume cap is the configured one (--max-volume-size), not a fixed 10 GB', async () => {
    const own = await startHarness({ maxVolumeSizeGb: 30 });
    try {
      await seedDatastores(own.store);
      const carol = await memberSession(own, 'carol');
      const send = (size: number) =>
        own.app.inject({ method: 'POST', url: url(carol), headers: headers(carol), payload: body({ volume: { size } }) });
      assert.equal((await send(20)).statusCode, 200);
      const over = await send(31);
      assert.equal(over.statusCode, 413, over.body);
      assert.equal(JSON.parse(over.body).overLimit.message, "Volume 'size' cannot exceed maximum of 30 GB, 31 cannot be accepted.");
    } finally {
      await own.close();
    }
  });

  test('a wrong or missing token is 401 before the body is even read', async () => {
    for (const token of ['wrong-token', undefined]) {
      const res = await h.app.inject({
        method: 'POST',
        url: url(alice),
        headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { 'x-auth-token': token }) },
        payload: '{malformed',
      });
      assert.equal(res.statusCode, 401);
      assert.ok(String(res.headers['www-authenticate']).startsWith('Keystone uri='));
      assert.deepEqual(json(res), {
        error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
      });
    }
  });
});

describe('GET /instances', () => {
  test('pages hold at most 20, with a next link only when another page follows', async () => {
    const carol = await memberSession(h, 'carol');
    const base = Date.now() - 100_000;
    const ids: string[] = [];
    for (let i = 0; i < 23; i++) ids.push(await insertInstance(carol, { createdAt: new Date(base + i * 1000) }));
    ids.sort();

    const first = json(await h.app.inject({ method: 'GET', url: url(carol, '?limit=50'), headers: headers(carol) }));
    assert.equal(first.instances.length, 20);
    const marker = ids[19];
    assert.deepEqual(first.links, [{ rel: 'next', href: `https://db.example/v1.0/${carol.projectId}/instances?limit=50&marker=${marker}` }]);
    // The page is the first 20 ids, shown newest first.
    assert.deepEqual(new Set(first.instances.map((i: { id: string }) => i.id)), new Set(ids.slice(0, 20)));
    const created = await Promise.all(first.instances.map(async (i: { id: string }) => (await h.store.instances.get(i.id))!.createdAt.getTime()));
    assert.deepEqual(created, [...created].sort((a, b) => b - a));

    const second = json(await h.app.inject({ method: 'GET', url: url(carol, `?limit=50&marker=${marker}`), headers: headers(carol) }));
    assert.deepEqual(second.instances.map((i: { id: string }) => i.id).sort(), ids.slice(20));
    assert.equal('links' in second, false);

    const small = json(await h.app.inject({ method: 'GET', url: url(carol, '?limit=2'), headers: headers(carol) }));
    assert.equal(small.instances.length, 2);
    assert.equal(small.links[0].href, `https://db.example/v1.0/${carol.projectId}/instances?limit=2&marker=${ids[1]}`);
  });

  test('summary items carry name and status; /detail adds the detail fields', async () => {
    const dave = await memberSession(h, 'dave');
    await insertInstance(dave, { name: 'summary', address: '127.77.0.9' });
    const [summary] = json(await h.app.inject({ method: 'GET', url: url(dave), headers: headers(dave) })).instances;
    assert.deepEqual(Object.keys(summary).sort(), [
      'access', 'addresses', 'datastore', 'flavor', 'id', 'ip', 'links', 'name', 'operating_status', 'region', 'status', 'volume',
    ]);
    assert.equal(summary.status, 'ACTIVE');
    assert.equal(summary.operating_status, 'HEALTHY');
    assert.deepEqual(summary.addresses, [{ address: '127.77.0.9', type: 'private' }]);
    assert.deepEqual(summary.ip, ['127.77.0.9']);
    assert.deepEqual(summary.access, { is_public: false });
    assert.deepEqual(summary.datastore, { type: 'postgresql', version: '15' });
    const [detail] = json(await h.app.inject({ method: 'GET', url: url(dave, '/detail'), headers: headers(dave) })).instances;
    assert.ok('created' in detail && 'service_status_updated' in detail);
    assert.equal(detail.datastore.version_number, '15.19');
  });

  test("an instance on a host's address shows its port in addresses (Coffer's extension), one on the standard port none", async () => {
    const erin = await memberSession(h, 'erin');
    const onHost = await insertInstance(erin, { name: 'on-host', address: '192.0.2.10', port: 30002 });
    const standard = await insertInstance(erin, { name: 'standard', address: '127.77.0.10' });
    const shown = async (id: string, path = '') => json(await h.app.inject({ method: 'GET', url: url(erin, `${path}/${id}`), headers: headers(erin) })).instance;
    const host = await shown(onHost);
    assert.deepEqual(host.addresses, [{ address: '192.0.2.10', type: 'private', port: 30002 }]);
    // `ip` stays a list of addresses: Trove's clients read it as one
    assert.deepEqual(host.ip, ['192.0.2.10']);
    assert.deepEqual((await shown(standard)).addresses, [{ address: '127.77.0.10', type: 'private' }]);
    const listed = json(await h.app.inject({ method: 'GET', url: url(erin), headers: headers(erin) })).instances as { id: string; addresses: unknown }[];
    assert.deepEqual(listed.find((i) => i.id === onHost)?.addresses, [{ address: '192.0.2.10', type: 'private', port: 30002 }]);
  });

  test("another project's instances are neither listed nor shown (404), even to admins in lists", async () => {
    const id = await insertInstance(alice, { name: 'private' });
    const bobList = json(await h.app.inject({ method: 'GET', url: url(bob), headers: headers(bob) })).instances;
    assert.ok(!bobList.some((i: { id: string }) => i.id === id));
    const show = await h.app.inject({ method: 'GET', url: url(bob, `/${id}`), headers: headers(bob) });
    assert.equal(show.statusCode, 404);
    assert.deepEqual(json(show), { itemNotFound: { code: 404, message: `Resource ${id} cannot be found.` } });
    const del = await h.app.inject({ method: 'DELETE', url: url(bob, `/${id}`), headers: headers(bob) });
    assert.equal(del.statusCode, 404);
    const adminList = json(await h.app.inject({ method: 'GET', url: url(admin), headers: headers(admin) })).instances;
    assert.ok(!adminList.some((i: { id: string }) => i.id === id));
    // Admins reach any instance through their own tenant path, and see its owner.
    const adminShow = await h.app.inject({ method: 'GET', url: url(admin, `/${id}`), headers: headers(admin) });
    assert.equal(adminShow.statusCode, 200);
    assert.equal(json(adminShow).instance.tenant_id, alice.projectId);
    assert.equal(json(adminShow).instance.encrypted_rpc_messaging, false);
  });

  test('an unknown id is 404 and an invalid limit 400', async () => {
    assert.equal((await h.app.inject({ method: 'GET', url: url(alice, '/nope'), headers: headers(alice) })).statusCode, 404);
    assert.equal((await h.app.inject({ method: 'GET', url: url(alice, '?limit=abc'), headers: headers(alice) })).statusCode, 400);
  });
});

describe('GET /instances/{id}', () => {
  test('volume.used is what the heartbeats last reported: no guest is asked, even one that answers', async () => {
    const id = await insertInstance(alice, { address: '127.77.0.3' });
    await h.store.serviceStatuses.report(id, { volumeUsage: { usedBytes: 0.5 * 1024 ** 3, measuredAt: new Date() } });
    // no guest serves this instance: a guest call on the read path would wait out its timeout
    const began = performance.now();
    const res = await h.app.inject({ method: 'GET', url: url(alice, `/${id}`), headers: headers(alice) });
    const elapsedMs = performance.now() - began;
    assert.equal(res.statusCode, 200);
    assert.equal(json(res).instance.status, 'ACTIVE');
    assert.deepEqual(json(res).instance.volume, { size: 1, used: 0.5 });
    // what a guest call would wait for when no guest answers; a loaded machine is slow, never that slow
    const guestTimeoutMs = guestContract.methods.getFilesystemStats.timeoutMs;
    assert.ok(elapsedMs < guestTimeoutMs, `answered in ${Math.round(elapsedMs)} ms, without waiting ${guestTimeoutMs} ms for a guest`);

    // a guest that would answer something else is not asked either
    let asked = 0;
    const sub = await serveRpc(
      h.transport,
      guestContract,
      guestTopic(id),
      fakeGuestHandlers({
        getFilesystemStats: async () => {
          asked += 1;
          return { totalBytes: 2 * 1024 ** 3, usedBytes: 1.5 * 1024 ** 3 };
        },
      }),
    );
    try {
      const shown = json(await h.app.inject({ method: 'GET', url: url(alice, `/${id}`), headers: headers(alice) })).instance;
      assert.deepEqual(shown.volume, { size: 1, used: 0.5 });
      const listed = json(await h.app.inject({ method: 'GET', url: url(alice, '/detail'), headers: headers(alice) })).instances;
      assert.deepEqual(listed.find((i: { id: string }) => i.id === id)?.volume, { size: 1, used: 0.5 });
      const summary = json(await h.app.inject({ method: 'GET', url: url(alice), headers: headers(alice) })).instances;
      assert.deepEqual(summary.find((i: { id: string }) => i.id === id)?.volume, { size: 1 }, "Trove's summary view has no usage");
      assert.equal(asked, 0);
    } finally {
      await sub.close();
    }
  });

  test('volume.used: absent until reported and when zero; an old measurement still shows, whatever the status', async () => {
    const id = await insertInstance(alice);
    const volume = async () => json(await h.app.inject({ method: 'GET', url: url(alice, `/${id}`), headers: headers(alice) })).instance.volume;
    assert.deepEqual(await volume(), { size: 1 });
    await h.store.serviceStatuses.report(id, { volumeUsage: { usedBytes: 0, measuredAt: new Date() } });
    assert.deepEqual(await volume(), { size: 1 });
    await h.store.serviceStatuses.report(id, { volumeUsage: { usedBytes: 3 * 1024 ** 3, measuredAt: new Date(Date.now() - 86_400_000) } });
    await h.store.serviceStatuses.set({ instanceId: id, status: 'SHUTDOWN', updatedAt: new Date() });
    assert.deepEqual(await volume(), { size: 1, used: 3 });
  });

  test('a stale heartbeat shows operating_status ERROR; a fault shows, with details for admins only', async () => {
    const id = await insertInstance(alice, { heartbeatAt: new Date(Date.now() - 10 * 60_000), service: 'HEALTHY', task: 'NONE' });
    await h.store.instances.update(id, { taskStatus: 'BUILDING_ERROR_SERVER' });
    await h.store.faults.record({ id: newUuid(), instanceId: id, message: 'No host available.', details: 'trace...', createdAt: new Date('2030-01-02T03:04:05Z') });
    const view = json(await h.app.inject({ method: 'GET', url: url(alice, `/${id}`), headers: headers(alice) })).instance;
    assert.equal(view.status, 'ERROR');
    assert.equal(view.operating_status, '');
    assert.deepEqual(view.fault, { message: 'No host available.', created: '2030-01-02T03:04:05', details: null });
    const adminView = json(await h.app.inject({ method: 'GET', url: url(admin, `/${id}`), headers: headers(admin) })).instance;
    assert.equal(adminView.fault.details, 'trace...');

    await h.store.instances.update(id, { taskStatus: 'NONE' });
    const stale = json(await h.app.inject({ method: 'GET', url: url(alice, `/${id}`), headers: headers(alice) })).instance;
    assert.equal(stale.status, 'ACTIVE');
    assert.equal(stale.operating_status, 'ERROR');
  });
});

describe('DELETE /instances/{id}', () => {
  test('is refused with 422 while the instance builds', async () => {
    const id = await insertInstance(alice, { task: 'BUILDING', service: 'NEW' });
    const res = await h.app.inject({ method: 'DELETE', url: url(alice, `/${id}`), headers: headers(alice) });
    assert.equal(res.statusCode, 422);
    assert.deepEqual(json(res), {
      unprocessableEntity: { code: 422, message: `Instance ${id} is not ready. (Status is BUILD).` },
    });
    assert.equal((await h.store.instances.get(id))?.taskStatus, 'BUILDING');
  });

  test('answers 202 with an empty body, marks the task DELETING, queues a delete task and casts', async () => {
    const id = await insertInstance(alice);
    const castsBefore = h.casts.length;
    const res = await h.app.inject({ method: 'DELETE', url: url(alice, `/${id}`), headers: headers(alice) });
    assert.equal(res.statusCode, 202);
    assert.equal(res.body, '');
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal((await h.store.instances.get(id))?.taskStatus, 'DELETING');
    const task = await h.store.tasks.activeForInstance(id);
    assert.equal(task?.kind, 'delete_instance');
    await until('the create cast', () => h.casts.length === castsBefore + 1);
    assert.equal(h.casts.at(-1)?.taskId, task?.id);

    const view = json(await h.app.inject({ method: 'GET', url: url(alice, `/${id}`), headers: headers(alice) })).instance;
    assert.equal(view.status, 'SHUTDOWN');

    // A second delete re-wakes the same task instead of queueing another.
    const again = await h.app.inject({ method: 'DELETE', url: url(alice, `/${id}`), headers: headers(alice) });
    assert.equal(again.statusCode, 202);
    await until('the second cast', () => h.casts.length === castsBefore + 2);
    assert.equal(h.casts.at(-1)?.taskId, task?.id);
  });
});

describe('HTTP conventions', () => {
  test('every response carries X-OpenStack-Request-ID; unknown routes are 404 itemNotFound', async () => {
    const res = await h.app.inject({ method: 'GET', url: `/v1.0/${alice.projectId}/nothing-here`, headers: headers(alice) });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(json(res), { itemNotFound: { code: 404, message: 'The resource could not be found.' } });
    assert.match(String(res.headers['x-openstack-request-id']), /^req-[0-9a-f-]{36}$/);
  });

  test("a body typed as Trove's vendor JSON is read, with or without parameters", async () => {
    for (const type of ['application/vnd.openstack.trove+json', 'application/vnd.openstack.trove+json;version=1.0', 'application/json; charset=utf-8']) {
      const res = await h.app.inject({
        method: 'POST',
        url: url(alice),
        headers: { ...headers(alice), 'content-type': type },
        payload: JSON.stringify(body({ name: 'typed' })),
      });
      assert.equal(res.statusCode, 200, `${type}: ${res.body}`);
      assert.equal(json(res).instance.name, 'typed');
    }
  });

  test('GET / lists v1.0 without a token', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/', headers: { host: 'db.example:8779' } });
    assert.deepEqual(json(res), {
      versions: [{ id: 'v1.0', status: 'CURRENT', updated: '2012-08-01T00:00:00Z', links: [{ rel: 'self', href: 'http://db.example:8779/v1.0/' }] }],
    });
  });
});

describe('when the bus is down', () => {
  test('create still answers 200 and leaves the durable task for the next sweep', async () => {
    const own = await startHarness();
    try {
      const session = await adminSession(own.app);
      await seedDatastores(own.store);
      await own.transport.close();
      const res = await own.app.inject({
        method: 'POST',
        url: `/v1.0/${session.projectId}/instances`,
        headers: { 'x-auth-token': session.token },
        payload: body(),
      });
      assert.equal(res.statusCode, 200, res.body);
      const task = await own.store.tasks.activeForInstance(json(res).instance.id);
      assert.equal(task?.state, 'pending');
    } finally {
      await own.close();
    }
  });
});
