import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SwiftStorage } from '../../src/backup/index.js';
import { isCofferError } from '../../src/common/index.js';
import { processesMentioning } from '../support/processes.js';
import { startSwift, type SwiftServer } from '../support/swift-server.js';
import { closedPort, startSilentServer } from './silent-server.js';
import { backupStorageSuite, bodyOf, readAll } from './storage.suite.js';

const segmentBytes = 1024 * 1024;

// one all-in-one for the file; the last hook checks that none of its processes outlive it
const started = Date.now();
const swiftReady = startSwift().then((swift) => {
  console.log(`Swift all-in-one answered after ${Date.now() - started} ms`);
  return swift;
});
after(async () => {
  const swift = await swiftReady;
  await swift.stop();
  assert.deepEqual(processesMentioning(swift.address), [], 'no Swift process outlives the tests');
});

backupStorageSuite('swift', { credentials: true, network: true }, async () => {
  const swift = await swiftReady;
  const silent = await startSilentServer();
  const down = await closedPort();
  const open = (authUrl: string, key = swift.key, idleTimeoutMs?: number) =>
    new SwiftStorage({ credentials: { authUrl, user: swift.user, key }, segmentBytes, ...(idleTimeoutMs === undefined ? {} : { idleTimeoutMs }) });
  const names = async (container: string) => {
    const reply = await swift.call('GET', `/${container}?format=json`);
    if (reply.status === 404) return [];
    return ((await reply.json()) as { name: string }[]).map((entry) => `${container}/${entry.name}`);
  };
  return {
    storage: open(swift.authUrl),
    partBytes: segmentBytes,
    withWrongCredentials: () => open(swift.authUrl, 'not-the-key'),
    unreachable: () => open(`http://127.0.0.1:${down}/auth/v1.0`),
    silent: () => open(`${silent.url}/auth/v1.0`, swift.key, 300),
    secrets: [swift.key],
    corrupt: (container, name) => swift.corruptObject(container, name),
    rawNames: async (container) => [...(await names(container)), ...(await names(`${container}_segments`))],
    close: () => silent.stop(),
  };
});

describe('SwiftStorage', { timeout: 120_000 }, () => {
  let swift: SwiftServer;
  before(async () => {
    swift = await swiftReady;
  });

  it('stores large objects as Trove does: segments joined by a static large object manifest', async () => {
    const storage = new SwiftStorage({ credentials: { authUrl: swift.authUrl, user: swift.user, key: swift.key }, segmentBytes });
    await storage.ensureContainer('database_backups');
    const data = Buffer.alloc(segmentBytes * 2 + 10, 7);
    const stored = await storage.put('database_backups', 'b-1.zst.enc', bodyOf(data), { metadata: { 'backup-id': 'b-1' } });
    const head = await swift.call('HEAD', '/database_backups/b-1.zst.enc');
    assert.equal(head.headers.get('x-static-large-object'), 'True');
    assert.equal(head.headers.get('x-object-meta-sha256'), stored.sha256);
    assert.equal(head.headers.get('x-object-meta-backup-id'), 'b-1');
    const manifest = (await (await swift.call('GET', '/database_backups/b-1.zst.enc?multipart-manifest=get')).json()) as { name: string; bytes: number }[];
    assert.deepEqual(manifest.map((segment) => segment.bytes), [segmentBytes, segmentBytes, 10]);
    assert.match(manifest[0]!.name, /^\/database_backups_segments\/b-1\.zst\.enc\/[^/]+\/00000000$/);
    assert.equal(storage.locationOf('database_backups', 'b-1.zst.enc'), `${swift.url}/v1/AUTH_test/database_backups/b-1.zst.enc`);
  });

  it('fails a read that Swift breaks off at a damaged segment, without ever ending it', async () => {
    const storage = new SwiftStorage({ credentials: { authUrl: swift.authUrl, user: swift.user, key: swift.key }, segmentBytes });
    await storage.ensureContainer('damaged');
    const data = randomBytes(segmentBytes * 3);
    await storage.put('damaged', 'object', bodyOf(data));
    await swift.corruptObject('damaged', 'object', 0);
    const stream = await storage.get('damaged', 'object');
    let ended = false;
    stream.on('end', () => (ended = true));
    await assert.rejects(readAll(stream), (err: unknown) => {
      assert.ok(isCofferError(err) && err.code === 'BackupStorageUnavailable', String(err));
      assert.match(err.message, /broke off reading backup object object/);
      return true;
    });
    assert.equal(ended, false);
  });

  it('authenticates again when its token is refused', async () => {
    const storage = new SwiftStorage({ credentials: { authUrl: swift.authUrl, user: swift.user, key: swift.key }, segmentBytes });
    await storage.ensureContainer('renewed');
    await storage.put('renewed', 'before', bodyOf(Buffer.from('x')));
    await swift.forgetTokens();
    await storage.put('renewed', 'after', bodyOf(Buffer.alloc(segmentBytes * 2, 1)));
    assert.deepEqual((await storage.list('renewed')).map((o) => o.name), ['after', 'before']);
  });

  it('takes a token and storage URL issued elsewhere', async () => {
    const auth = await fetch(swift.authUrl, { headers: { 'x-auth-user': swift.user, 'x-auth-key': swift.key } });
    const storage = new SwiftStorage({
      credentials: { storageUrl: auth.headers.get('x-storage-url')!, token: auth.headers.get('x-auth-token')! },
      segmentBytes,
    });
    await storage.ensureContainer('tokens');
    assert.equal((await storage.put('tokens', 'x', bodyOf(Buffer.from('x')))).size, 1);
    assert.equal((await storage.list('tokens')).length, 1);
  });
});
