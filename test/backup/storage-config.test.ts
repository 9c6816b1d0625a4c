import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import {
  describeBackupStorage,
  LocalDirectoryStorage,
  openBackupStorage,
  parseBackupStorageConfig,
  S3Storage,
  SwiftStorage,
} from '../../src/backup/index.js';
import { isCofferError } from '../../src/common/index.js';

const swiftKey = 'swift-key-never-shown';
const s3Secret = 's3-secret-never-shown';

function refuses(raw: unknown, problem: RegExp): void {
  assert.throws(
    () => parseBackupStorageConfig(raw),
    (err: unknown) => {
      assert.ok(isCofferError(err) && err.code === 'BadRequest', String(err));
      assert.match(err.message, problem);
      for (const secret of [swiftKey, s3Secret]) assert.ok(!err.message.includes(secret), 'no secret in the message');
      return true;
    },
  );
}

describe('backup storage configuration', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coffer-storage-config-'));
    await writeFile(join(dir, 'swift-key'), `${swiftKey}\n`, { mode: 0o600 });
    await writeFile(join(dir, 's3-secret'), `${s3Secret}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'empty'), '');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('opens the adapter each driver names', () => {
    assert.ok(openBackupStorage(parseBackupStorageConfig({ driver: 'local', dir: '/var/lib/coffer/backups' })) instanceof LocalDirectoryStorage);
    const swift = openBackupStorage(
      parseBackupStorageConfig({ driver: 'swift', authUrl: 'http://swift:8080/auth/v1.0', user: 'coffer:backups', key: swiftKey, segmentBytes: 1 << 20 }),
    );
    assert.ok(swift instanceof SwiftStorage);
    assert.equal(swift.kind, 'swift');
    const s3 = openBackupStorage(
      parseBackupStorageConfig({ driver: 's3', endpoint: 'http://minio:9000', region: 'us-east-1', accessKeyId: 'AKIA', secretAccessKey: s3Secret, forcePathStyle: true }),
    );
    assert.ok(s3 instanceof S3Storage);
    assert.equal(s3.locationOf('backups', 'b-1.zst.enc'), 'http://minio:9000/backups/b-1.zst.enc');
  });

  it('reads secrets from files, and shows them nowhere', () => {
    const swiftConfig = parseBackupStorageConfig({ driver: 'swift', authUrl: 'http://swift:8080/auth/v1.0', user: 'coffer:backups', keyFile: join(dir, 'swift-key') });
    const s3Config = parseBackupStorageConfig({ driver: 's3', endpoint: 'https://s3.example', region: 'eu-west-1', accessKeyId: 'AKIA', secretAccessKeyFile: join(dir, 's3-secret') });
    for (const config of [swiftConfig, s3Config]) {
      const storage = openBackupStorage(config);
      for (const shown of [describeBackupStorage(config), inspect(storage, { depth: 10 }), JSON.stringify(config)]) {
        for (const secret of [swiftKey, s3Secret]) assert.ok(!shown.includes(secret), `${secret} shown in ${shown.slice(0, 80)}`);
      }
    }
    assert.equal(describeBackupStorage(swiftConfig), 'Swift at http://swift:8080/auth/v1.0 as coffer:backups');
  });

  it('takes a token and storage URL issued elsewhere (e.g. by Keystone)', () => {
    const config = parseBackupStorageConfig({ driver: 'swift', storageUrl: 'http://swift:8080/v1/AUTH_p', token: 'gAAAA' });
    // with the account known from the start, a location needs no request
    assert.equal(openBackupStorage(config).locationOf('c', 'a/b'), 'http://swift:8080/v1/AUTH_p/c/a/b');
  });

  it('names what is missing or wrong, never a value', () => {
    refuses({ driver: 'ftp' }, /driver/);
    refuses({ driver: 'local', dir: 'relative/path' }, /absolute/);
    refuses({ driver: 'swift', authUrl: 'http://swift/auth/v1.0', user: 'u' }, /key/);
    refuses({ driver: 'swift', authUrl: 'http://swift/auth/v1.0', user: 'u', key: swiftKey, keyFile: '/k' }, /one of key and keyFile/);
    refuses({ driver: 'swift', user: 'u', key: swiftKey }, /authUrl/);
    refuses({ driver: 's3', endpoint: 'http://s3', region: 'r', accessKeyId: 'a' }, /secretAccessKey/);
    refuses({ driver: 's3', endpoint: 'http://s3', region: 'r', accessKeyId: 'a', secretAccessKey: s3Secret, partBytes: 1024 }, /partBytes/);
    refuses({ driver: 's3', endpoint: 'ftp://s3', region: 'r', accessKeyId: 'a', secretAccessKey: s3Secret }, /endpoint/);
  });

  it('says which secret file it cannot read', () => {
    for (const [file, problem] of [[join(dir, 'missing'), /Cannot read the S3 secret access key file .*missing \(ENOENT\)/], [join(dir, 'empty'), /is empty/]] as const) {
      const config = parseBackupStorageConfig({ driver: 's3', endpoint: 'http://s3', region: 'r', accessKeyId: 'a', secretAccessKeyFile: file });
      assert.throws(() => openBackupStorage(config), problem);
    }
  });
});
