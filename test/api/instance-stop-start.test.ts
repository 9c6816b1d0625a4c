import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newUuid } from '../../src/common/ids.js';
import { noEngineCapabilities } from '../../src/common/index.js';
import type { ServiceStatusName, TaskStatusName } from '../../src/db/index.js';
import { adminSession, json, memberSession, startHarness, type Harness, type Session } from './api-harness.js';
import { until } from '../support/wait.js';

// Coffer's stop and start (issue 13), POST /instances/{id}/action {"stop": {}} / {"start": {}},
// over HTTP against the real API and state store; a recording consumer stands in for the
// taskmanager. The flows themselves: test/taskmanager/instance-action-flows.test.ts.

let h: Harness;
let admin: Session;
let alice: Session;
let bob: Session;
let versionId = '';

before(async () => {
  h = await startHarness();
  admin = await adminSession(h.app);
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
  const pg = await h.store.datastores.ensureDatastore('postgresql', newUuid());
  const capabilities = { ...noEngineCapabilities, accessRules: true, databases: true, users: true, root: true, backup: true, configurationGroups: true };
  versionId = (
    await h.store.datastores.upsertVersion({
      id: newUuid(),
      datastoreId: pg.id,
      name: '15',
      version: '15.1',
      manager: 'postgresql',
      active: true,
      inactiveReason: null,
      updatedAt: new Date(),
      capabilities,
    })
  ).id;
});
after(() => h.close());

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });
const url = (s: Session, path = '') => `/v1.0/${s.projectId}/instances${path}`;

