import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baseBackupFacts } from '../../src/guest/engines/postgresql/backup.js';
import { TarWatch } from '../../src/guest/engines/postgresql/tar-watch.js';
import { tarArchive } from './tar-archive.js';

// The facts of a base backup, read from the tar stream as it passes: whatever the chunk sizes,
// the same entries are found, and a stream lacking one of them is no complete backup.

const isCode = (code: string) => (err: Error & { code?: string }) => err.code === code;

const label = [
  'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)',
  'CHECKPOINT LOCATION: 0/2000060',
  'BACKUP METHOD: streamed',
  'BACKUP FROM: primary',
  'START TIME: 2026-12-03 13:27:54 UTC',
  'LABEL: coffer',
  'START TIMELINE: 1',
  '',
].join('\n');
const manifestTail = `{ "Path": "global/pg_control", "Size": 8192 }\n],\n"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n],\n"Manifest-Checksum": "ab"}\n`;

function watchIn(archive: Buffer, chunkSize: number): TarWatch {
  const watch = new TarWatch([
    { name: 'backup_label', limit: 4096, keep: 'head' },
    { name: 'backup_manifest', limit: 96, keep: 'tail' },
    { name: 'PG_VERSION', limit: 64, keep: 'head' },
  ]);
  for (let offset = 0; offset < archive.length; offset += chunkSize) watch.see(archive.subarray(offset, offset + chunkSize));
  return watch;
}

describe('base backup facts', () => {
  const archive = tarArchive([
    { name: 'backup_label', content: label },
    { name: 'base/1/1259', content: Buffer.alloc(70_000, 7) },
    { name: './PG_VERSION', content: '15\n' },
    // a size in base-256 must be skipped exactly like an octal one
    { name: 'global/pg_control', content: Buffer.alloc(8192, 1), base256Size: true },
    { name: 'backup_manifest', content: `{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n${'x'.repeat(5000)}${manifestTail}` },
  ]);

  it('finds the entries whatever the chunk sizes, keeping heads and tails as asked', () => {
    for (const size of [1, 7, 511, 512, 513, 4096, archive.length]) {
      const watch = watchIn(archive, size);
      assert.ok(watch.complete, `chunks of ${size}`);
      assert.equal(watch.entry('backup_label')?.toString(), label);
      assert.equal(watch.entry('PG_VERSION')?.toString(), '15\n');
      assert.equal(watch.entry('backup_manifest')?.toString(), manifestTail.slice(-96));
    }
  });

  it('turns them into the facts', () => {
    const watch = watchIn(archive, 1000);
    const facts = baseBackupFacts({
      label: watch.entry('backup_label')?.toString(),
      manifestTail: manifestTail,
      version: watch.entry('PG_VERSION')?.toString(),
    });
    assert.deepEqual(facts, { format: 'tar', version: '15', timeline: '1', 'start-lsn': '0/2000028', 'stop-lsn': '0/2000100' });
  });

  it('names a backup ending on a later timeline', () => {
    const tail = manifestTail.replace('{ "Timeline": 1, "Start-LSN": "0/2000028"', '{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000090" },\n{ "Timeline": 2, "Start-LSN": "0/2000090"');
    const facts = baseBackupFacts({ label, manifestTail: tail, version: '15' });
    assert.equal(facts['stop-timeline'], '2');
    assert.equal(facts['stop-lsn'], '0/2000100');
  });

  it('refuses a stream without a label, manifest or version, or that is no tar', () => {
    assert.throws(() => baseBackupFacts({ manifestTail, version: '15' }), isCode('EngineError'));
    assert.throws(() => baseBackupFacts({ label, version: '15' }), isCode('EngineError'));
    assert.throws(() => baseBackupFacts({ label, manifestTail }), isCode('EngineError'));
    assert.throws(() => baseBackupFacts({ label: 'nonsense', manifestTail, version: '15' }), isCode('EngineError'));
    const watch = watchIn(archive.subarray(0, archive.length - 1024), 512);
    assert.equal(watch.complete, false, 'a stream cut before its end marker is not complete');
    const garbage = Buffer.alloc(512, 0x41);
    assert.throws(() => new TarWatch([]).see(garbage), isCode('EngineError'));
  });
});
