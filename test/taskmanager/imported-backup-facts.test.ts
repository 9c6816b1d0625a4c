import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DatastoreVersionRow } from '../../src/db/index.js';
import { noEngineCapabilities } from '../../src/common/index.js';
import { importInspector } from '../../src/taskmanager/imported-backup-facts.js';
import { baseBackup, rdb } from '../api/backup-import-objects.js';

// What an import reads from an object's content (the facts a restore needs), whatever the chunks
// it arrives in, and what makes it refuse the object.

const version = (manager: string, name: string, full: string): DatastoreVersionRow => ({
  id: `${manager}-${name}`,
  datastoreId: manager,
  name,
  version: full,
  manager,
  active: true,
  inactiveReason: null,
  disabledByAdmin: false,
  updatedAt: new Date(),
  capabilities: { ...noEngineCapabilities, backup: true },
  parameters: [],
});

function inspect(v: DatastoreVersionRow, content: Buffer, chunkBytes: number) {
  const inspector = importInspector(v);
  for (let at = 0; at < content.length; at += chunkBytes) inspector.see(content.subarray(at, at + chunkBytes));
  return inspector.facts();
}

describe('PostgreSQL base backups', () => {
  const pg15 = version('postgresql', '15', '15.19');
  test('PG_VERSION and backup_label are read in any chunking', () => {
    const content = baseBackup('15');
    for (const chunk of [1, 7, 511, 512, 513, 4096, content.length]) {
      assert.deepEqual(inspect(pg15, content, chunk), { format: 'tar', version: '15', timeline: '1', 'start-lsn': '0/2000028' }, `chunks of ${chunk}`);
    }
  });

  test('another major, a cut archive, no tar at all are refused with why', () => {
    assert.throws(() => inspect(pg15, baseBackup('16'), 100), /is a backup of PostgreSQL 16, not of datastore version 15/);
    const content = baseBackup('15');
    assert.throws(() => inspect(pg15, content.subarray(0, content.length - 1024 - 512), 100), /its tar archive ends early/);
    assert.throws(() => inspect(pg15, Buffer.alloc(2048, 1), 100), /it is not a tar archive/);
    assert.throws(() => inspect(pg15, Buffer.alloc(0), 100), /it is empty/);
  });
});

describe('Redis RDB snapshots', () => {
  const redis7 = version('redis', '7', '7.0.15');
  test('the version that wrote it, in any chunking; an older one is read by a newer Redis', () => {
    for (const chunk of [1, 3, 9, 64]) {
      assert.deepEqual(inspect(redis7, rdb('7.0.15'), chunk), { format: 'rdb', 'rdb-version': '10', 'redis-version': '7.0.15' });
    }
    assert.equal(inspect(redis7, rdb('6.2.14'), 5)['redis-version'], '6.2.14');
  });

  test('a newer Redis’s snapshot, no end marker, no RDB header are refused', () => {
    assert.throws(() => inspect(redis7, rdb('7.2.4'), 5), /snapshot of Redis 7\.2\.4, which datastore version 7 \(Redis 7\.0\.15\) cannot read/);
    const content = rdb();
    assert.throws(() => inspect(redis7, content.subarray(0, content.length - 9), 5), /ends before its end marker/);
    assert.throws(() => inspect(redis7, Buffer.from('not an rdb at all'), 5), /does not start with an RDB header/);
  });

  test('engines whose imports Coffer cannot read have no inspector', () => {
    assert.throws(() => importInspector(version('mariadb', '10.11', '10.11.6')), /not supported for datastore mariadb/);
  });
});
