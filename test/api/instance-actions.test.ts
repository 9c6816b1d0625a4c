import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newUuid } from '../../src/common/ids.js';
import { noEngineCapabilities } from '../../src/common/index.js';
import type { ServiceStatusName, TaskStatusName } from '../../src/db/index.js';
import { adminSession, json, memberSession, startHarness, type Harness, type Session } from './api-harness.js';
import { until } from '../support/wait.js';

// PUT/PATCH /instances/{id} and POST /instances/{id}/action over HTTP, against the real API and
// state store; a recording consumer stands in for the taskmanager.

let h: Harness;
let admin: Session;
let alice: Session;
let bob: Session;
const versions: Record<'pg15' | 'pg16' | 'redis' | 'pgRepl', string> = { pg15: '', pg16: '', redis: '', pgRepl: '' };

before(async () => {
  h = await startHarness();
  admin = await adminSession(h.app);
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
  const withAccess = { ...noEngineCapabilities, accessRules: true };
  const pg = await h.store.datastores.ensureDatastore('postgresql', newUuid());
  const redis = await h.store.datastores.ensureDatastore('redis', newUuid());
  const version = (datastoreId: string, name: string, capabilities = withAccess) =>
    h.store.datastores.upsertVersion({
      id: newUuid(),
      datastoreId,
      name,
      version: `${name}.1`,
      manager: datastoreId === redis.id ? 'redis' : 'postgresql',
      active: true,
      inactiveReason: null,
      updatedAt: new Date(),
      capabilities,
    });
  versions.pg15 = (await version(pg.id, '15')).id;
  versions.pg16 = (await version(pg.id, '16')).id;
  versions.redis = (await version(redis.id, '7', { ...noEngineCapabilities })).id;
  versions.pgRepl = (await version(pg.id, '17', { ...withAccess, replication: true })).id;
});
after(() => h.close());

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });
const url = (s: Session, path = '') => `/v1.0/${s.projectId}/instances${path}`;

interface InstanceOptions {
  task?: TaskStatusName;
  service?: ServiceStatusName;
  heartbeatAt?: Date;
  version?: keyof typeof versions;
  flavorId?: string;
  volumeSizeGb?: number;
}

/** An instance row as a finished create leaves it (or in the state a test needs). */
async function insertInstance(s: Session, options: InstanceOptions = {}): Promise<string> {
  const id = newUuid();
  const now = new Date();
  await h.store.instances.create({
    id,
    name: `db-${id.slice(0, 6)}`,
    tenantId: s.projectId,
    flavorId: options.flavorId ?? '2',
    volumeSizeGb: options.volumeSizeGb ?? 2,
    datastoreVersionId: versions[options.version ?? 'pg15'],
    taskStatus: options.task ?? 'NONE',
    taskDescription: '',
    taskStartTime: null,
    access: null,
    createdAt: now,
    updatedAt: now,
  });
  await h.store.instances.update(id, { host: 'host-a', address: '127.95.0.20', port: 5432 });
  await h.store.serviceStatuses.set({ instanceId: id, status: options.service ?? 'HEALTHY', updatedAt: options.heartbeatAt ?? now });
  return id;
}

function put(s: Session, id: string, payload: unknown, method: 'PUT' | 'PATCH' = 'PUT') {
  return h.app.inject({ method, url: url(s, `/${id}`), headers: headers(s), payload: payload as object });
}

function act(s: Session, id: string, payload: unknown) {
  return h.app.inject({ method: 'POST', url: url(s, `/${id}/action`), headers: headers(s), payload: payload as object });
}

function show(s: Session, id: string) {
  return h.app.inject({ method: 'GET', url: url(s, `/${id}`), headers: headers(s) });
}

function assertFault(res: { statusCode: number; body: string }, status: number, fault: string, message: string | RegExp): void {
  assert.equal(res.statusCode, status, res.body);
  const parsed = JSON.parse(res.body);
  assert.deepEqual(Object.keys(parsed), [fault]);
  assert.equal(parsed[fault].code, status);
  if (typeof message === 'string') assert.equal(parsed[fault].message, message);
  else assert.match(parsed[fault].message, message);
}

async function assertAccepted(res: { statusCode: number; body: string; headers: Record<string, unknown> }): Promise<void> {
  assert.equal(res.statusCode, 202, res.body);
  assert.equal(res.body, '');
  assert.match(String(res.headers['content-type']), /^application\/json/);
}

/** The task queued for the instance, once the taskmanager was woken for it. */
async function queuedTask(id: string, castsBefore: number) {
  const task = await h.store.tasks.activeForInstance(id);
  assert.ok(task, 'a task row was written');
  await until('the wake-up cast', () => h.casts.length > castsBefore);
  assert.equal(h.casts.at(-1)?.taskId, task.id);
  assert.equal(h.casts.at(-1)?.instanceId, id);
  return task;
}

