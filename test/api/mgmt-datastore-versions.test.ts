import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newUuid } from '../../src/common/ids.js';
import { adminSession, json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';

// Datastore versions for administrators (reference 2.15, issue 13): Trove's management view,
// PATCH to take a version out of service or make it the default, over HTTP on a real store.

let h: Harness;
let admin: Session;
let member: Session;
let seeded: Awaited<ReturnType<typeof seedDatastores>>;
let seventeen: string;

const auth = (s: Session) => ({ 'x-auth-token': s.token });
const mgmt = (s: Session, path = '') => `/v1.0/${s.projectId}/mgmt/datastore-versions${path}`;

async function patch(id: string, body: unknown) {
  return h.app.inject({ method: 'PATCH', url: mgmt(admin, `/${id}`), headers: auth(admin), payload: body as object });
}

async function version(id: string) {
  const res = await h.app.inject({ method: 'GET', url: mgmt(admin, `/${id}`), headers: auth(admin) });
  assert.equal(res.statusCode, 200, res.body);
  return json(res).version;
}

/** what a member may pick: the active versions of postgresql */
async function memberVersions(): Promise<string[]> {
  const res = await h.app.inject({ method: 'GET', url: `/v1.0/${member.projectId}/datastores/postgresql/versions`, headers: auth(member) });
  assert.equal(res.statusCode, 200, res.body);
  return json(res).versions.map((v: { name: string }) => v.name).sort();
}

before(async () => {
  h = await startHarness();
  seeded = await seedDatastores(h.store);
  const agentRuns17 = await h.store.datastores.upsertVersion({
    id: newUuid(),
    datastoreId: seeded.datastoreId,
    name: '17',
    version: '17.2',
    manager: 'postgresql',
    active: true,
    inactiveReason: null,
    updatedAt: new Date(),
  });
  seventeen = agentRuns17.id;
  admin = await adminSession(h.app);
  member = await memberSession(h);
});

after(async () => {
  await h.close();
});

test('the list shows every version in Trove’s management view, with the default and why an inactive one is', async () => {
  const res = await h.app.inject({ method: 'GET', url: mgmt(admin), headers: auth(admin) });
  assert.equal(res.statusCode, 200, res.body);
  const versions = json(res).versions as Array<Record<string, unknown>>;
  const pg15 = versions.find((v) => v.id === seeded.activeVersionId)!;
  assert.deepEqual(pg15, {
    id: seeded.activeVersionId,
    name: '15',
    version: '15.19',
    datastore_id: seeded.datastoreId,
    datastore_name: 'postgresql',
    datastore_manager: 'postgresql',
    image: null,
    image_tags: [''],
    packages: [''],
    active: true,
    default: true,
  });
  const pg16 = versions.find((v) => v.id === seeded.inactiveVersionId)!;
  assert.equal(pg16.active, false);
  assert.equal(pg16.default, false);
  assert.equal(pg16.inactive_reason, 'postgres 16 binaries not found');
  assert.ok(versions.some((v) => v.datastore_name === 'mysql'));
  assert.deepEqual(await version(seeded.activeVersionId), pg15);

  const unknown = await h.app.inject({ method: 'GET', url: mgmt(admin, `/${newUuid()}`), headers: auth(admin) });
  assert.equal(unknown.statusCode, 400, 'Trove’s DatastoreVersionNotFound is a 400, as GET /datastores/versions/{id} answers');
  assert.match(json(unknown).badRequest.message, /Datastore version '.*' cannot be found/);
});

test('PATCH refuses what the hosts own, unknown fields, an inactive default and deactivating the default', async () => {
  const image = await patch(seeded.activeVersionId, { image: newUuid() });
  assert.equal(image.statusCode, 400);
  assert.match(json(image).badRequest.message, /image cannot be changed here. Install or remove the engine on the hosts/);
  const renamed = await patch(seeded.activeVersionId, { name: 'fifteen' });
  assert.equal(renamed.statusCode, 400);
  const unknownField = await patch(seeded.activeVersionId, { colour: 'blue' });
  assert.equal(unknownField.statusCode, 400);
  assert.match(json(unknownField).badRequest.message, /^Validation error/);
  const nothing = await patch(seeded.activeVersionId, {});
  assert.equal(nothing.statusCode, 400);
  assert.match(json(nothing).badRequest.message, /names nothing to change/);
  const notBoolean = await patch(seeded.activeVersionId, { active: 'no' });
  assert.equal(notBoolean.statusCode, 400);

  const binariesMissing = await patch(seeded.inactiveVersionId, { default: true });
  assert.equal(binariesMissing.statusCode, 400);
  assert.match(json(binariesMissing).badRequest.message, /cannot be the default of postgresql: postgres 16 binaries not found/);
  const defaultOff = await patch(seeded.activeVersionId, { active: false });
  assert.equal(defaultOff.statusCode, 400);
  assert.match(json(defaultOff).badRequest.message, /is the default of postgresql: make another version the default first/);
  // nothing changed
  assert.equal((await version(seeded.activeVersionId)).active, true);
  assert.equal((await version(seeded.activeVersionId)).default, true);
  assert.equal((await patch(newUuid(), { active: true })).statusCode, 400);
});

test('an administrator moves the default, deactivates a version (agents reporting it again do not bring it back) and activates it again', async () => {
  assert.equal((await patch(seventeen, { default: true })).statusCode, 202);
  assert.equal((await version(seventeen)).default, true);
  assert.equal((await version(seeded.activeVersionId)).default, false);

  assert.equal((await patch(seeded.activeVersionId, { active: false })).statusCode, 202);
  const off = await version(seeded.activeVersionId);
  assert.equal(off.active, false);
  assert.equal(off.inactive_reason, 'an administrator deactivated it');
  assert.deepEqual(await memberVersions(), ['17']);

  // an agent registers 15 again, as at every conductor start: the administrator's word stands
  const row = (await h.store.datastores.getVersion(seeded.activeVersionId))!;
  await h.store.datastores.upsertVersion({ ...row, active: true, inactiveReason: null, updatedAt: new Date() });
  assert.equal((await version(seeded.activeVersionId)).active, false);

  // a create on it is refused with the reason
  const create = await h.app.inject({
    method: 'POST',
    url: `/v1.0/${member.projectId}/instances`,
    headers: auth(member),
    payload: { instance: { name: 'on-15', flavorRef: '1', volume: { size: 1 }, datastore: { type: 'postgresql', version: '15' } } },
  });
  assert.equal(create.statusCode, 400, create.body);
  assert.match(create.body, /Datastore version '15' is not active. An administrator deactivated it/i);

  assert.equal((await patch(seeded.activeVersionId, { active: true })).statusCode, 202);
  assert.equal((await version(seeded.activeVersionId)).active, true);
  assert.deepEqual(await memberVersions(), ['15', '17']);

  // Trove: default false on the current default leaves the datastore with none
  assert.equal((await patch(seventeen, { default: false })).statusCode, 202);
  assert.equal((await version(seventeen)).default, false);
  assert.equal((await h.store.datastores.getDatastore(seeded.datastoreId))!.defaultVersionId, null);
  // deactivating and giving up the default at once is allowed
  assert.equal((await patch(seeded.activeVersionId, { default: true })).statusCode, 202);
  assert.equal((await patch(seeded.activeVersionId, { default: false, active: false })).statusCode, 202);
  assert.equal((await version(seeded.activeVersionId)).active, false);
  assert.equal((await patch(seeded.activeVersionId, { active: true, default: true })).statusCode, 202);
});

test('creating or deleting a version answers 501 with what to do instead', async () => {
  const created = await h.app.inject({ method: 'POST', url: mgmt(admin), headers: auth(admin), payload: { version: { name: '18', datastore_name: 'postgresql', datastore_manager: 'postgresql', active: true } } });
  assert.equal(created.statusCode, 501);
  assert.match(json(created).notImplemented.message, /install or remove the engine on the hosts/);
  const deleted = await h.app.inject({ method: 'DELETE', url: mgmt(admin, `/${seventeen}`), headers: auth(admin) });
  assert.equal(deleted.statusCode, 501);
  assert.equal((await version(seventeen)).id, seventeen);
});
