import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { minS3PartBytes, S3Storage } from '../../src/backup/index.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { processesMentioning } from '../support/processes.js';
import { startSwift, type SwiftServer } from '../support/swift-server.js';
import { closedPort, startSilentServer } from './silent-server.js';
import { backupStorageSuite, bodyOf } from './storage.suite.js';

// S3 as Swift's s3api middleware serves it, with tempauth checking the signatures: the same
// all-in-one as the Swift tests, reached through the other protocol.

const partBytes = minS3PartBytes;

function s3Options(swift: SwiftServer, endpoint = swift.url, secretAccessKey = swift.key) {
  return { endpoint, region: swift.region, accessKeyId: swift.user, secretAccessKey, forcePathStyle: true, partBytes };
}

// one all-in-one for the file; the last hook checks that none of its processes outlive it
const swiftReady = startSwift();
after(async () => {
  const swift = await swiftReady;
  await swift.stop();
  assert.deepEqual(processesMentioning(swift.address), [], 'no Swift process outlives the tests');
});

backupStorageSuite('s3', { credentials: true, network: true }, async () => {
  const swift = await swiftReady;
  const silent = await startSilentServer();
  const down = await closedPort();
  // a client of its own to look below the adapter: every key (records too) and unfinished uploads
  const raw = new S3Client({ ...s3Options(swift), credentials: { accessKeyId: swift.user, secretAccessKey: swift.key } });
  const swiftNames = async (container: string) => {
    const reply = await swift.call('GET', `/${encodeURIComponent(container)}?format=json`);
    if (reply.status === 404) return [];
    return ((await reply.json()) as { name: string }[]).map((entry) => `swift:${container}/${entry.name}`);
  };
  return {
    storage: new S3Storage(s3Options(swift)),
    partBytes,
    withWrongCredentials: () => new S3Storage(s3Options(swift, swift.url, 'not-the-secret')),
    unreachable: () => new S3Storage(s3Options(swift, `http://127.0.0.1:${down}`)),
    silent: () => new S3Storage({ ...s3Options(swift, silent.url), idleTimeoutMs: 300 }),
    secrets: [swift.key],
    replacedPartsRemain: /^swift:[^/]+\+segments\//,
    // s3api keeps a multipart object as a static large object whose segments are Swift objects
    corrupt: (container, name) => swift.corruptObject(container, name),
    async rawNames(container) {
      const keys = (await raw.send(new ListObjectsV2Command({ Bucket: container }))).Contents ?? [];
      const uploads = (await raw.send(new ListMultipartUploadsCommand({ Bucket: container }))).Uploads ?? [];
      return [
        ...keys.map((key) => key.Key!),
        ...uploads.map((upload) => `upload:${upload.Key}`),
        // where s3api keeps the parts, seen through Swift
        ...(await swiftNames(`${container}+segments`)),
      ];
    },
    async close() {
      raw.destroy();
      await silent.stop();
    },
  };
});

describe('S3Storage', { timeout: 120_000 }, () => {
  let swift: SwiftServer;
  before(async () => {
    swift = await swiftReady;
  });

  it('keeps the user metadata on the object for other S3 tools, and the SHA-256 in a record beside it', async () => {
    const storage = new S3Storage(s3Options(swift));
    await storage.ensureContainer('tools');
    const stored = await storage.put('tools', 'inst/full.zst.enc', bodyOf(Buffer.alloc(partBytes + 1, 1)), { metadata: { 'backup-id': 'b-1' } });
    const raw = new S3Client({ ...s3Options(swift), credentials: { accessKeyId: swift.user, secretAccessKey: swift.key } });
    try {
      const head = await raw.send(new HeadObjectCommand({ Bucket: 'tools', Key: 'inst/full.zst.enc' }));
      assert.equal(head.Metadata?.['backup-id'], 'b-1');
      const keys = (await raw.send(new ListObjectsV2Command({ Bucket: 'tools' }))).Contents!.map((key) => key.Key);
      assert.deepEqual(keys, ['inst/.full.zst.enc.meta.json', 'inst/full.zst.enc']);
    } finally {
      raw.destroy();
    }
    assert.equal((await storage.head('tools', 'inst/full.zst.enc'))?.sha256, stored.sha256);
    assert.equal(storage.locationOf('tools', 'inst/full.zst.enc'), `${swift.url}/tools/inst/full.zst.enc`);
  });

  it('refuses parts smaller than S3 allows, and bucket names S3 does not', async () => {
    assert.throws(() => new S3Storage({ ...s3Options(swift), partBytes: minS3PartBytes - 1 }), /at least/);
    const storage = new S3Storage(s3Options(swift));
    await rejectsWithCode(storage.ensureContainer('Database_Backups'), 'BadRequest');
  });
});