describe('PUT /instances/{id}', () => {
  test('renames the instance and answers 202 with an empty body, queueing nothing', async () => {
    const id = await insertInstance(alice);
    await assertAccepted(await put(alice, id, { instance: { name: 'renamed' } }));
    assert.equal((await h.store.instances.get(id))?.name, 'renamed');
    assert.equal(await h.store.tasks.activeForInstance(id), undefined);
  });

  test('access: records the rules on the instance, sets UPDATING and queues update_access', async () => {
    const id = await insertInstance(alice);
    const castsBefore = h.casts.length;
    const res = await put(alice, id, { instance: { name: 'guarded', access: { is_public: false, allowed_cidrs: ['10.0.0.0/8', '192.168.1.0/24'] } } });
    await assertAccepted(res);
    const row = await h.store.instances.get(id);
    assert.equal(row?.name, 'guarded');
    assert.deepEqual(row?.access, { isPublic: false, allowedCidrs: ['10.0.0.0/8', '192.168.1.0/24'] });
    assert.equal(row?.taskStatus, 'UPDATING');
    assert.equal(row?.desiredGeneration, 2, 'a change of what the instance should be raises its generation');
    const task = await queuedTask(id, castsBefore);
    assert.equal(task.kind, 'update_access');
    assert.deepEqual(task.payload, { requestId: res.headers['x-openstack-request-id'], resumeTask: 'NONE' });
    const view = json(await show(alice, id)).instance;
    assert.deepEqual(view.access, { is_public: false, allowed_cidrs: ['10.0.0.0/8', '192.168.1.0/24'] });
    assert.deepEqual(view.generation, { desired: 2, applied: 0 }, 'not live until the guest applied it');
    // Trove's UPDATING falls through to the server status; no operating_status during a task.
    assert.equal(view.status, 'ACTIVE');
    assert.equal(view.operating_status, '');
  });

  test('access may be asked again after a failed update, and not while another task runs', async () => {
    const failed = await insertInstance(alice, { task: 'UPDATING_ERROR_ACCESS' });
    await assertAccepted(await put(alice, failed, { instance: { access: { allowed_cidrs: ['10.9.0.0/16'] } } }));
    assert.equal((await h.store.instances.get(failed))?.taskStatus, 'UPDATING');

    for (const [task, action] of [['BUILDING', 'BUILDING'], ['RESIZING', 'RESIZING'], ['BUILDING_ERROR_SERVER', 'BUILDING']] as const) {
      const id = await insertInstance(alice, { task });
      assertFault(
        await put(alice, id, { instance: { access: { allowed_cidrs: ['10.9.0.0/16'] } } }),
        422,
        'unprocessableEntity',
        `Instance ${id} is not currently available for an action to be performed (task status was ${action}).`,
      );
      assert.equal((await h.store.instances.get(id))?.access, null);
    }
  });

  test('access on an engine that does not enforce access rules is 422 OperationNotSupported', async () => {
    const id = await insertInstance(alice, { version: 'redis' });
    assertFault(
      await put(alice, id, { instance: { access: { allowed_cidrs: ['10.0.0.0/8'] } } }),
      422,
      'unprocessableEntity',
      /^Operation not supported for datastore redis/,
    );
    assert.equal((await h.store.instances.get(id))?.taskStatus, 'NONE');
  });

  test('tls.required (Coffer): queues update_access with the requirement, on every engine, keeping the access rules', async () => {
    for (const version of ['pg15', 'redis'] as const) {
      const id = await insertInstance(alice, { version });
      await h.store.instances.update(id, { access: version === 'pg15' ? { allowedCidrs: ['10.0.0.0/8'] } : null });
      const castsBefore = h.casts.length;
      await assertAccepted(await put(alice, id, { instance: { tls: { required: true } } }));
      const row = await h.store.instances.get(id);
      assert.deepEqual(row?.access, version === 'pg15' ? { allowedCidrs: ['10.0.0.0/8'], requireTls: true } : { requireTls: true });
      assert.equal(row?.taskStatus, 'UPDATING');
      assert.equal(row?.desiredGeneration, 2);
      assert.equal((await queuedTask(id, castsBefore)).kind, 'update_access');
      const view = json(await show(alice, id)).instance;
      assert.equal(view.tls.required, true);
      // Trove's access keys stay as they were
      assert.deepEqual(view.access, version === 'pg15' ? { allowed_cidrs: ['10.0.0.0/8'] } : { is_public: false });
    }
  });

  test('tls.required false allows plaintext again; Trove access updates keep the requirement', async () => {
    const id = await insertInstance(alice);
    await h.store.instances.update(id, { access: { requireTls: true } });
    await assertAccepted(await put(alice, id, { instance: { access: { allowed_cidrs: ['10.1.0.0/16'] } } }));
    assert.deepEqual((await h.store.instances.get(id))?.access, { allowedCidrs: ['10.1.0.0/16'], requireTls: true });

    const other = await insertInstance(alice);
    await h.store.instances.update(other, { access: { requireTls: true } });
    await assertAccepted(await put(alice, other, { instance: { tls: { required: false } } }));
    assert.equal((await h.store.instances.get(other))?.access, null, 'back to no rules at all');
    assert.equal(json(await show(alice, other)).instance.tls.required, false);
  });

  test('replica_of (PUT) and slave_of (PATCH) detach a replica: this instance is not one', async () => {
    const id = await insertInstance(alice);
    assertFault(await put(alice, id, { instance: { replica_of: null } }), 400, 'badRequest', `Instance ${id} is not a replica.`);
    assertFault(await put(alice, id, { instance: { slave_of: null } }, 'PATCH'), 400, 'badRequest', `Instance ${id} is not a replica.`);
    const building = await insertInstance(alice, { task: 'BUILDING', service: 'NEW' });
    assertFault(
      await put(alice, building, { instance: { replica_of: null } }),
      422,
      'unprocessableEntity',
      `Instance ${building} is not currently available for an action to be performed (instance status was BUILD).`,
    );
  });

  test('configuration: an unknown group is 404, detaching none is nothing to do', async () => {
    const id = await insertInstance(alice);
    const unknown = newUuid();
    assertFault(await put(alice, id, { instance: { configuration: unknown } }), 404, 'itemNotFound', `Configuration group with ID ${unknown} could not be found.`);
    await assertAccepted(await put(alice, id, { instance: { configuration: null } }));
    assert.equal(await h.store.tasks.activeForInstance(id), undefined, 'no task for a detach without a group');
  });

  test('datastore_version: the same version is nothing to do; a newer one the host runs queues the upgrade, the instance keeping its version until it is done', async () => {
    const id = await insertInstance(alice);
    await assertAccepted(await put(alice, id, { instance: { datastore_version: '15' } }));
    await assertAccepted(await put(alice, id, { instance: { datastore_version: versions.pg15 } }, 'PATCH'));
    assert.equal(await h.store.tasks.activeForInstance(id), undefined, 'no task for the version it runs');
    assertFault(await put(alice, id, { instance: { datastore_version: '9.6' } }), 400, 'badRequest', "Datastore version '9.6' cannot be found.");

    // its host reports only 15: refused with what to do
    await h.store.agents.heartbeat('host-a', new Date(), ['postgresql/15']);
    assertFault(await put(alice, id, { instance: { datastore_version: '16' } }, 'PATCH'), 400, 'badRequest', /host of instance .* \(host-a\) cannot run postgresql 16: install that version there first/);
    await h.store.agents.heartbeat('host-a', new Date(), ['postgresql/15', 'postgresql/16', 'postgresql/17']);

    const castsBefore = h.casts.length;
    const res = await put(alice, id, { instance: { datastore_version: '16' } }, 'PATCH');
    await assertAccepted(res);
    const task = await queuedTask(id, castsBefore);
    assert.equal(task.kind, 'upgrade');
    assert.deepEqual(task.payload, { requestId: res.headers['x-openstack-request-id'], fromVersionId: versions.pg15, toVersionId: versions.pg16 });
    const row = await h.store.instances.get(id);
    assert.equal(row?.taskStatus, 'UPGRADING');
    assert.equal(row?.datastoreVersionId, versions.pg15, 'the version changes once the upgrade is done');
    assert.equal(json(await show(alice, id)).instance.status, 'UPGRADE');
    assertFault(await put(alice, id, { instance: { datastore_version: '17' } }, 'PATCH'), 422, 'unprocessableEntity', /not currently available .*task status was UPGRADING/);
  });

  test('datastore_version: no downgrade, and no upgrade of one member of a replication group', async () => {
    const newer = await insertInstance(alice, { version: 'pg16' });
    assertFault(await put(alice, newer, { instance: { datastore_version: '15' } }), 400, 'badRequest', /runs postgresql 16: it cannot be downgraded to 15/);
    const source = await insertInstance(alice);
    const replica = await insertInstance(alice);
    await h.store.instances.update(replica, { replicaOfId: source });
    for (const member of [source, replica]) {
      assertFault(await put(alice, member, { instance: { datastore_version: '16' } }), 400, 'badRequest', /is in a replication group, whose members must run one version: detach the replicas/);
      assert.equal((await h.store.instances.get(member))?.taskStatus, 'NONE');
    }
  });

  const invalid: [string, unknown, string | RegExp, ('PUT' | 'PATCH')?][] = [
    ['two attributes besides the name', { instance: { name: 'x', replica_of: null, datastore_version: '15' } }, "Only one attribute (except 'name') is allowed to update."],
    ['an unknown attribute', { instance: { flavorRef: '3' } }, /^Validation error: /],
    ['a key beside instance', { instance: { name: 'x' }, extra: 1 }, /^Validation error: /],
    ['no instance', {}, "Validation error: 'instance' is a required property"],
    ['an empty name', { instance: { name: '' } }, /^Validation error: instance\.name/],
    ['a CIDR with a bad prefix', { instance: { access: { allowed_cidrs: ['10.0.0.0/33'] } } }, /^Validation error: instance\.access\.allowed_cidrs\[0\] is not a valid CIDR/],
    ['a host name for a CIDR', { instance: { access: { allowed_cidrs: ['db.example.com/8'] } } }, /allowed_cidrs\[0\] is not a valid CIDR/],
    ['allowed_cidrs not a list', { instance: { access: { allowed_cidrs: '10.0.0.0/8' } } }, /instance\.access\.allowed_cidrs/],
    ['is_public not a boolean', { instance: { access: { is_public: 'yes' } } }, /instance\.access\.is_public/],
    ['another key in access', { instance: { access: { is_public: true, ports: [5432] } } }, /^Validation error: instance\.access/],
    ['a configuration that is not a UUID', { instance: { configuration: '' } }, /instance\.configuration/],
    ['access through PATCH', { instance: { access: { is_public: true } } }, /^Validation error: /, 'PATCH'],
    ['tls.required not a boolean', { instance: { tls: { required: 'yes' } } }, /instance\.tls\.required/],
    ['another key in tls', { instance: { tls: { required: true, verify: true } } }, /^Validation error: instance\.tls/],
  ];
  for (const [name, payload, message, method] of invalid) {
    test(`refuses ${name} with 400 and changes nothing`, async () => {
      const id = await insertInstance(alice);
      assertFault(await put(alice, id, payload, method), 400, 'badRequest', message);
      const row = await h.store.instances.get(id);
      assert.equal(row?.name, `db-${id.slice(0, 6)}`);
      assert.equal(row?.taskStatus, 'NONE');
      assert.equal(row?.access, null);
    });
  }

  test('a body without a JSON content type is no body (400); another project’s instance is 404', async () => {
    const id = await insertInstance(alice);
    const untyped = await h.app.inject({
      method: 'PUT',
      url: url(alice, `/${id}`),
      headers: { ...headers(alice), 'content-type': 'text/plain' },
      payload: JSON.stringify({ instance: { name: 'x' } }),
    });
    assertFault(untyped, 400, 'badRequest', /^Validation error: /);
    assertFault(await put(bob, id, { instance: { name: 'stolen' } }), 404, 'itemNotFound', `Resource ${id} cannot be found.`);
    assert.equal((await h.store.instances.get(id))?.name, `db-${id.slice(0, 6)}`);
  });
});

