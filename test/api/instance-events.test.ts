import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { conductorContract, conductorTopic, createRpcClient } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';
import { eventually } from '../support/wait.js';

// Coffer's `GET /instances/{id}/events` over HTTP: the status changes a real conductor recorded
// from heartbeats on the same in-process bus, paged newest first, and only for the owner.

let h: Harness;
let conductor: Conductor;
let alice: Session;
let mallory: Session;

before(async () => {
  h = await startHarness();
  conductor = await startConductor({ store: h.store, transport: h.transport, logger: silentLogger() });
  alice = await memberSession(h, 'alice');
  mallory = await memberSession(h, 'mallory');
  await seedDatastores(h.store);
});
after(async () => {
  await conductor.stop();
  await h.close();
});

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });
const events = (s: Session, id: string, query = '') =>
  h.app.inject({ method: 'GET', url: `/v1.0/${s.projectId}/instances/${id}/events${query}`, headers: headers(s) });

test('status changes are listed newest first with the failure’s first line, paged by the last id, for the owner only', async () => {
  const created = await h.app.inject({
    method: 'POST',
    url: `/v1.0/${alice.projectId}/instances`,
    headers: headers(alice),
    payload: { instance: { name: 'evented', flavorRef: '2', volume: { size: 1 }, datastore: { type: 'postgresql', version: '15' } } },
  });
  assert.equal(created.statusCode, 200, created.body);
  const id = json(created).instance.id as string;

  const guestSide = createRpcClient(h.transport, conductorContract, conductorTopic);
  const listed = async () => json(await events(alice, id)) as { events: Array<Record<string, unknown>> };
  // one at a time: the conductor may handle beats sent together in any order
  await guestSide.heartbeat({ instanceId: id, status: 'BUILDING' });
  await eventually('the first event', listed, (body) => body.events.length === 1);
  await guestSide.heartbeat({ instanceId: id, status: 'HEALTHY' });
  await eventually('the second event', listed, (body) => body.events.length === 2);
  await guestSide.heartbeat({ instanceId: id, status: 'CRASHED', message: 'PostgreSQL exited (code 1)\n2026-12-04 LOG: /var/lib/coffer/instances/x/data' });
  const all = await eventually('three status events', listed, (body) => body.events.length === 3);
  assert.deepEqual(
    all.events.map((e) => [e.type, e.name, e.message]),
    [
      ['status', 'SHUTDOWN', 'PostgreSQL exited (code 1)'],
      ['status', 'HEALTHY', null],
      ['status', 'BUILD', null],
    ],
  );
  for (const e of all.events) assert.match(String(e.created), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);

  const first = await events(alice, id, '?limit=2');
  assert.equal(first.statusCode, 200);
  const page = json(first) as { events: Array<{ id: string }>; links: Array<{ rel: string; href: string }> };
  assert.deepEqual(page.events.map((e) => e.id), all.events.slice(0, 2).map((e) => e.id));
  const next = new URL(page.links[0]!.href);
  assert.equal(next.searchParams.get('marker'), page.events[1]!.id);
  const rest = json(await events(alice, id, next.search)) as { events: Array<{ id: string }>; links?: unknown };
  assert.deepEqual(rest.events.map((e) => e.id), [all.events[2]!.id]);
  assert.equal(rest.links, undefined, 'no next link after the last page');

  const badMarker = await events(alice, id, '?marker=nope');
  assert.equal(badMarker.statusCode, 400);
  assert.deepEqual(json(badMarker), { badRequest: { code: 400, message: 'Invalid marker: nope.' } });

  const other = await events(mallory, id);
  assert.equal(other.statusCode, 404, 'another project’s member learns nothing of the instance');
  const unknown = await events(alice, '00000000-0000-0000-0000-000000000000');
  assert.equal(unknown.statusCode, 404);
});