/** An instance row as a finished create leaves it, or in the state a test needs. */
async function insertInstance(s: Session, options: { task?: TaskStatusName; service?: ServiceStatusName; heartbeatAt?: Date } = {}): Promise<string> {
  const id = newUuid();
  const now = new Date();
  await h.store.instances.create({
    id,
    name: `db-${id.slice(0, 6)}`,
    tenantId: s.projectId,
    flavorId: '2',
    volumeSizeGb: 3,
    datastoreVersionId: versionId,
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

/** What a finished stop leaves: the instance at rest in STOPPED, its guest heartbeating SHUTDOWN. */
const stoppedInstance = (s: Session) => insertInstance(s, { task: 'STOPPED', service: 'SHUTDOWN' });

function act(s: Session, id: string, payload: unknown) {
  return h.app.inject({ method: 'POST', url: url(s, `/${id}/action`), headers: headers(s), payload: payload as object });
}

function call(s: Session, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, payload?: unknown) {
  return h.app.inject({ method, url: `/v1.0/${s.projectId}${path}`, headers: headers(s), ...(payload === undefined ? {} : { payload: payload as object }) });
}

async function view(s: Session, id: string) {
  return json(await h.app.inject({ method: 'GET', url: url(s, `/${id}`), headers: headers(s) })).instance;
}

function assertFault(res: { statusCode: number; body: string }, status: number, fault: string, message: string | RegExp): void {
  assert.equal(res.statusCode, status, res.body);
  const parsed = JSON.parse(res.body);
  assert.deepEqual(Object.keys(parsed), [fault]);
  assert.equal(parsed[fault].code, status);
  if (typeof message === 'string') assert.equal(parsed[fault].message, message);
  else assert.match(parsed[fault].message, message);
}

/** The task queued for the instance, once the taskmanager was woken for it. */
async function queuedTask(id: string, castsBefore: number) {
  const task = await h.store.tasks.activeForInstance(id);
  assert.ok(task, 'a task row was written');
  await until('the wake-up cast', () => h.casts.length > castsBefore);
  assert.equal(h.casts.at(-1)?.taskId, task.id);
  return task;
}

const unavailable = (id: string, status: string) => `Instance ${id} is not currently available for an action to be performed (instance status was ${status}).`;

describe('POST /instances/{id}/action stop', () => {
  test('the owner stops an ACTIVE instance: 202, STOPPING, a stop task; address and volume stay', async () => {
    const id = await insertInstance(alice);
    const castsBefore = h.casts.length;
    const res = await act(alice, id, { stop: {} });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.body, '');
    const row = await h.store.instances.get(id);
    assert.equal(row?.taskStatus, 'STOPPING');
    assert.equal(row?.desiredGeneration, 1, 'a stop changes no rendered setting: the generation stays');
    const task = await queuedTask(id, castsBefore);
    assert.equal(task.kind, 'stop');
    assert.deepEqual(task.payload, { requestId: res.headers['x-openstack-request-id'], resumeTask: 'NONE' });
    const shown = await view(alice, id);
    assert.equal(shown.status, 'STOPPING');
    assert.equal(shown.operating_status, '');
    assert.equal(shown.addresses[0].address, '127.95.0.20');
    assert.equal(shown.volume.size, 3);
  });

  test('an instance whose restart is owed may be stopped; the failed stop would return it to RESTART_REQUIRED', async () => {
    const id = await insertInstance(alice, { task: 'RESTART_REQUIRED', service: 'RESTART_REQUIRED' });
    await assert.doesNotReject(async () => assert.equal((await act(alice, id, { stop: {} })).statusCode, 202));
    assert.deepEqual(((await h.store.tasks.activeForInstance(id))?.payload as { resumeTask: string }).resumeTask, 'RESTART_REQUIRED');
  });

  test('an admin may stop another project’s instance; another member may not see it (404)', async () => {
    const id = await insertInstance(bob);
    const nosy = await act(alice, id, { stop: {} });
    assert.equal(nosy.statusCode, 404, nosy.body);
    assert.equal((await h.store.instances.get(id))?.taskStatus, 'NONE');
    const adminId = await insertInstance(admin);
    assert.equal((await act(admin, adminId, { stop: {} })).statusCode, 202);
  });

  test('a stopped instance is 409 Conflict, saying it is already stopped', async () => {
    const id = await stoppedInstance(alice);
    assertFault(await act(alice, id, { stop: {} }), 409, 'conflict', `${unavailable(id, 'SHUTOFF')} It is already stopped.`);
  });

  for (const [name, task, service, status] of [
    ['building', 'BUILDING', 'BUILDING', 'BUILD'],
    ['restarting', 'REBOOTING', 'RESTARTING', 'REBOOT'],
    ['stopping', 'STOPPING', 'HEALTHY', 'STOPPING'],
    ['starting', 'STARTING', 'SHUTDOWN', 'STARTING'],
    ['down (its engine stopped on its own)', 'NONE', 'SHUTDOWN', 'SHUTDOWN'],
    ['failed', 'NONE', 'FAILED', 'ERROR'],
  ] as const) {
    test(`an instance ${name} is 409 Conflict naming its status ${status}`, async () => {
      const id = await insertInstance(alice, { task, service });
      assertFault(await act(alice, id, { stop: {} }), 409, 'conflict', unavailable(id, status));
      assert.equal((await h.store.instances.get(id))?.taskStatus, task, 'nothing changed');
    });
  }

  test('an instance taking a backup is 409 (BACKUP); one whose guest fell silent is 409 and says so', async () => {
    const backing = await insertInstance(alice);
    const now = new Date();
    await h.store.backups.create({
      id: newUuid(),
      tenantId: alice.projectId,
      name: 'b',
      description: null,
      instanceId: backing,
      parentId: null,
      datastoreVersionId: versionId,
      backupType: 'full',
      state: 'BUILDING',
      container: 'database_backups',
      objectName: 'b.zst.enc',
      createdAt: now,
      updatedAt: now,
    });
    assertFault(await act(alice, backing, { stop: {} }), 409, 'conflict', unavailable(backing, 'BACKUP'));
    const silent = await insertInstance(alice, { heartbeatAt: new Date(Date.now() - 10 * 60_000) });
    assertFault(await act(alice, silent, { stop: {} }), 409, 'conflict', /\(instance status was ACTIVE\)\. Its guest has not reported for over 90 s/);
  });

  test('the body is Trove-shaped: stop must be an object', async () => {
    const id = await insertInstance(alice);
    assertFault(await act(alice, id, { stop: 'now' }), 400, 'badRequest', /^Validation error: /);
    assertFault(await act(alice, id, { stop: {}, start: {} }), 400, 'badRequest', 'Only one action may be performed at a time, not stop and start.');
  });
});

describe('a stopped instance (SHUTOFF)', () => {
  test('shows SHUTOFF with its guest’s SHUTDOWN, or ERROR once the guest fell silent; address and volume kept', async () => {
    const id = await stoppedInstance(alice);
    const shown = await view(alice, id);
    assert.equal(shown.status, 'SHUTOFF');
    assert.equal(shown.operating_status, 'SHUTDOWN');
    assert.equal(shown.addresses[0].address, '127.95.0.20');
    assert.equal(shown.volume.size, 3);
    const listed = json(await call(alice, 'GET', '/instances')).instances.find((i: { id: string }) => i.id === id);
    assert.equal(listed.status, 'SHUTOFF');
    await h.store.serviceStatuses.set({ instanceId: id, status: 'SHUTDOWN', updatedAt: new Date(Date.now() - 10 * 60_000) });
    assert.equal((await view(alice, id)).operating_status, 'ERROR');
  });

  test('still counts against the project’s quotas: the instance, its RAM and its volume', async () => {
    const carol = await memberSession(h, 'carol');
    await stoppedInstance(carol);
    const res = await call(carol, 'GET', `/mgmt/quotas/${carol.projectId}`);
    assert.equal(res.statusCode, 200, res.body);
    const inUse = Object.fromEntries(json(res).quotas.map((q: { resource: string; in_use: number }) => [q.resource, q.in_use]));
    assert.equal(inUse.instances, 1);
    assert.equal(inUse.volumes, 3);
    assert.ok(inUse.ram > 0, `ram in use: ${inUse.ram}`);
  });

  const startFirst = / It is stopped: start it first\.$/;
  for (const [name, body] of [
    ['restart', { restart: {} }],
    ['resize of the flavor', { resize: { flavorRef: '3' } }],
    ['resize of the volume', { resize: { volume: { size: 5 } } }],
  ] as const) {
    test(`refuses a ${name} with Trove's 422, saying it is stopped`, async () => {
      const id = await stoppedInstance(alice);
      assertFault(await act(alice, id, body), 422, 'unprocessableEntity', new RegExp(`^${unavailable(id, 'SHUTOFF').replace(/[().]/g, '\\$&')}${startFirst.source.slice(0)}`));
      assert.equal((await h.store.instances.get(id))?.taskStatus, 'STOPPED');
      assert.equal(await h.store.tasks.activeForInstance(id), undefined);
    });
  }

  test('refuses backups, databases, users, root and access changes with 422 (start it first); configuration attach with Trove’s 400', async () => {
    const id = await stoppedInstance(alice);
    const stoppedMessage = `${unavailable(id, 'SHUTOFF')} It is stopped: start it first.`;
    assertFault(await call(alice, 'POST', '/backups', { backup: { name: 'b', instance: id } }), 422, 'unprocessableEntity', stoppedMessage);
    assertFault(await call(alice, 'GET', `/instances/${id}/databases`), 422, 'unprocessableEntity', stoppedMessage);
    assertFault(await call(alice, 'POST', `/instances/${id}/users`, { users: [{ name: 'u', password: 'Secret-pass-123' }] }), 422, 'unprocessableEntity', stoppedMessage);
    assertFault(await call(alice, 'POST', `/instances/${id}/root`), 422, 'unprocessableEntity', stoppedMessage);
    assertFault(await call(alice, 'PUT', `/instances/${id}`, { instance: { access: { allowed_cidrs: ['10.0.0.0/8'] } } }), 422, 'unprocessableEntity', stoppedMessage);
    // Trove checks the instance before it looks the group up
    const group = { id: newUuid() };
    assertFault(
      await call(alice, 'PUT', `/instances/${id}`, { instance: { configuration: group.id } }),
      400,
      'badRequest',
      'The operation you have requested cannot be executed because the instance status is currently: SHUTOFF.',
    );
    assert.equal((await h.store.instances.get(id))?.taskStatus, 'STOPPED');
  });

  test('may be deleted', async () => {
    const id = await stoppedInstance(alice);
    const res = await call(alice, 'DELETE', `/instances/${id}`);
    assert.equal(res.statusCode, 202, res.body);
    assert.equal((await h.store.instances.get(id))?.taskStatus, 'DELETING');
  });
});

describe('POST /instances/{id}/action start', () => {
  test('the owner starts a stopped instance: 202, STARTING, a start task', async () => {
    const id = await stoppedInstance(alice);
    const castsBefore = h.casts.length;
    const res = await act(alice, id, { start: {} });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal((await h.store.instances.get(id))?.taskStatus, 'STARTING');
    const task = await queuedTask(id, castsBefore);
    assert.equal(task.kind, 'start');
    assert.deepEqual(task.payload, { requestId: res.headers['x-openstack-request-id'] });
    assert.equal((await view(alice, id)).status, 'STARTING');
  });

  test('an instance that is not stopped is 409 Conflict naming its status', async () => {
    const active = await insertInstance(alice);
    assertFault(await act(alice, active, { start: {} }), 409, 'conflict', `${unavailable(active, 'ACTIVE')} It is not stopped.`);
    const starting = await insertInstance(alice, { task: 'STARTING', service: 'SHUTDOWN' });
    assertFault(await act(alice, starting, { start: {} }), 409, 'conflict', unavailable(starting, 'STARTING'));
    const stopping = await insertInstance(alice, { task: 'STOPPING' });
    assertFault(await act(alice, stopping, { start: {} }), 409, 'conflict', unavailable(stopping, 'STOPPING'));
    // Trove's admin stop leaves the engine down without the owner's stop: restart brings it back
    const adminStopped = await insertInstance(alice, { service: 'SHUTDOWN' });
    assertFault(await act(alice, adminStopped, { start: {} }), 409, 'conflict', unavailable(adminStopped, 'SHUTDOWN'));
  });

  test('of a stop and a start asked at once on a stopped instance, only the start is accepted', async () => {
    const id = await stoppedInstance(alice);
    const [stop, start] = await Promise.all([act(alice, id, { stop: {} }), act(alice, id, { start: {} })]);
    assert.equal(stop.statusCode, 409, stop.body);
    assert.equal(start.statusCode, 202, start.body);
  });
});