describe('POST /instances/{id}/action restart', () => {
  test('sets REBOOTING and the service status RESTARTING, queues a restart task and shows REBOOT', async () => {
    const id = await insertInstance(alice);
    const castsBefore = h.casts.length;
    const res = await act(alice, id, { restart: {} });
    await assertAccepted(res);
    assert.equal((await h.store.instances.get(id))?.taskStatus, 'REBOOTING');
    assert.equal((await h.store.serviceStatuses.get(id))?.status, 'RESTARTING');
    assert.equal((await h.store.instances.get(id))?.desiredGeneration, 1, 'a restart changes nothing the instance should be');
    const task = await queuedTask(id, castsBefore);
    assert.equal(task.kind, 'restart');
    assert.deepEqual(task.payload, { requestId: res.headers['x-openstack-request-id'] });
    const view = json(await show(alice, id)).instance;
    assert.equal(view.status, 'REBOOT');
    assert.equal(view.operating_status, '');
  });

  test('of two actions asked at once, one is accepted and the other refused by the gate', async () => {
    const id = await insertInstance(alice);
    const answers = await Promise.all([act(alice, id, { restart: {} }), act(alice, id, { resize: { volume: { size: 3 } } })]);
    assert.deepEqual(answers.map((r) => r.statusCode).sort(), [202, 422]);
    const refused = answers.find((r) => r.statusCode === 422)!;
    assert.match(json(refused).unprocessableEntity.message, /\(task status was (REBOOTING|RESIZING)\)\.$/);
    const restartWon = answers[0]!.statusCode === 202;
    assert.equal((await h.store.instances.get(id))?.taskStatus, restartWon ? 'REBOOTING' : 'RESIZING');
    assert.equal((await h.store.tasks.activeForInstance(id))?.kind, restartWon ? 'restart' : 'resize_volume');
  });

  test('is allowed for a stopped or crashed database and while a restart is required', async () => {
    for (const [service, task] of [['SHUTDOWN', 'NONE'], ['CRASHED', 'NONE'], ['RUNNING', 'RESTART_REQUIRED']] as const) {
      const id = await insertInstance(alice, { service, task });
      await assertAccepted(await act(alice, id, { restart: {} }));
      assert.equal((await h.store.instances.get(id))?.taskStatus, 'REBOOTING');
    }
  });

  const gated: [string, InstanceOptions, string][] = [
    ['building', { task: 'BUILDING', service: 'NEW' }, 'instance status was BUILD'],
    ['failed to build', { task: 'BUILDING_ERROR_SERVER', service: 'FAILED' }, 'instance status was ERROR'],
    ['rebooting', { task: 'REBOOTING', service: 'RESTARTING' }, 'task status was REBOOTING'],
    ['resizing', { task: 'RESIZING' }, 'task status was RESIZING'],
    ['deleting', { task: 'DELETING' }, 'task status was DELETING'],
    ['in a failed access update', { task: 'UPDATING_ERROR_ACCESS' }, 'task status was UPDATING'],
    ['with a service status of UNKNOWN (after reset_status)', { service: 'UNKNOWN' }, 'instance status was ACTIVE'],
    ['with a silent guest', { heartbeatAt: new Date(Date.now() - 10 * 60_000) }, 'instance status was ACTIVE'],
  ];
  for (const [name, options, reason] of gated) {
    test(`is refused with 422 when the instance is ${name}`, async () => {
      const id = await insertInstance(alice, options);
      const castsBefore = h.casts.length;
      assertFault(
        await act(alice, id, { restart: {} }),
        422,
        'unprocessableEntity',
        `Instance ${id} is not currently available for an action to be performed (${reason}).`,
      );
      assert.equal((await h.store.instances.get(id))?.taskStatus, options.task ?? 'NONE');
      assert.equal(await h.store.tasks.activeForInstance(id), undefined);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(h.casts.length, castsBefore);
    });
  }
});

