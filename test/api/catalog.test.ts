import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { after, before, describe, test } from 'node:test';
import { localVolumeType } from '../../src/api/trove/volume-types.js';
import { newUuid } from '../../src/common/ids.js';
import { noEngineCapabilities } from '../../src/common/index.js';
import { adminSession, json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';

// What a datastore version is offered with (reference 2.6, 2.7): flavors, volume types and the
// configuration parameters its engine declares; and the `.json` suffix (reference 1.1).

let h: Harness;
let admin: Session;
let member: Session;
let seeded: Awaited<ReturnType<typeof seedDatastores>>;
let versionId: string;

before(async () => {
  h = await startHarness();
  admin = await adminSession(h.app);
  member = await memberSession(h, 'catalog');
  seeded = await seedDatastores(h.store);
  const version = await h.store.datastores.upsertVersion({
    id: newUuid(),
    datastoreId: seeded.datastoreId,
    name: '17',
    version: '17.2',
    manager: 'postgresql',
    active: true,
    inactiveReason: null,
    updatedAt: new Date(),
    capabilities: noEngineCapabilities,
    parameters: [
      { name: 'max_connections', type: 'integer', restartRequired: true, min: 10, max: 10_000 },
      { name: 'statement_timeout', type: 'integer', restartRequired: false, min: 0, max: 2_147_483_647 },
      { name: 'log_min_duration_statement', type: 'integer', restartRequired: false, min: -1, max: 2_147_483_647 },
      { name: 'autovacuum', type: 'boolean', restartRequired: false },
      { name: 'random_page_cost', type: 'float', restartRequired: false, min: 0, max: 1_000_000.5 },
    ],
  });
  versionId = version.id;
});
after(() => h.close());

const get = (s: Session, path: string) =>
  h.app.inject({ method: 'GET', url: `/v1.0/${s.projectId}${path}`, headers: { 'x-auth-token': s.token, host: 'db.example' } });

function expectError(res: LightMyRequestResponse, status: number, fault: string, message: string) {
  assert.equal(res.statusCode, status, res.body);
  assert.deepEqual(json(res), { [fault]: { code: status, message } });
}

describe('flavors and volume types of a datastore version', () => {
  test('every flavor goes with an active version, by name or id', async () => {
    const all = json(await get(member, '/flavors')).flavors;
    for (const path of ['/datastores/postgresql/versions/15/flavors', `/datastores/${seeded.datastoreId}/versions/${seeded.activeVersionId}/flavors`]) {
      const res = await get(member, path);
      assert.equal(res.statusCode, 200);
      assert.deepEqual(json(res).flavors, all);
    }
  });

  test('the one local volume type', async () => {
    const res = await get(member, '/datastores/postgresql/versions/15/volume-types');
    assert.equal(res.statusCode, 200);
    assert.deepEqual(json(res), {
      volume_types: [{ id: localVolumeType.id, name: 'local', is_public: true, description: localVolumeType.description }],
    });
  });

  for (const suffix of ['flavors', 'volume-types']) {
    test(`${suffix}: unknown datastore 404, unknown version 400, inactive version 400`, async () => {
      expectError(await get(member, `/datastores/oracle/versions/15/${suffix}`), 404, 'itemNotFound', "Datastore 'oracle' cannot be found. Datastores: mysql, postgresql.");
      expectError(await get(member, `/datastores/postgresql/versions/9.6/${suffix}`), 400, 'badRequest', "Datastore version '9.6' cannot be found.");
      const unknownId = newUuid();
      expectError(await get(member, `/datastores/postgresql/versions/${unknownId}/${suffix}`), 400, 'badRequest', `Datastore version '${unknownId}' cannot be found.`);
      expectError(await get(member, `/datastores/postgresql/versions/16/${suffix}`), 400, 'badRequest', "Datastore version '16' is not active. postgres 16 binaries not found.");
    });
  }
});

describe('GET /volume-types (Coffer serves it; Zed answers 404)', () => {
  test('lists the local type and shows it by id or name; unknown is 404', async () => {
    assert.deepEqual(json(await get(member, '/volume-types')).volume_types, [localVolumeType]);
    assert.deepEqual(json(await get(member, `/volume-types/${localVolumeType.id}`)), { volume_type: localVolumeType });
    assert.deepEqual(json(await get(member, '/volume-types/local')), { volume_type: localVolumeType });
    expectError(await get(member, '/volume-types/ssd'), 404, 'itemNotFound', 'Resource ssd cannot be found.');
  });
});

describe('configuration parameters', () => {
  const expected = (id: string) => [
    { name: 'max_connections', datastore_version_id: id, restart_required: true, type: 'integer', max: 10000, min: 10 },
    // min 0 is left out, as Trove's truthiness check does; -1 is kept.
    { name: 'statement_timeout', datastore_version_id: id, restart_required: false, type: 'integer', max: 2147483647 },
    { name: 'log_min_duration_statement', datastore_version_id: id, restart_required: false, type: 'integer', max: 2147483647, min: -1 },
    { name: 'autovacuum', datastore_version_id: id, restart_required: false, type: 'boolean' },
    { name: 'random_page_cost', datastore_version_id: id, restart_required: false, type: 'float', max: 1000000 },
  ];

  test('listed by datastore and version (name or id) and by version id, in the engine\'s order', async () => {
    for (const path of [
      '/datastores/postgresql/versions/17/parameters',
      `/datastores/${seeded.datastoreId}/versions/${versionId}/parameters`,
      `/datastores/versions/${versionId}/parameters`,
    ]) {
      const res = await get(member, path);
      assert.equal(res.statusCode, 200, `${path}: ${res.body}`);
      assert.deepEqual(json(res), { 'configuration-parameters': expected(versionId) });
    }
  });

  test('one parameter comes unwrapped; an unknown one is 404', async () => {
    for (const prefix of ['/datastores/postgresql/versions/17', `/datastores/versions/${versionId}`]) {
      assert.deepEqual(json(await get(member, `${prefix}/parameters/max_connections`)), expected(versionId)[0]);
      expectError(await get(member, `${prefix}/parameters/fsync`), 404, 'itemNotFound', 'Resource fsync cannot be found.');
    }
  });

  test('a version that declared none lists none; unknown versions are 400, inactive ones 400 by datastore', async () => {
    assert.deepEqual(json(await get(member, '/datastores/postgresql/versions/15/parameters')), { 'configuration-parameters': [] });
    const unknownId = newUuid();
    expectError(await get(member, `/datastores/versions/${unknownId}/parameters`), 400, 'badRequest', `Datastore version '${unknownId}' cannot be found.`);
    expectError(await get(member, `/datastores/versions/${unknownId}/parameters/x`), 400, 'badRequest', `Datastore version '${unknownId}' cannot be found.`);
    expectError(await get(member, '/datastores/postgresql/versions/16/parameters'), 400, 'badRequest', "Datastore version '16' is not active. postgres 16 binaries not found.");
    expectError(await get(member, '/datastores/oracle/versions/1/parameters/x'), 404, 'itemNotFound', "Datastore 'oracle' cannot be found. Datastores: mysql, postgresql.");
  });
});

describe('the .json format suffix', () => {
  test('is stripped on resource-style routes: datastores, limits, mgmt', async () => {
    for (const [plain, suffixed] of <[string, string][]>[
      ['/datastores', '/datastores.json'],
      ['/datastores/postgresql', '/datastores/postgresql.json'],
      [`/datastores/versions/${versionId}/parameters`, `/datastores/versions/${versionId}/parameters.json`],
      ['/limits', '/limits.json?x=1'],
    ]) {
      const a = await get(member, plain);
      const b = await get(member, suffixed);
      assert.equal(b.statusCode, 200, `${suffixed}: ${b.body}`);
      assert.deepEqual(json(b), json(a));
    }
    const mgmt = await get(admin, '/mgmt/instances.json?deleted=false');
    assert.equal(mgmt.statusCode, 200);
    assert.ok(Array.isArray(json(mgmt).instances));
  });

  test('is stripped on the databases, users and root extensions of an instance', async () => {
    const id = newUuid();
    for (const path of [`/instances/${id}/databases`, `/instances/${id}/users`, `/instances/${id}/root`]) {
      const plain = await get(member, path);
      const suffixed = await get(member, `${path}.json`);
      assert.equal(suffixed.statusCode, plain.statusCode, path);
      assert.deepEqual(json(suffixed), json(plain));
      assert.doesNotMatch(json(plain).itemNotFound.message, /could not be found/, 'the route itself answered');
    }
  });

  test('is kept on explicit routes: instances and flavors', async () => {
    expectError(await get(member, '/flavors/1.json'), 404, 'itemNotFound', 'Resource 1.json cannot be found.');
    const res = await get(member, '/instances.json');
    assert.equal(res.statusCode, 404);
    const id = newUuid();
    const show = await get(member, `/instances/${id}.json`);
    assert.equal(show.statusCode, 404);
    assert.match(json(show).itemNotFound.message, new RegExp(`${id}\\.json`));
  });

  test('an encoded dot (%2e) is a dot in a name, not a suffix', async () => {
    expectError(await get(member, '/datastores/postgresql%2ejson'), 404, 'itemNotFound', "Datastore 'postgresql.json' cannot be found. Datastores: mysql, postgresql.");
  });
});
