import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { conductorContract, conductorTopic, createRpcClient } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';
import * as shape from './golden-shapes.js';
import { eventually } from '../support/wait.js';

// Coffer's `progress` on the instance detail view: what the guest reported through a real
// conductor on the same in-process bus, shown while the instance's task runs and not after.

let h: Harness;
let conductor: Conductor;
let alice: Session;

before(async () => {
  h = await startHarness();
  conductor = await startConductor({ store: h.store, transport: h.transport, logger: silentLogger() });
  alice = await memberSession(h, 'alice');
  await seedDatastores(h.store);
});
after(async () => {
  await conductor.stop();
  await h.close();
});

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });
const show = async (id: string) => {
  const res = await h.app.inject({ method: 'GET', url: `/v1.0/${alice.projectId}/instances/${id}`, headers: headers(alice) });
  assert.equal(res.statusCode, 200, res.body);
  return json(res).instance as Record<string, unknown> & { progress?: { step: string; percent: number; updated: string } };
};

test("the detail view shows the guest's progress while the build runs, and none once it ended", async () => {
  const created = await h.app.inject({
    method: 'POST',
    url: `/v1.0/${alice.projectId}/instances`,
    headers: headers(alice),
    payload: { instance: { name: 'mypg', flavorRef: '2', volume: { size: 1 }, datastore: { type: 'postgresql', version: '15' } } },
  });
  assert.equal(created.statusCode, 200, created.body);
  const id = json(created).instance.id as string;
  assert.equal(json(created).instance.progress, undefined, 'nothing reported yet');

  // the taskmanager takes the build; the guest reports through the conductor
  const task = await h.store.tasks.activeForInstance(id);
  assert.ok(await h.store.tasks.claim(task!.id, 'tm-1', 60_000, new Date()));
  const guestSide = createRpcClient(h.transport, conductorContract, conductorTopic);
  await guestSide.reportProgress({ instanceId: id, step: 'starting', percent: 40 });
  const building = await eventually('the progress in the view', () => show(id), (view) => view.progress !== undefined);
  shape.assertShape('GET /instances/{id} with progress', shape.instanceDetail.extend({ progress: shape.instanceProgress }), building);
  assert.equal(building.status, 'BUILD');
  assert.deepEqual({ ...building.progress, updated: undefined }, { step: 'starting', percent: 40, updated: undefined });

  const list = await h.app.inject({ method: 'GET', url: `/v1.0/${alice.projectId}/instances/detail`, headers: headers(alice) });
  assert.equal(json(list).instances.find((i: { id: string }) => i.id === id)?.progress?.step, 'starting');

  // the build ends as the create flow ends it
  assert.ok(await h.store.tasks.finish(task!.id, 'tm-1', 'done'));
  await h.store.instances.update(id, { taskStatus: 'NONE', taskDescription: 'No tasks for the instance.', taskStartTime: null });
  await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: new Date() });
  const active = await show(id);
  assert.equal(active.status, 'ACTIVE');
  assert.equal('progress' in active, false);
});