describe('POST /instances/{id}/action resize', () => {
  test('flavor: sets RESIZING and queues resize_flavor with the old and new flavor; the flavor changes only later', async () => {
    const id = await insertInstance(alice, { flavorId: '2' });
    const castsBefore = h.casts.length;
    await assertAccepted(await act(alice, id, { resize: { flavorRef: 'https://db.example/v1.0/x/flavors/3' } }));
    const row = await h.store.instances.get(id);
    assert.equal(row?.taskStatus, 'RESIZING');
    assert.equal(row?.flavorId, '2');
    assert.equal(row?.desiredGeneration, 2);
    const task = await queuedTask(id, castsBefore);
    assert.equal(task.kind, 'resize_flavor');
    assert.deepEqual(task.payload, { requestId: h.casts.at(-1)?.requestId, resumeTask: 'NONE', oldFlavorId: '2', newFlavorId: '3' });
    assert.equal(json(await show(alice, id)).instance.status, 'RESIZE');
  });

  test('flavor: the same flavor or an unknown one is 400', async () => {
    const id = await insertInstance(alice, { flavorId: '2' });
    assertFault(await act(alice, id, { resize: { flavorRef: 2 } }), 400, 'badRequest', "The new flavor id must be different than the current flavor id of '2'.");
    assertFault(await act(alice, id, { resize: { flavorRef: '99' } }), 400, 'badRequest', 'Resource 99 cannot be found.');
    assert.equal((await h.store.instances.get(id))?.taskStatus, 'NONE');
  });

  test('a resize asked while a restart is owed (RESTART_REQUIRED) tells the flow to keep it owed', async () => {
    for (const resize of [{ flavorRef: '3' }, { volume: { size: 3 } }]) {
      const id = await insertInstance(alice, { task: 'RESTART_REQUIRED' });
      const castsBefore = h.casts.length;
      await assertAccepted(await act(alice, id, { resize }));
      const task = await queuedTask(id, castsBefore);
      assert.equal((task.payload as { resumeTask?: string }).resumeTask, 'RESTART_REQUIRED');
    }
  });

  test('volume: grows only, up to the maximum, and queues resize_volume', async () => {
    const id = await insertInstance(alice, { volumeSizeGb: 2 });
    assertFault(await act(alice, id, { resize: { volume: { size: 2 } } }), 400, 'badRequest', "The new volume 'size' must be larger than the current volume size of '2'.");
    assertFault(await act(alice, id, { resize: { volume: { size: 1 } } }), 400, 'badRequest', "The new volume 'size' must be larger than the current volume size of '2'.");
    assertFault(await act(alice, id, { resize: { volume: { size: 11 } } }), 413, 'overLimit', "Volume 'size' cannot exceed maximum of 10 GB, 11 cannot be accepted.");
    const castsBefore = h.casts.length;
    await assertAccepted(await act(alice, id, { resize: { volume: { size: '5' } } }));
    const row = await h.store.instances.get(id);
    assert.equal(row?.taskStatus, 'RESIZING');
    assert.equal(row?.volumeSizeGb, 5, 'recorded with the task, so that quotas count it at once');
    assert.equal(row?.desiredGeneration, 1, 'the volume is not part of what the engine is rendered from');
    const task = await queuedTask(id, castsBefore);
    assert.equal(task.kind, 'resize_volume');
    assert.deepEqual(task.payload, { requestId: h.casts.at(-1)?.requestId, resumeTask: 'NONE', oldSizeGb: 2, newSizeGb: 5 });
    // the gate now sees the running resize
    assertFault(
      await act(alice, id, { resize: { volume: { size: 6 } } }),
      422,
      'unprocessableEntity',
      `Instance ${id} is not currently available for an action to be performed (task status was RESIZING).`,
    );
  });

  const invalid: [string, unknown, string | RegExp][] = [
    ['both a flavor and a volume', { resize: { flavorRef: '3', volume: { size: 3 } } }, 'Not allowed to resize volume and flavor at the same time.'],
    ['neither a flavor nor a volume', { resize: {} }, 'Missing resize arguments.'],
    ['a volume without a size', { resize: { volume: {} } }, "Validation error: resize.volume 'size' is a required property"],
    ['a size of 0', { resize: { volume: { size: 0 } } }, /^Validation error: resize\.volume\.size/],
    ['a size that is not a number', { resize: { volume: { size: 'big' } } }, /^Validation error: resize\.volume\.size/],
    ['an empty flavorRef', { resize: { flavorRef: '' } }, /^Validation error: resize\.flavorRef/],
    ['resize not an object', { resize: 'm1.large' }, /^Validation error: resize/],
  ];
  for (const [name, payload, message] of invalid) {
    test(`refuses ${name} with 400`, async () => {
      const id = await insertInstance(alice);
      assertFault(await act(alice, id, payload), 400, 'badRequest', message);
      assert.equal((await h.store.instances.get(id))?.taskStatus, 'NONE');
    });
  }
});

