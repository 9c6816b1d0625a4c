import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { troveDefaultQuotas } from '../../src/api/trove/quota-enforcement.js';
import { adminSession, json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';

// Quotas (reference 2.14, 7.1): reading and changing them under /mgmt/quotas, their enforcement
// on POST /instances, and the ABSOLUTE entry of GET /limits.

let h: Harness;
let admin: Session;

before(async () => {
  h = await startHarness({ quotaDefaults: troveDefaultQuotas });
  admin = await adminSession(h.app);
  await seedDatastores(h.store);
});
after(() => h.close());

const headers = (s: Session) => ({ 'x-auth-token': s.token });

const getQuotas = (s: Session, project: string) =>
  h.app.inject({ method: 'GET', url: `/v1.0/${s.projectId}/mgmt/quotas/${project}`, headers: headers(s) });

const putQuotas = (s: Session, project: string, payload: unknown) =>
  h.app.inject({ method: 'PUT', url: `/v1.0/${s.projectId}/mgmt/quotas/${project}`, headers: headers(s), payload: payload as object });

function create(s: Session, size = 1, flavorRef = '2') {
  return h.app.inject({
    method: 'POST',
    url: `/v1.0/${s.projectId}/instances`,
    headers: headers(s),
    payload: { instance: { name: 'quota-db', flavorRef, volume: { size }, datastore: { type: 'postgresql' } } },
  });
}

async function setQuotas(project: string, quotas: Record<string, number>) {
  const res = await putQuotas(admin, project, { quotas });
  assert.equal(res.statusCode, 200, res.body);
}

describe('GET /mgmt/quotas/{project}', () => {
  test('a member reads its own: Trove order, the configured defaults, what its live instances use', async () => {
    const member = await memberSession(h, 'quota-read');
    assert.equal((await create(member, 3)).statusCode, 200);
    const gone = json(await create(member, 5)).instance.id;
    await h.store.instances.markDeleted(gone, new Date());
    const res = await getQuotas(member, member.projectId);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(json(res), {
      quotas: [
        { resource: 'instances', in_use: 1, reserved: 0, limit: 10 },
        { resource: 'ram', in_use: 512, reserved: 0, limit: -1 },
        { resource: 'backups', in_use: 0, reserved: 0, limit: 50 },
        { resource: 'volumes', in_use: 3, reserved: 0, limit: 40 },
      ],
    });
  });

  test("a member may not read another project's (403); an admin reads any project's", async () => {
    const member = await memberSession(h, 'quota-nosy');
    const res = await getQuotas(member, admin.projectId);
    assert.equal(res.statusCode, 403);
    assert.deepEqual(json(res), { forbidden: { code: 403, message: `Operation not allowed for tenant ${member.projectId}.` } });
    const byAdmin = await getQuotas(admin, member.projectId);
    assert.equal(byAdmin.statusCode, 200);
    assert.equal(json(byAdmin).quotas[0].limit, 10);
  });
});

describe('PUT /mgmt/quotas/{project}', () => {
  test('an admin sets limits; the answer lists only those set, null values are skipped', async () => {
    const member = await memberSession(h, 'quota-set');
    const res = await putQuotas(admin, member.projectId, { quotas: { instances: 3, volumes: -1, backups: null } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(json(res), { quotas: { instances: 3, volumes: -1 } });
    const limits = json(await getQuotas(member, member.projectId)).quotas.map((q: { limit: number }) => q.limit);
    assert.deepEqual(limits, [3, -1, 50, -1]);
    await setQuotas(member.projectId, { instances: 4 });
    assert.equal(json(await getQuotas(member, member.projectId)).quotas[0].limit, 4);
  });

  test('a member may not change quotas, not even its own: 401 as Trove', async () => {
    const member = await memberSession(h, 'quota-self');
    const res = await putQuotas(member, member.projectId, { quotas: { instances: 100 } });
    assert.equal(res.statusCode, 401);
    assert.deepEqual(json(res), { unauthorized: { code: 401, message: 'User does not have admin privileges.' } });
    assert.equal(json(await getQuotas(member, member.projectId)).quotas[0].limit, 10);
  });

  for (const [what, payload, status, fault, message] of [
    ['a value below -1', { quotas: { instances: -2 } }, 400, 'badRequest', 'Validation error: quotas.instances'],
    ['a value that is not an integer', { quotas: { instances: '5' } }, 400, 'badRequest', 'Validation error: quotas.instances'],
    ['no quotas', {}, 400, 'badRequest', "Validation error: 'quotas' is a required property"],
    ['an unknown resource', { quotas: { instances: 5, gpus: 1 } }, 404, 'itemNotFound', 'Unknown quota resources gpus.'],
  ] as const) {
    test(`${what} is refused (${status}) and nothing is written`, async () => {
      const member = await memberSession(h, 'quota-bad');
      const res = await putQuotas(admin, member.projectId, payload);
      assert.equal(res.statusCode, status, res.body);
      assert.ok(json(res)[fault].message.startsWith(message), json(res)[fault].message);
      assert.deepEqual(await h.store.quotas.list(member.projectId), []);
    });
  }
});

describe('quota enforcement on POST /instances', () => {
  test("the instance count: 413 with Trove's message once the limit is reached; a deleted instance frees its slot", async () => {
    const member = await memberSession(h, 'quota-count');
    await setQuotas(member.projectId, { instances: 2 });
    assert.equal((await create(member)).statusCode, 200);
    const second = await create(member);
    assert.equal(second.statusCode, 200);
    const refused = await create(member);
    assert.equal(refused.statusCode, 413);
    const pid = member.projectId;
    assert.deepEqual(json(refused), {
      overLimit: {
        code: 413,
        message:
          "Quota exceeded for resources: ['instances']. instances: limit 2, in use 2, this request adds 1. " +
          `An admin can raise the project's limit: \`openstack database quota update ${pid} instances <limit>\` ` +
          `(PUT /v1.0/<project>/mgmt/quotas/${pid}), or the default for every project (--max-*-per-tenant).`,
      },
    });
    assert.equal((await h.store.quotas.usage(member.projectId)).instances, 2, 'the refused create wrote nothing');
    await h.store.instances.markDeleted(json(second).instance.id, new Date());
    assert.equal((await create(member)).statusCode, 200);
  });

  test('volume GB and flavor RAM count; every resource over its limit is named, sorted', async () => {
    const member = await memberSession(h, 'quota-size');
    await setQuotas(member.projectId, { volumes: 5, ram: 1536 });
    assert.equal((await create(member, 4, '2')).statusCode, 200);
    const volumes = await create(member, 2, '1');
    assert.equal(volumes.statusCode, 413);
    assert.match(json(volumes).overLimit.message, /^Quota exceeded for resources: \['volumes'\]\. volumes: limit 5 GB, in use 4 GB, this request adds 2 GB\. An admin/);
    assert.equal((await create(member, 1, '3')).statusCode, 200, 'exactly at both limits is allowed');
    const ram = await create(member, 1, '1');
    assert.equal(ram.statusCode, 413);
    assert.match(json(ram).overLimit.message, /^Quota exceeded for resources: \['ram', 'volumes'\]\. ram: limit 1536 MB, in use 1536 MB, this request adds \d+ MB; volumes: limit 5 GB, in use 5 GB, this request adds 1 GB\. /);
    await setQuotas(member.projectId, { instances: 2, volumes: 10 });
    const all = await create(member, 1, '1');
    assert.equal(all.statusCode, 413);
    assert.match(json(all).overLimit.message, /^Quota exceeded for resources: \['instances', 'ram'\]\. instances: limit 2, in use 2, this request adds 1; ram: /);
    assert.deepEqual(await h.store.quotas.usage(member.projectId), { instances: 2, ram: 1536, volumes: 5, backups: 0 });
  });

  test('-1 is unlimited', async () => {
    const member = await memberSession(h, 'quota-unlimited');
    await setQuotas(member.projectId, { instances: -1, volumes: -1 });
    for (let n = 0; n < 11; n += 1) assert.equal((await create(member, 10)).statusCode, 200);
  });

  test('concurrent creates cannot both take the last slot: the check and the insert share a transaction', async () => {
    const member = await memberSession(h, 'quota-race');
    await setQuotas(member.projectId, { instances: 2 });
    const results = await Promise.all(Array.from({ length: 6 }, () => create(member)));
    assert.deepEqual(
      results.map((r) => r.statusCode).sort(),
      [200, 200, 413, 413, 413, 413],
    );
    assert.equal((await h.store.quotas.usage(member.projectId)).instances, 2);
  });
});

describe('GET /limits', () => {
  test("ABSOLUTE comes first with the project's hard limits; without a rate limiter nothing follows", async () => {
    const member = await memberSession(h, 'limits');
    await setQuotas(member.projectId, { instances: 7 });
    const res = await h.app.inject({ method: 'GET', url: `/v1.0/${member.projectId}/limits`, headers: headers(member) });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(json(res), {
      limits: [{ verb: 'ABSOLUTE', max_instances: 7, max_ram: -1, max_backups: 50, max_volumes: 40 }],
    });
  });
});
