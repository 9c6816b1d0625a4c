import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { guestContract, guestTopic, serveRpc, type RequestContext, type Subscription } from '../../src/bus/index.js';
import { newUuid } from '../../src/common/ids.js';
import { troveTimestamp } from '../../src/common/time.js';
import type { TaskStatusName } from '../../src/db/index.js';
import { fakeGuestHandlers } from '../support/fake-guest.js';
import { adminSession, json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';

// Management of instances across projects (reference 2.15): admins only (401 otherwise).

let h: Harness;
let admin: Session;
let member: Session;
let seeded: Awaited<ReturnType<typeof seedDatastores>>;
let guest: Subscription;
const guestCalls: { method: string; context: RequestContext }[] = [];

let placed: string;
let building: string;
let gone: string;

const gb = 1024 ** 3;

async function insertInstance(options: { task?: TaskStatusName; address?: string; deleted?: boolean; createdAt?: Date; usedBytes?: number }) {
  const id = newUuid();
  const createdAt = options.createdAt ?? new Date();
  await h.store.instances.create({
    id,
    name: `db-${id.slice(0, 6)}`,
    tenantId: member.projectId,
    flavorId: '1',
    volumeSizeGb: 2,
    datastoreVersionId: seeded.activeVersionId,
    taskStatus: options.task ?? 'NONE',
    taskDescription: options.task === 'BUILDING' ? 'Building the initial instance.' : 'No tasks for the instance.',
    taskStartTime: null,
    access: null,
    createdAt,
    updatedAt: createdAt,
  });
  if (options.address !== undefined) await h.store.instances.update(id, { host: 'host-a', address: options.address, port: 5432 });
  await h.store.serviceStatuses.set({ instanceId: id, status: options.task === 'BUILDING' ? 'NEW' : 'HEALTHY', updatedAt: new Date() });
  if (options.usedBytes !== undefined) {
    await h.store.serviceStatuses.report(id, { volumeUsage: { usedBytes: options.usedBytes, measuredAt: new Date() } });
  }
  if (options.deleted === true) await h.store.instances.markDeleted(id, new Date('2026-03-04T05:06:07.890Z'));
  return id;
}

before(async () => {
  h = await startHarness();
  admin = await adminSession(h.app);
  member = await memberSession(h, 'mgmt');
  seeded = await seedDatastores(h.store);
  placed = await insertInstance({ address: '127.96.0.5', createdAt: new Date('2026-01-02T00:00:00Z'), usedBytes: 0.25 * gb });
  building = await insertInstance({ task: 'BUILDING', createdAt: new Date('2026-01-03T00:00:00Z') });
  gone = await insertInstance({ address: '127.96.0.6', deleted: true, createdAt: new Date('2026-01-01T00:00:00Z'), usedBytes: gb });
  guest = await serveRpc(
    h.transport,
    guestContract,
    guestTopic(placed),
    fakeGuestHandlers({
      getFilesystemStats: async () => {
        guestCalls.push({ method: 'getFilesystemStats', context: { requestId: 'not-expected' } });
        return { totalBytes: 2 * gb, usedBytes: gb };
      },
      stopDb: async (_args, meta) => {
        guestCalls.push({ method: 'stopDb', context: meta.context });
        return {};
      },
    }),
  );
});
after(async () => {
  await guest.close();
  await h.close();
});

const call = (s: Session, method: 'GET' | 'POST', path: string, payload?: unknown) =>
  h.app.inject({
    method,
    url: `/v1.0/${s.projectId}${path}`,
    headers: { 'x-auth-token': s.token, host: 'ops.example' },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });

describe('admins only', () => {
  for (const [method, path] of [
    ['GET', '/mgmt/instances'],
    ['GET', `/mgmt/instances/${newUuid()}`],
    ['GET', `/mgmt/instances/${newUuid()}/root`],
    ['POST', `/mgmt/instances/${newUuid()}/action`],
  ] as const) {
    test(`${method} ${path.replace(/[0-9a-f-]{36}/, '{id}')} is 401 for a member, before anything is looked up`, async () => {
      const res = await call(member, method, path, method === 'POST' ? { stop: {} } : undefined);
      assert.equal(res.statusCode, 401);
      assert.deepEqual(json(res), { unauthorized: { code: 401, message: 'User does not have admin privileges.' } });
    });
  }
});

describe('GET /mgmt/instances', () => {
  test("every project's instances, newest first, deleted ones too, with the management fields", async () => {
    const res = await call(admin, 'GET', '/mgmt/instances');
    assert.equal(res.statusCode, 200);
    const mine = json(res).instances.filter((i: { tenant_id: string }) => i.tenant_id === member.projectId);
    assert.deepEqual(mine.map((i: { id: string }) => i.id), [building, placed, gone]);
    const [b, p, g] = mine;
    assert.deepEqual(p.server, { id: placed, name: p.name, status: 'ACTIVE', tenant_id: member.projectId, host: 'host-a' });
    assert.equal(p.service_status, 'HEALTHY');
    assert.equal(p.deleted, false);
    assert.equal(p.deleted_at, null);
    assert.equal(p.task_description, 'No tasks for the instance.');
    assert.equal(p.status, 'ACTIVE');
    assert.equal(p.links[0].href, `https://ops.example/v1.0/${admin.projectId}/instances/${placed}`);
    assert.equal(b.server, null, 'not placed yet');
    assert.equal(b.service_status, 'NEW');
    assert.equal(b.task_description, 'Building the initial instance.');
    assert.equal(g.deleted, true);
    assert.equal(g.deleted_at, '2026-03-04T05:06:07');
    assert.equal(g.server, null);
  });

  test('?deleted=false (what the client sends) and ?deleted=true filter; ?project_id narrows', async () => {
    const ids = async (query: string) =>
      json(await call(admin, 'GET', `/mgmt/instances?${query}`)).instances.map((i: { id: string }) => i.id);
    assert.deepEqual(await ids(`deleted=False&include_clustered=False&project_id=${member.projectId}`), [building, placed]);
    assert.deepEqual(await ids(`deleted=true&project_id=${member.projectId}`), [gone]);
    assert.deepEqual(await ids(`project_id=${member.projectId}`), [building, placed, gone]);
    assert.deepEqual(await ids(`project_id=${newUuid()}`), []);
  });
});

describe('GET /mgmt/instances/{id}', () => {
  test('adds server addresses, the volume with the usage its heartbeats reported (no guest asked), guest_status; root_enabled once root was enabled', async () => {
    const callsBefore = guestCalls.length;
    const before = json(await call(admin, 'GET', `/mgmt/instances/${placed}`)).instance;
    assert.equal(before.root_enabled, undefined);
    assert.equal(before.root_enabled_by, undefined);
    assert.deepEqual(before.server.addresses, { private: [{ addr: '127.96.0.5', version: 4 }] });
    assert.deepEqual(before.volume, {
      attachments: [],
      availability_zone: null,
      created_at: '2026-01-02T00:00:00',
      id: placed,
      size: 2,
      status: 'in-use',
      used: 0.25,
      total: 2,
    });
    assert.deepEqual(before.guest_status, { state_description: 'healthy' });
    assert.equal(before.tenant_id, member.projectId);
    assert.equal(guestCalls.length, callsBefore, 'the guest was not asked');
    const listed = json(await call(admin, 'GET', `/mgmt/instances?project_id=${member.projectId}`)).instances;
    assert.equal(listed.find((i: { id: string }) => i.id === placed).volume.used, 0.25);

    const enabledAt = new Date('2026-02-03T04:05:06.700Z');
    await h.store.rootHistory.record({ instanceId: placed, userId: 'user-who-did-it', createdAt: enabledAt });
    const after = json(await call(admin, 'GET', `/mgmt/instances/${placed}`)).instance;
    assert.equal(after.root_enabled, troveTimestamp(enabledAt));
    assert.equal(after.root_enabled_by, 'user-who-did-it');
  });

  test('before any usage report the volume figures are null; a building instance has no server', async () => {
    const view = json(await call(admin, 'GET', `/mgmt/instances/${building}`)).instance;
    assert.equal(view.server, null);
    assert.equal(view.volume.used, null);
    assert.equal(view.volume.total, null);
    assert.equal(view.volume.status, 'creating');
    assert.deepEqual(view.guest_status, { state_description: 'new' });
  });

  test('unknown is 404; a deleted one only with ?deleted=true', async () => {
    const unknown = await call(admin, 'GET', `/mgmt/instances/${newUuid()}`);
    assert.equal(unknown.statusCode, 404);
    assert.equal(json(unknown).itemNotFound.code, 404);
    assert.equal((await call(admin, 'GET', `/mgmt/instances/${gone}`)).statusCode, 404);
    const res = await call(admin, 'GET', `/mgmt/instances/${gone}?deleted=true`);
    assert.equal(res.statusCode, 200);
    assert.equal(json(res).instance.deleted, true);
    assert.equal(json(res).instance.volume.status, 'deleted');
    // its usage was reported before the delete, and went with it
    assert.equal(json(res).instance.volume.used, null);
    assert.equal(json(res).instance.volume.total, null);
  });
});

describe('GET /mgmt/instances/{id}/root', () => {
  test('Never/Nobody until root was enabled, then when and by whom', async () => {
    assert.deepEqual(json(await call(admin, 'GET', `/mgmt/instances/${building}/root`)), {
      root_history: { id: building, enabled: 'Never', user: 'Nobody' },
    });
    const enabledAt = new Date('2026-02-05T00:00:01Z');
    await h.store.rootHistory.record({ instanceId: building, userId: 'u-root', createdAt: enabledAt });
    assert.deepEqual(json(await call(admin, 'GET', `/mgmt/instances/${building}/root`)), {
      root_history: { id: building, enabled: '2026-02-05T00:00:01', user: 'u-root' },
    });
    assert.equal((await call(admin, 'GET', `/mgmt/instances/${newUuid()}/root`)).statusCode, 404);
  });
});

describe('POST /mgmt/instances/{id}/action', () => {
  test('stop asks the guest to stop its database, with the request context: 202, empty body', async () => {
    const res = await call(admin, 'POST', `/mgmt/instances/${placed}/action`, { stop: {} });
    assert.equal(res.statusCode, 202);
    assert.equal(res.body, '');
    assert.equal(guestCalls.length, 1);
    assert.equal(guestCalls[0]?.context.instanceId, placed);
    assert.equal(guestCalls[0]?.context.requestId, res.headers['x-openstack-request-id']);
  });

  test('reset-task-status clears the task', async () => {
    const stuck = await insertInstance({ task: 'BUILDING' });
    const res = await call(admin, 'POST', `/mgmt/instances/${stuck}/action`, { 'reset-task-status': {} });
    assert.equal(res.statusCode, 202);
    const row = await h.store.instances.get(stuck);
    assert.equal(row?.taskStatus, 'NONE');
    assert.equal(row?.taskDescription, 'No tasks for the instance.');
  });

  for (const [action, payload, message] of [
    ['reboot', { reboot: {} }, 'Rebooting through the management API is not supported by Coffer yet'],
    ['migrate', { migrate: { host: 'host-b' } }, 'Migrating an instance to another host is not supported by Coffer yet.'],
    ['rebuild', { rebuild: { image_id: newUuid() } }, 'Rebuilding an instance from a guest image is not supported by Coffer'],
  ] as const) {
    test(`${action} is 501 notImplemented, saying so`, async () => {
      const res = await call(admin, 'POST', `/mgmt/instances/${placed}/action`, payload);
      assert.equal(res.statusCode, 501);
      assert.ok(json(res).notImplemented.message.startsWith(message), json(res).notImplemented.message);
    });
  }

  for (const [what, payload, message] of [
    ['two actions', { stop: {}, 'reset-task-status': {} }, 'Only one action can be specified per request.'],
    ['an unknown action', { restart: {} }, 'Invalid instance action: restart'],
    ['an empty body', {}, 'Invalid request body.'],
    ['a list', [{ stop: {} }], 'Invalid request body.'],
  ] as const) {
    test(`${what} is 400`, async () => {
      const res = await call(admin, 'POST', `/mgmt/instances/${placed}/action`, payload);
      assert.equal(res.statusCode, 400);
      assert.deepEqual(json(res), { badRequest: { code: 400, message } });
    });
  }

  test('an unknown or deleted instance is 404', async () => {
    assert.equal((await call(admin, 'POST', `/mgmt/instances/${newUuid()}/action`, { stop: {} })).statusCode, 404);
    assert.equal((await call(admin, 'POST', `/mgmt/instances/${gone}/action`, { stop: {} })).statusCode, 404);
  });
});