describe('POST /instances/{id}/action reset_status', () => {
  test('is admin only (403 for the owner) unless force_delete is given', async () => {
    const id = await insertInstance(alice, { task: 'UPDATING_ERROR_ACCESS' });
    assertFault(await act(alice, id, { reset_status: {} }), 403, 'forbidden', "Policy doesn't allow instance:reset_status to be performed.");
    assert.equal((await h.store.instances.get(id))?.taskStatus, 'UPDATING_ERROR_ACCESS');
    await assertAccepted(await act(alice, id, { reset_status: { force_delete: true } }));
    assert.equal((await h.store.instances.get(id))?.taskStatus, 'NONE');
    assertFault(await act(bob, id, { reset_status: { force_delete: true } }), 404, 'itemNotFound', `Resource ${id} cannot be found.`);
  });

  test('rescues a failed instance: no task, service UNKNOWN, ACTIVE with operating_status ERROR until the next heartbeat', async () => {
    const id = await insertInstance(alice, { task: 'BUILDING_ERROR_SERVER', service: 'FAILED' });
    assert.equal(json(await show(alice, id)).instance.status, 'ERROR');
    await assertAccepted(await act(admin, id, { reset_status: null }));
    const row = await h.store.instances.get(id);
    assert.equal(row?.taskStatus, 'NONE');
    assert.equal(row?.taskStartTime, null);
    assert.equal((await h.store.serviceStatuses.get(id))?.status, 'UNKNOWN');
    assert.equal(await h.store.tasks.activeForInstance(id), undefined, 'nothing is queued');
    const view = json(await show(alice, id)).instance;
    assert.equal(view.status, 'ACTIVE');
    assert.equal(view.operating_status, 'ERROR');

    await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: new Date() }); // the next heartbeat
    assert.equal(json(await show(alice, id)).instance.operating_status, 'HEALTHY');
    await assertAccepted(await act(alice, id, { restart: {} }));
  });
});

