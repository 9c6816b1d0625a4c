import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { conductorContract, conductorTopic, createRpcClient, guestContract, guestTopic, serveRpc, type Subscription } from '../../src/bus/index.js';
import { newUuid, silentLogger } from '../../src/common/index.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { fakeGuestHandlers } from '../support/fake-guest.js';
import { eventually } from '../support/wait.js';
import { adminSession, json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';

// An instance whose guest fell silent (its host died, its agent hangs) shows so in every view at
// once, from the time of its last heartbeat (Trove's FAILED_TIMEOUT_GUESTAGENT read-time
// override, reference 3.4): operating_status ERROR, and to operators service_status ERROR and
// "guestagent error". No view asks the guest anything: its topic here has a consumer that
// records each call and never answers, so a call on the read path would both show in the
// record and hold the request until the call's timeout.

let h: Harness;
let conductor: Conductor;
let silentGuest: Subscription;
let member: Session;
let admin: Session;
let id: string;
const guestCalls: string[] = [];
const expirySeconds = 90;

before(async () => {
  h = await startHarness({ heartbeatExpirySeconds: expirySeconds });
  conductor = await startConductor({ store: h.store, transport: h.transport, logger: silentLogger() });
  const seeded = await seedDatastores(h.store);
  admin = await adminSession(h.app);
  member = await memberSession(h, 'silent');
  id = newUuid();
  const created = new Date(Date.now() - 3_600_000);
  await h.store.instances.create({
    id,
    name: 'silent',
    tenantId: member.projectId,
    flavorId: '1',
    volumeSizeGb: 1,
    datastoreVersionId: seeded.activeVersionId,
    taskStatus: 'NONE',
    taskDescription: 'No tasks for the instance.',
    taskStartTime: null,
    access: null,
    createdAt: created,
    updatedAt: created,
  });
  await h.store.instances.update(id, { host: 'host-a', address: '127.82.0.1', port: 5432 });
  // its last heartbeat was HEALTHY, a second longer ago than the expiry
  await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: new Date(Date.now() - (expirySeconds + 1) * 1000) });
  const never = (method: string) => async (): Promise<never> => {
    guestCalls.push(method);
    return new Promise<never>(() => {});
  };
  const handlers = Object.fromEntries(Object.keys(fakeGuestHandlers()).map((method) => [method, never(method)]));
  silentGuest = await serveRpc(h.transport, guestContract, guestTopic(id), handlers as unknown as ReturnType<typeof fakeGuestHandlers>);
});
after(async () => {
  await silentGuest.close();
  await conductor.stop();
  await h.close();
});

const get = async (s: Session, path: string) => {
  const res = await h.app.inject({ method: 'GET', url: `/v1.0/${s.projectId}${path}`, headers: { 'x-auth-token': s.token } });
  assert.equal(res.statusCode, 200, res.body);
  return json(res);
};
const mine = (views: { id: string }[]) => views.find((v) => v.id === id) as Record<string, any>;

test('show, both lists and the management views show a silent guest at once, without asking it', async () => {
  const shown = (await get(member, `/instances/${id}`)).instance;
  // the engine's process is still there as far as anyone knows: the server is ACTIVE, its database is not known to be
  assert.equal(shown.status, 'ACTIVE');
  assert.equal(shown.operating_status, 'ERROR');
  assert.equal(mine((await get(member, '/instances/detail')).instances).operating_status, 'ERROR');
  assert.equal(mine((await get(member, '/instances')).instances).operating_status, 'ERROR');
  const operator = (await get(admin, `/mgmt/instances/${id}`)).instance;
  assert.equal(operator.service_status, 'ERROR');
  assert.deepEqual(operator.guest_status, { state_description: 'guestagent error' });
  assert.equal(mine((await get(admin, `/mgmt/instances?project_id=${member.projectId}`)).instances).service_status, 'ERROR');
  assert.deepEqual(guestCalls, []);
});

test('the next heartbeat brings it back: HEALTHY in every view', async () => {
  await createRpcClient(h.transport, conductorContract, conductorTopic).heartbeat({ instanceId: id, status: 'HEALTHY' });
  await eventually('the heartbeat is kept', () => get(member, `/instances/${id}`), (body) => body.instance.operating_status === 'HEALTHY');
  assert.equal(mine((await get(member, '/instances')).instances).operating_status, 'HEALTHY');
  const operator = (await get(admin, `/mgmt/instances/${id}`)).instance;
  assert.equal(operator.service_status, 'HEALTHY');
  assert.deepEqual(operator.guest_status, { state_description: 'healthy' });
  assert.deepEqual(guestCalls, []);
});

test('a task in progress shows instead: no timeout override while the instance is being worked on (reference 3.4)', async () => {
  await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: new Date(Date.now() - 3_600_000) });
  await h.store.instances.update(id, { taskStatus: 'RESIZING' });
  const shown = (await get(member, `/instances/${id}`)).instance;
  assert.equal(shown.status, 'RESIZE');
  assert.equal(shown.operating_status, '');
  assert.equal((await get(admin, `/mgmt/instances/${id}`)).instance.service_status, 'HEALTHY');
  await h.store.instances.update(id, { taskStatus: 'NONE' });
  assert.equal((await get(member, `/instances/${id}`)).instance.operating_status, 'ERROR');
  assert.deepEqual(guestCalls, []);
});
