// test-lane: parallel (scratch databases of its own on the shared servers)
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { serverDatabases, type ScratchDatabase } from '../support/server-databases.js';
import { adminSession, json, memberSession, seedDatastores, startHarness } from './api-harness.js';

// The quota check of POST /instances under real concurrency: on MariaDB and PostgreSQL the API's
// queries run on a pool of connections, so concurrent creates of one project truly overlap, and
// only the project's quota lock keeps them from all passing the check on the same free slot.

for (const [engine, scratch] of Object.entries(serverDatabases)) {
  describe(`quota enforcement on ${engine}`, () => {
    let db: ScratchDatabase | undefined;
    let cleanup: (() => Promise<void>) | undefined;
    after(async () => {
      await cleanup?.();
      await db?.drop();
    });

    test('of eight concurrent creates with one project at 3 of 5 instances, exactly two pass', async () => {
      const h = await startHarness({}, (db = await scratch()).url);
      cleanup = () => h.close();
      await seedDatastores(h.store);
      const admin = await adminSession(h.app);
      const member = await memberSession(h, 'race');
      const put = await h.app.inject({
        method: 'PUT',
        url: `/v1.0/${admin.projectId}/mgmt/quotas/${member.projectId}`,
        headers: { 'x-auth-token': admin.token },
        payload: { quotas: { instances: 5 } },
      });
      assert.equal(put.statusCode, 200, put.body);
      const create = () =>
        h.app.inject({
          method: 'POST',
          url: `/v1.0/${member.projectId}/instances`,
          headers: { 'x-auth-token': member.token },
          payload: { instance: { name: 'race', flavorRef: '1', volume: { size: 1 }, datastore: { type: 'postgresql' } } },
        });
      for (let n = 0; n < 3; n += 1) assert.equal((await create()).statusCode, 200);
      const results = await Promise.all(Array.from({ length: 8 }, create));
      const codes = results.map((r) => r.statusCode);
      assert.equal(codes.filter((c) => c === 200).length, 2, results.map((r) => r.body).join('\n'));
      assert.equal(codes.filter((c) => c === 413).length, 6);
      assert.equal(json(results.find((r) => r.statusCode === 413)!).overLimit.message.startsWith("Quota exceeded for resources: ['instances']. instances: limit "), true);
      assert.equal((await h.store.quotas.usage(member.projectId)).instances, 5);
    });
  });
}