describe('POST /instances/{id}/action (any action)', () => {
  test('replication actions answer as for an instance that is neither replica nor source', async () => {
    const id = await insertInstance(alice);
    assertFault(await act(alice, id, { promote_to_replica_source: {} }), 400, 'badRequest', `Instance ${id} is not a replica.`);
    assertFault(await act(alice, id, { eject_replica_source: {} }), 400, 'badRequest', `Instance ${id} is not a replica source.`);
  });

  const invalid: [string, unknown, string | RegExp][] = [
    ['an unknown action', { reboot: {} }, 'Invalid instance action: reboot. Expected one of restart, resize, reset_status, promote_to_replica_source, eject_replica_source, stop, start.'],
    ['no action', {}, /^No action given/],
    ['two actions', { restart: {}, reset_status: {} }, 'Only one action may be performed at a time, not restart and reset_status.'],
    ['restart not an object', { restart: 1 }, /^Validation error: restart /],
    ['a body that is a list', [{ restart: {} }], /^Validation error: /],
    ['force_delete not a boolean', { reset_status: { force_delete: 'yes' } }, /^Validation error: reset_status\.force_delete/],
  ];
  for (const [name, payload, message] of invalid) {
    test(`refuses ${name} with 400`, async () => {
      const id = await insertInstance(alice);
      assertFault(await act(alice, id, payload), 400, 'badRequest', message);
      assert.equal((await h.store.instances.get(id))?.taskStatus, 'NONE');
    });
  }

  test('an unknown instance, or another project’s, is 404; a known action with extra keys is accepted', async () => {
    assertFault(await act(alice, 'nope', { restart: {} }), 404, 'itemNotFound', 'Resource nope cannot be found.');
    const id = await insertInstance(alice);
    assertFault(await act(bob, id, { restart: {} }), 404, 'itemNotFound', `Resource ${id} cannot be found.`);
    await assertAccepted(await act(alice, id, { restart: {}, note: 'ignored, as Trove allows' }));
  });
});

