import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { seedFlavors } from '../../src/api/index.js';
import { adminSession, json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';

let h: Harness;
let admin: Session;
let member: Session;
let seeded: Awaited<ReturnType<typeof seedDatastores>>;

before(async () => {
  h = await startHarness();
  admin = await adminSession(h.app);
  member = await memberSession(h);
  seeded = await seedDatastores(h.store);
});
after(() => h.close());

const get = (s: Session, path: string, host = 'coffer.example:8779') =>
  h.app.inject({ method: 'GET', url: `/v1.0/${s.projectId}${path}`, headers: { 'x-auth-token': s.token, host } });

const linkShape = (tenant: string, path: string) => [
  { href: `https://coffer.example:8779/v1.0/${tenant}/${path}`, rel: 'self' },
  { href: `https://coffer.example:8779/${path}`, rel: 'bookmark' },
];

describe('flavors', () => {
  test('the list has the default set in Trove flavor shape, readable by any member', async () => {
    const res = await get(member, '/flavors');
    assert.equal(res.statusCode, 200);
    const { flavors } = json(res);
    assert.deepEqual(
      flavors.map((f: { name: string; ram: number; vcpus: number }) => [f.name, f.ram, f.vcpus]),
      [['m1.tiny', 256, 1], ['m1.small', 512, 1], ['m1.medium', 1024, 1], ['m1.large', 2048, 2], ['m1.xlarge', 4096, 4]],
    );
    assert.deepEqual(flavors[0], {
      id: 1,
      str_id: '1',
      name: 'm1.tiny',
      ram: 256,
      vcpus: 1,
      disk: 0,
      ephemeral: 0,
      links: linkShape(member.projectId, 'flavors/1'),
    });
  });

  test('show by id; a non-numeric id gives id null and str_id; unknown is 404 itemNotFound', async () => {
    assert.equal(json(await get(member, '/flavors/3')).flavor.name, 'm1.medium');
    await h.store.flavors.upsert({ id: 'custom-x', name: 'custom', ramMb: 128, vcpus: 1, diskGb: 0, ephemeralGb: 0 });
    const custom = json(await get(member, '/flavors/custom-x')).flavor;
    assert.equal(custom.id, null);
    assert.equal(custom.str_id, 'custom-x');
    const missing = await get(member, '/flavors/999');
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(json(missing), { itemNotFound: { code: 404, message: 'Resource 999 cannot be found.' } });
  });

  test('seedFlavors is idempotent and keeps operator changes', async () => {
    await h.store.flavors.upsert({ id: '1', name: 'm1.tiny', ramMb: 300, vcpus: 1, diskGb: 0, ephemeralGb: 0 });
    await seedFlavors(h.store);
    await seedFlavors(h.store);
    assert.equal((await h.store.flavors.get('1'))!.ramMb, 300);
    assert.equal((await h.store.flavors.list()).filter((f) => f.name === 'm1.small').length, 1);
    await h.store.flavors.upsert({ id: '1', name: 'm1.tiny', ramMb: 256, vcpus: 1, diskGb: 0, ephemeralGb: 0 });
  });
});

describe('datastores', () => {
  test('a member sees only active versions, with Trove datastore shape', async () => {
    const res = await get(member, '/datastores');
    assert.equal(res.statusCode, 200);
    const pg = json(res).datastores.find((d: { name: string }) => d.name === 'postgresql');
    assert.deepEqual(pg, {
      id: seeded.datastoreId,
      name: 'postgresql',
      links: linkShape(member.projectId, `datastores/${seeded.datastoreId}`),
      versions: [
        {
          id: seeded.activeVersionId,
          name: '15',
          version: '15.19',
          links: linkShape(member.projectId, `datastores/versions/${seeded.activeVersionId}`),
        },
      ],
      default_version: seeded.activeVersionId,
    });
  });

  test('a datastore whose versions are all inactive is hidden from members and shown to admins', async () => {
    const { newUuid } = await import('../../src/common/ids.js');
    const redis = await h.store.datastores.ensureDatastore('redis', newUuid());
    await h.store.datastores.upsertVersion({
      id: newUuid(),
      datastoreId: redis.id,
      name: '7',
      version: '7.0.15',
      manager: 'redis',
      active: false,
      inactiveReason: 'redis-server not found',
      updatedAt: new Date(),
    });
    const names = (s: Session) => get(s, '/datastores').then((r) => json(r).datastores.map((d: { name: string }) => d.name));
    assert.ok(!(await names(member)).includes('redis'));
    assert.ok((await names(admin)).includes('redis'));
  });

  test('an admin sees inactive versions and their state in the lists', async () => {
    const listed = json(await get(admin, '/datastores')).datastores.find((d: { name: string }) => d.name === 'postgresql');
    assert.deepEqual(listed.versions.map((v: { name: string }) => v.name).sort(), ['15', '16']);
    const versions = json(await get(admin, '/datastores/postgresql/versions')).versions;
    const inactive = versions.find((v: { name: string }) => v.name === '16');
    assert.equal(inactive.active, false);
    assert.equal(inactive.inactive_reason, 'postgres 16 binaries not found');
    assert.deepEqual(inactive.image_tags, []);
  });

  test('showing one datastore lists its active versions only, for admins too (Trove loads only_active)', async () => {
    for (const s of [member, admin]) {
      const pg = json(await get(s, '/datastores/postgresql')).datastore;
      assert.deepEqual(pg.versions.map((v: { id: string }) => v.id), [seeded.activeVersionId]);
    }
  });

  test('show by id or by name; unknown 404', async () => {
    assert.equal(json(await get(member, `/datastores/${seeded.datastoreId}`)).datastore.name, 'postgresql');
    assert.equal(json(await get(member, '/datastores/postgresql')).datastore.id, seeded.datastoreId);
    const missing = await get(member, '/datastores/oracle');
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(json(missing), { itemNotFound: { code: 404, message: "Datastore 'oracle' cannot be found. Datastores: mysql, postgresql." } });
  });

  test('versions: list (active only for members), show by name or id, unknown name 400, unknown uuid 404', async () => {
    const list = json(await get(member, '/datastores/postgresql/versions')).versions;
    assert.deepEqual(list, [
      {
        id: seeded.activeVersionId,
        name: '15',
        version: '15.19',
        links: linkShape(member.projectId, `datastores/versions/${seeded.activeVersionId}`),
        datastore: seeded.datastoreId,
      },
    ]);
    assert.equal(json(await get(member, '/datastores/postgresql/versions/15')).version.id, seeded.activeVersionId);
    assert.equal(json(await get(member, `/datastores/postgresql/versions/${seeded.activeVersionId}`)).version.name, '15');
    const byName = await get(member, '/datastores/postgresql/versions/9.6');
    assert.equal(byName.statusCode, 400);
    assert.deepEqual(json(byName), { badRequest: { code: 400, message: "Datastore version '9.6' cannot be found." } });
    const byUuid = await get(member, '/datastores/postgresql/versions/00000000-0000-4000-8000-000000000000');
    assert.equal(byUuid.statusCode, 404);
    assert.equal((await get(member, '/datastores/oracle/versions')).statusCode, 404);
  });

  test('GET /datastores/versions/{uuid}: found, or 400 when unknown', async () => {
    const found = json(await get(member, `/datastores/versions/${seeded.activeVersionId}`)).version;
    assert.equal(found.datastore, seeded.datastoreId);
    assert.equal(found.active, undefined);
    const missing = await get(member, '/datastores/versions/00000000-0000-4000-8000-000000000000');
    assert.equal(missing.statusCode, 400);
  });
});
