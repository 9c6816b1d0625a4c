import assert from 'node:assert/strict';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, mock } from 'node:test';
import { allWritten, PostgresqlWalArchive } from '../../src/guest/engines/postgresql/wal-archive.js';
import { tempDataDir } from '../support/temp-dir.js';
import { parseLsn } from '../../src/guest/engines/postgresql/wal-files.js';

// When the reach check may trust an earlier pg_waldump scan for the same insert position: only
// when that scan could read everything inserted, i.e. nothing but a page header lay between the
// flush and insert positions.

const sizes = { segmentBytes: 16 * 1024 * 1024, pageBytes: 8192n };
const at = (lsn: string) => parseLsn(lsn);

describe('postgresql WAL archive: all inserted WAL written', () => {
  it('holds when the flush position reached the insert position', () => {
    assert.equal(allWritten(at('0/19848C0'), at('0/19848C0'), sizes), true);
  });

  it('holds when only the header of a new page or segment lies between', () => {
    // a segment's first page: the long header, 40 bytes
    assert.equal(allWritten(at('0/3000028'), at('0/3000000'), sizes), true);
    // any other page: the short header, 24 bytes
    assert.equal(allWritten(at('0/3002018'), at('0/3002000'), sizes), true);
  });

  it('does not hold when a record, or the tail of one begun on the page before, is not written yet', () => {
    assert.equal(allWritten(at('0/19848F2'), at('0/19848C0'), sizes), false);
    // 8 bytes of a record's tail after a short header
    assert.equal(allWritten(at('0/3002020'), at('0/3002000'), sizes), false);
    assert.equal(allWritten(at('0/3000030'), at('0/3000000'), sizes), false);
  });
});

describe('postgresql WAL archive: the spool', () => {
  it('is listed again only once its directory changed since it was found empty', async () => {
    const root = await tempDataDir('coffer-pgspool-');
    const spoolDir = join(root, 'wal-spool');
    await mkdir(spoolDir);
    const archive = new PostgresqlWalArchive({
      spoolDir,
      dataDir: root,
      runner: { run: async () => ({ stdout: '', stderr: '' }) } as never,
      program: (name) => name,
      runningEndpoint: async () => undefined,
    });
    // the listing counted where the archive calls it (the builtin's named export, kept in step)
    const fsPromises = createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises');
    const listing = mock.method(fsPromises, 'readdir');
    syncBuiltinESMExports();
    try {
      // a directory changed this very second may change again within its time stamp: listed every round
      assert.deepEqual(await archive.pending(), []);
      assert.deepEqual(await archive.pending(), []);
      assert.equal(listing.mock.callCount(), 2);
      await sleep(1100);
      assert.deepEqual(await archive.pending(), []);
      assert.deepEqual(await archive.pending(), []);
      assert.deepEqual(await archive.pending(), []);
      assert.equal(listing.mock.callCount(), 3, 'settled and empty: not listed again');
      await writeFile(join(spoolDir, '000000010000000000000002'), 'segment');
      await writeFile(join(spoolDir, '00000002.history'), 'history');
      assert.deepEqual(await archive.pending(), ['00000002.history', '000000010000000000000002']);
      assert.equal(listing.mock.callCount(), 4);
    } finally {
      listing.mock.restore();
      syncBuiltinESMExports();
      await rm(root, { recursive: true, force: true });
    }
  });
});