describe('read replicas (POST /instances replica_of, views, delete, detach, replication actions)', () => {
  const create = (s: Session, instance: Record<string, unknown>) =>
    h.app.inject({ method: 'POST', url: url(s), headers: headers(s), payload: { instance } });

  test("makes replica_count replicas named <name>-1..n with the source's flavor, version and volume, each with its create task; views link both ways", async () => {
    const source = await insertInstance(alice, { version: 'pgRepl', flavorId: '3', volumeSizeGb: 4 });
    const castsBefore = h.casts.length;
    const res = await create(alice, { name: 'ro', replica_of: source, replica_count: 2 });
    assert.equal(res.statusCode, 200, res.body);
    const view = json(res).instance;
    assert.equal(view.name, 'ro-2');
    assert.equal(view.status, 'BUILD');
    assert.deepEqual(view.replica_of, { id: source, links: view.replica_of.links });
    assert.match(view.replica_of.links[0].href, new RegExp(`/instances/${source}$`));
    assert.equal(view.flavor.id, '3');
    assert.equal(view.volume.size, 4);
    const rows = (await h.store.instances.listAll({ tenantId: alice.projectId })).filter((i) => i.replicaOfId === source);
    assert.deepEqual(rows.map((r) => r.name).sort(), ['ro-1', 'ro-2']);
    for (const row of rows) {
      assert.equal(row.datastoreVersionId, versions.pgRepl);
      assert.equal((await h.store.tasks.activeForInstance(row.id))?.kind, 'create_instance');
    }
    await until('both wake-up casts', () => h.casts.length >= castsBefore + 2);
    const shown = json(await show(alice, source)).instance;
    assert.deepEqual(shown.replicas.map((r: { id: string }) => r.id), rows.map((r) => r.id).sort());
    assert.equal(shown.replica_of, undefined);
  });

  test('takes a flavor, a volume and the datastore when given, as far as a replica can run on them (Debian’s trove create always sends a flavor)', async () => {
    const source = await insertInstance(alice, { version: 'pgRepl', flavorId: '3', volumeSizeGb: 4 });
    const res = await create(alice, { name: 'given', replica_of: source, flavorRef: '4', volume: { size: 6 }, datastore: { type: 'postgresql' } });
    assert.equal(res.statusCode, 200, res.body);
    const view = json(res).instance;
    assert.equal(view.flavor.id, '4');
    assert.equal(view.volume.size, 6);
    assert.equal(view.replica_of.id, source);
    assert.equal(((await h.store.tasks.activeForInstance(view.id))?.payload as { locality?: string }).locality, undefined, 'no locality asked: the flow’s default');
    const near = json(await create(alice, { name: 'near', replica_of: source, locality: 'affinity' })).instance;
    assert.equal(((await h.store.tasks.activeForInstance(near.id))?.payload as { locality?: string }).locality, 'affinity');
    const same = await create(alice, { name: 'same', replica_of: source, flavorRef: '3' });
    assert.equal(same.statusCode, 200, same.body);
    assert.equal(json(same).instance.volume.size, 4, 'the source’s volume when none is given');
  });

  test("refuses what Trove refuses, in Trove's words, and creates nothing", async () => {
    const source = await insertInstance(alice, { version: 'pgRepl' });
    const replica = await insertInstance(alice, { version: 'pgRepl' });
    await h.store.instances.update(replica, { replicaOfId: source });
    const noReplication = await insertInstance(alice, { version: 'pg15' });
    const building = await insertInstance(alice, { version: 'pgRepl', task: 'BUILDING', service: 'NEW' });
    const bobs = await insertInstance(bob, { version: 'pgRepl' });
    const before = (await h.store.instances.listAll({})).length;
    assertFault(await create(alice, { name: 'r', replica_of: source, datastore: { type: 'mysql' } }), 400, 'badRequest', /^A replica runs its source's datastore, postgresql /);
    assertFault(await create(alice, { name: 'r', replica_of: source, volume: { size: 1 } }), 400, 'badRequest', /1 GB is less than the 2 GB of instance/);
    assertFault(await create(alice, { name: 'r', replica_of: source, flavorRef: '1' }), 400, 'badRequest', /m1.tiny has 256 MB of RAM, less than the 512 MB of instance .*a replica needs at least as much as its source/);
    assertFault(await create(alice, { name: 'r', replica_of: source, flavorRef: '99' }), 400, 'badRequest', 'Resource 99 cannot be found.');
    assertFault(await create(alice, { name: 'r', replica_of: source, databases: [{ name: 'app' }] }), 400, 'badRequest', 'Cannot create a replica with users or databases.');
    assertFault(await create(alice, { name: 'r', replica_of: bobs }), 404, 'itemNotFound', `Resource ${bobs} cannot be found.`);
    assertFault(await create(alice, { name: 'r', replica_of: replica }), 401, 'unauthorized', `Cannot create a replica of a replica ${replica}.`);
    assertFault(await create(alice, { name: 'r', replica_of: noReplication }), 400, 'badRequest', 'Replication is not supported for datastore postgresql 15.');
    assertFault(await create(alice, { name: 'r', replica_of: building }), 422, 'unprocessableEntity', `Instance ${building} is not currently available for an action to be performed (instance status was BUILD).`);
    assertFault(await create(alice, { name: 'r', replica_of: source, replica_count: 4 }), 400, 'badRequest', /^Validation error: instance\.replica_count/);
    assertFault(await create(alice, { name: 'r', flavorRef: '1', volume: { size: 1 }, datastore: { type: 'postgresql' }, replica_count: 2 }), 400, 'badRequest', 'replica_count can only be set when creating replicas.');
    assert.equal((await h.store.instances.listAll({})).length, before);
  });

  test('a replica never has less memory than its source: replicas grow first, sources shrink last', async () => {
    const source = await insertInstance(alice, { version: 'pgRepl', flavorId: '3' });
    const replica = await insertInstance(alice, { version: 'pgRepl', flavorId: '3' });
    await h.store.instances.update(replica, { replicaOfId: source });
    assertFault(
      await act(alice, replica, { resize: { flavorRef: '2' } }),
      400,
      'badRequest',
      `Instance ${replica} is a replica of ${source}, which has 1024 MB of RAM: a replica needs at least as much as its source.`,
    );
    assertFault(
      await act(alice, source, { resize: { flavorRef: '4' } }),
      400,
      'badRequest',
      `Instance ${source} has replica ${replica} with 1024 MB of RAM: resize its replicas to at least 2048 MB first.`,
    );
    await assertAccepted(await act(alice, replica, { resize: { flavorRef: '4' } }));
    await assertAccepted(await act(alice, source, { resize: { flavorRef: '2' } }));
  });

  test('a source with replicas is not deleted (403 ReplicaSourceDeleteForbidden); a replica detaches (DETACHING) and answers the replication actions', async () => {
    const source = await insertInstance(alice, { version: 'pgRepl' });
    const replica = await insertInstance(alice, { version: 'pgRepl' });
    await h.store.instances.update(replica, { replicaOfId: source });
    const deleting = await h.app.inject({ method: 'DELETE', url: url(alice, `/${source}`), headers: headers(alice) });
    assertFault(deleting, 403, 'forbidden', 'Detach replicas before deleting replica source.');
    assert.equal(await h.store.tasks.activeForInstance(source), undefined);
    assert.equal((await h.store.instances.get(source))?.taskStatus, 'NONE');

    assertFault(await act(alice, source, { eject_replica_source: {} }), 400, 'badRequest', `Replica Source ${source} cannot be ejected as it has a current heartbeat`);
    assertFault(await act(alice, replica, { eject_replica_source: {} }), 400, 'badRequest', `Instance ${replica} is not a replica source.`);

    // its databases, users and root are its source's
    const refusal = `Instance ${replica} is a read replica of ${source}: its databases, users and root come from its source; change them there.`;
    const write = (method: 'POST' | 'DELETE' | 'PUT', path: string, payload?: object) =>
      h.app.inject({ method, url: url(alice, `/${replica}${path}`), headers: headers(alice), ...(payload === undefined ? {} : { payload }) });
    assertFault(await write('POST', '/databases', { databases: [{ name: 'later' }] }), 400, 'badRequest', refusal);
    assertFault(await write('DELETE', '/databases/app'), 400, 'badRequest', refusal);
    assertFault(await write('POST', '/users', { users: [{ name: 'u', password: 'U-pass-123456' }] }), 400, 'badRequest', refusal);
    assertFault(await write('POST', '/root'), 400, 'badRequest', refusal);

    const castsBefore = h.casts.length;
    await assertAccepted(await put(alice, replica, { instance: { slave_of: null } }, 'PATCH'));
    assert.equal((await queuedTask(replica, castsBefore)).kind, 'detach_replica');
    const detaching = json(await show(alice, replica)).instance;
    assert.equal(detaching.status, 'DETACH');
    assert.equal((await h.store.instances.get(replica))?.taskStatus, 'DETACHING');
    // while it detaches, nothing else is taken on
    assertFault(await put(alice, replica, { instance: { replica_of: null } }), 422, 'unprocessableEntity', /not currently available for an action to be performed \(task status was DETACHING\)/);
  });

  test('promote sets PROMOTING on the whole group and queues the switchover on the replica', async () => {
    const source = await insertInstance(alice, { version: 'pgRepl' });
    const [first, second] = [await insertInstance(alice, { version: 'pgRepl' }), await insertInstance(alice, { version: 'pgRepl' })];
    for (const replica of [first, second]) await h.store.instances.update(replica, { replicaOfId: source });
    assertFault(await act(alice, source, { promote_to_replica_source: {} }), 400, 'badRequest', `Instance ${source} is not a replica.`);

    const castsBefore = h.casts.length;
    await assertAccepted(await act(alice, first, { promote_to_replica_source: {} }));
    const task = await queuedTask(first, castsBefore);
    assert.equal(task.kind, 'promote_to_replica_source');
    assert.deepEqual({ ...(task.payload as object), requestId: undefined }, { requestId: undefined, sourceId: source, replicaIds: [first, second].sort() });
    for (const id of [source, first, second]) assert.equal((await h.store.instances.get(id))?.taskStatus, 'PROMOTING');
    assert.equal(json(await show(alice, first)).instance.status, 'PROMOTE');
    // the group is busy: a second promotion is refused
    assertFault(await act(alice, second, { promote_to_replica_source: {} }), 422, 'unprocessableEntity', /task status was PROMOTING/);
  });

  test('eject is refused while the source heartbeats or holds its primary lease; once both are old it fences the source and queues the failover', async () => {
    const source = await insertInstance(alice, { version: 'pgRepl' });
    const replica = await insertInstance(alice, { version: 'pgRepl' });
    await h.store.instances.update(replica, { replicaOfId: source });
    const longAgo = new Date(Date.now() - 10 * 60_000);
    await h.store.serviceStatuses.set({ instanceId: source, status: 'HEALTHY', updatedAt: longAgo });
    await h.store.instances.update(source, { leaseRenewedAt: new Date() });
    assertFault(await act(alice, source, { eject_replica_source: {} }), 400, 'badRequest', `Replica Source ${source} cannot be ejected as it has a current heartbeat`);

    await h.store.instances.update(source, { leaseRenewedAt: longAgo });
    const castsBefore = h.casts.length;
    await assertAccepted(await act(alice, source, { eject_replica_source: {} }));
    assert.equal((await queuedTask(source, castsBefore)).kind, 'eject_replica_source');
    const fenced = await h.store.instances.get(source);
    assert.equal(fenced?.taskStatus, 'EJECTING');
    assert.ok(fenced?.fencedAt instanceof Date);
    assert.equal((await h.store.instances.get(replica))?.taskStatus, 'EJECTING');
    // a fenced primary's lease is never renewed again
    assert.equal(await h.store.instances.renewLease(source, new Date()), false);
  });

  test("a primary's volume resize grows its smaller replicas with it, each with a resize of its own", async () => {
    const source = await insertInstance(alice, { version: 'pgRepl', volumeSizeGb: 2 });
    const small = await insertInstance(alice, { version: 'pgRepl', volumeSizeGb: 2 });
    const large = await insertInstance(alice, { version: 'pgRepl', volumeSizeGb: 6 });
    for (const replica of [small, large]) await h.store.instances.update(replica, { replicaOfId: source });
    await assertAccepted(await act(alice, source, { resize: { volume: { size: 4 } } }));
    for (const id of [source, small]) {
      const row = await h.store.instances.get(id);
      assert.equal(row?.taskStatus, 'RESIZING');
      assert.equal(row?.volumeSizeGb, 4);
      const task = await h.store.tasks.activeForInstance(id);
      assert.equal(task?.kind, 'resize_volume');
      assert.deepEqual({ ...(task?.payload as object), requestId: undefined }, { requestId: undefined, resumeTask: 'NONE', oldSizeGb: 2, newSizeGb: 4 });
    }
    // already larger: left as it is
    assert.equal((await h.store.instances.get(large))?.taskStatus, 'NONE');
    assert.equal(await h.store.tasks.activeForInstance(large), undefined);
  });

  test('a busy replica refuses its primary’s volume resize, and nothing is queued', async () => {
    const source = await insertInstance(alice, { version: 'pgRepl', volumeSizeGb: 2 });
    const replica = await insertInstance(alice, { version: 'pgRepl', volumeSizeGb: 2 });
    await h.store.instances.update(replica, { replicaOfId: source, taskStatus: 'REBOOTING' });
    assertFault(await act(alice, source, { resize: { volume: { size: 4 } } }), 422, 'unprocessableEntity', /task status was REBOOTING/);
    assert.equal((await h.store.instances.get(source))?.taskStatus, 'NONE');
    assert.equal((await h.store.instances.get(source))?.volumeSizeGb, 2);
    assert.equal(await h.store.tasks.activeForInstance(source), undefined);
  });
});

describe('GET /instances/{id} after its host agent restarted', () => {
  test('shows awaiting_adoption with the last status heard until the instance’s own next heartbeat', async () => {
    const id = await insertInstance(alice);
    assert.equal(json(await show(alice, id)).instance.awaiting_adoption, undefined);
    await h.store.serviceStatuses.markAwaitingAdoption([id]);
    const waiting = json(await show(alice, id)).instance;
    assert.equal(waiting.awaiting_adoption, true);
    assert.equal(waiting.status, 'ACTIVE');
    await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: new Date() });
    assert.equal(json(await show(alice, id)).instance.awaiting_adoption, undefined);
  });
});
