import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { conductorContract, conductorTopic, createRpcClient } from '../../src/bus/index.js';
import { newUuid, silentLogger } from '../../src/common/index.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { eventually } from '../support/wait.js';
import { adminSession, json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';

// A full volume as the API shows it (issue 13): the guest's BLOCKED beat, through the real
// conductor, is an ACTIVE instance with operating_status BLOCKED (Trove's api status of its
// BLOCKED service status), the fault saying what happened and what lifts it, the volume's use
// beside its size, and a status event; a volume resize is still accepted, and the guest's next
// HEALTHY beat brings it back.

let h: Harness;
let conductor: Conductor;
let member: Session;
let admin: Session;
let id: string;
const full = 'The volume is full (1.02 of 1 GB used): writes are refused until it is resized (coffer instance resize-volume).';

before(async () => {
  h = await startHarness();
  conductor = await startConductor({ store: h.store, transport: h.transport, logger: silentLogger() });
  const seeded = await seedDatastores(h.store);
  admin = await adminSession(h.app);
  member = await memberSession(h, 'vf');
  id = newUuid();
  const now = new Date();
  await h.store.instances.create({
    id,
    name: 'filled',
    tenantId: member.projectId,
    flavorId: '1',
    volumeSizeGb: 1,
    datastoreVersionId: seeded.activeVersionId,
    taskStatus: 'NONE',
    taskDescription: 'No tasks for the instance.',
    taskStartTime: null,
    access: null,
    createdAt: now,
    updatedAt: now,
  });
  await h.store.instances.update(id, { host: 'host-a', address: '127.82.0.9', port: 5432 });
  await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: now });
});
after(async () => {
  await conductor.stop();
  await h.close();
});

const request = async (s: Session, method: 'GET' | 'POST', path: string, payload?: object) =>
  h.app.inject({ method, url: `/v1.0/${s.projectId}${path}`, headers: { 'x-auth-token': s.token }, ...(payload === undefined ? {} : { payload }) });
const get = async (s: Session, path: string) => {
  const res = await request(s, 'GET', path);
  assert.equal(res.statusCode, 200, res.body);
  return json(res);
};

test('a BLOCKED beat shows as operating_status BLOCKED with the fault, the volume used beside its size, and an event', async () => {
  const beat = createRpcClient(h.transport, conductorContract, conductorTopic);
  await beat.heartbeat({ instanceId: id, status: 'BLOCKED', message: full, volumeUsedBytes: Math.round(1.02 * 1024 ** 3) });
  const shown = (await eventually('BLOCKED is kept', () => get(member, `/instances/${id}`), (body) => body.instance.operating_status === 'BLOCKED')).instance;
  assert.equal(shown.status, 'ACTIVE');
  assert.deepEqual(shown.volume, { size: 1, used: 1.02 });
  assert.equal(shown.fault.message, full);
  assert.equal(shown.fault.details, null, 'details are for admins');
  assert.equal((await get(admin, `/instances/${id}`)).instance.fault.details, full);
  const listed = (await get(member, '/instances')).instances.find((i: { id: string }) => i.id === id);
  assert.equal(listed.operating_status, 'BLOCKED');
  const [event] = (await get(member, `/instances/${id}/events`)).events;
  assert.deepEqual([event.type, event.name, event.message], ['status', 'BLOCKED', full]);
  assert.equal((await get(admin, `/mgmt/instances/${id}`)).instance.service_status, 'BLOCKED');
});

test('a volume resize is accepted while BLOCKED, and the next HEALTHY beat brings the instance back', async () => {
  const res = await request(member, 'POST', `/instances/${id}/action`, { resize: { volume: { size: 2 } } });
  assert.equal(res.statusCode, 202, res.body);
  assert.equal((await get(member, `/instances/${id}`)).instance.status, 'RESIZE');
  // what the resize flow ends with (no taskmanager runs here), then the guest's beat once it measured against 2 GB
  await h.store.instances.update(id, { taskStatus: 'NONE', volumeSizeGb: 2 });
  await createRpcClient(h.transport, conductorContract, conductorTopic).heartbeat({ instanceId: id, status: 'HEALTHY', volumeUsedBytes: Math.round(1.02 * 1024 ** 3) });
  const shown = (await eventually('HEALTHY again', () => get(member, `/instances/${id}`), (body) => body.instance.operating_status === 'HEALTHY')).instance;
  assert.equal(shown.status, 'ACTIVE');
  assert.deepEqual(shown.volume, { size: 2, used: 1.02 });
});
