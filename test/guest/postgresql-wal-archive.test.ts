import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allWritten } from '../../src/guest/engines/postgresql/wal-archive.js';
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
