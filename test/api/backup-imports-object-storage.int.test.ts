import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { encodeBackup, MasterKey, newProjectKey, S3Storage, SwiftStorage, wrapKey, type BackupStorage } from '../../src/backup/index.js';
import { conductorContract, conductorTopic, createRpcClient } from '../../src/bus/index.js';
import { newUuid, silentLogger } from '../../src/common/index.js';
import { startTaskmanager } from '../../src/taskmanager/index.js';
import { noCapabilities } from '../support/fake-guest.js';
import { processesMentioning } from '../support/processes.js';
import { startSwift } from '../support/swift-server.js';
import { startConductor } from '../../src/conductor/index.js';
import { eventually } from '../support/wait.js';
import { json, memberSession, startHarness, type Session } from './api-harness.js';
import { rdb } from './backup-import-objects.js';

// The import (restore_from) against Swift and S3 (Swift's s3api on the same all-in-one), as
// test/api/backup-imports.test.ts runs it against a local directory: the object named by the
// locationRef each storage gives it (the Swift account's URL, the S3 URL) or by
// <container>/<name> is RESTORED; the same URL form in another account or bucket is refused, and
// an object sealed under another key ends FAILED.

const container = 'database-backups';
const swiftReady = startSwift();
after(async () => {
  const swift = await swiftReady;
  await swift.stop();
  assert.deepEqual(processesMentioning(swift.address), [], 'no Swift process outlives the tests');
});

const stores: Record<string, () => Promise<BackupStorage>> = {
  swift: async () => {
    const swift = await swiftReady;
    return new SwiftStorage({ credentials: { authUrl: swift.authUrl, user: swift.user, key: swift.key } });
  },
  s3: async () => {
    const swift = await swiftReady;
    return new S3Storage({ endpoint: swift.url, region: swift.region, accessKeyId: swift.user, secretAccessKey: swift.key, forcePathStyle: true });
  },
};

for (const [kind, open] of Object.entries(stores)) {
  describe(`importing from ${kind}`, { timeout: 120_000 }, () => {
    test('by locationRef and by <container>/<name>: RESTORED; another account’s or bucket’s URL 400; another key FAILED', async () => {
      const storage = await open();
      await storage.ensureContainer(container);
      const masterKey = MasterKey.generate();
      const h = await startHarness({ backupStorage: storage, defaultBackupContainer: container });
      const conductor = await startConductor({ store: h.store, transport: h.transport, logger: silentLogger() });
      const taskmanager = await startTaskmanager({ store: h.store, transport: h.transport, logger: silentLogger(), leaseMs: 2_000, sweepIntervalMs: 20, backups: { storage, masterKey } });
      try {
        await createRpcClient(h.transport, conductorContract, conductorTopic).agentHeartbeat({
          host: `import-${kind}`,
          engines: [{ datastore: 'redis', manager: 'redis', name: '7', version: '7.0.15', active: true, inactiveReason: null, capabilities: { ...noCapabilities, backup: true }, parameters: [] }],
          contracts: {},
        });
        const versions = await eventually('the version registered', () => h.store.datastores.listVersions(), (v) => v.length >= 1);
        const versionId = versions[0]!.id;
        const alice: Session = await memberSession(h, 'alice');
        const key = newProjectKey();
        await h.store.projectKeys.getOrCreate(alice.projectId, wrapKey(masterKey, key, alice.projectId), new Date());
        const put = (name: string, sealWith: Buffer) => storage.put(container, name, encodeBackup(Readable.from([rdb()]), { compression: 'zstd', key: sealWith }));
        const post = (location: string, size: number) =>
          h.app.inject({
            method: 'POST',
            url: `/v1.0/${alice.projectId}/backups`,
            headers: { 'x-auth-token': alice.token },
            payload: { backup: { name: 'imported', restore_from: { remote_location: location, local_datastore_version_id: versionId, size } } },
          });
        const ended = async (id: string) => (await eventually(`import ${id}`, () => h.store.backups.get(id), (row) => row?.state !== 'NEW'))!;

        const byUrl = `copied/${newUuid()}.redis.zst.enc`;
        const stored = await put(byUrl, key);
        const location = storage.locationOf(container, byUrl);
        const first = await post(location, stored.size / 1024 ** 3);
        assert.equal(first.statusCode, 202, first.body);
        const row = await ended(json(first).backup.id);
        assert.equal(row.state, 'RESTORED', row.failReason ?? '');
        assert.equal(row.sha256, stored.sha256);
        const view = json(await h.app.inject({ method: 'GET', url: `/v1.0/${alice.projectId}/backups/${row.id}`, headers: { 'x-auth-token': alice.token } })).backup;
        assert.equal(view.locationRef, location);

        const byName = `${newUuid()}.redis.zst.enc`;
        const second = await post(`${container}/${byName}`, (await put(byName, key)).size / 1024 ** 3);
        assert.equal(second.statusCode, 202, second.body);
        assert.equal((await ended(json(second).backup.id)).state, 'RESTORED');

        // the same URL, one container or account over: not this project's, never fetched
        for (const elsewhere of [location.replace(`/${container}/`, '/other-container/'), location.replace(/AUTH_[^/]+/, 'AUTH_other'), location.replace('127.0.0.1', 'localhost')]) {
          if (elsewhere === location) continue;
          const res = await post(elsewhere, 0);
          assert.equal(res.statusCode, 400, `${elsewhere}: ${res.body}`);
          assert.match(json(res).badRequest.message, /is not an object in one of your project's backup containers/);
        }

        const foreign = `${newUuid()}.redis.zst.enc`;
        const third = await post(storage.locationOf(container, foreign), (await put(foreign, newProjectKey())).size / 1024 ** 3);
        assert.equal(third.statusCode, 202, third.body);
        const failed = await ended(json(third).backup.id);
        assert.equal(failed.state, 'FAILED');
        assert.match(failed.failReason ?? '', /cannot be decrypted with this project's key/);
      } finally {
        await taskmanager.stop();
        await conductor.stop();
        await h.close();
        await storage.close();
      }
    });
  });
}
