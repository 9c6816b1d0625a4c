// A data directory too deep for the engines' Unix sockets (107 bytes a path) is refused when the
// agent starts, with the length it may have, rather than failing creates one by one.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkDataDirDepth } from '../../src/agent/data-dir-depth.js';
import { CofferError } from '../../src/common/index.js';

const check = (dataDir: string) => checkDataDirDepth(dataDir, join(dataDir, 'instances'));

test('a short data directory passes; a long one is refused with the length it may have', () => {
  check('/var/lib/coffer');
  const long = `/home/someone/projects/${'deep/'.repeat(10)}coffer-data`;
  let max = 0;
  assert.throws(
    () => check(long),
    (err: unknown) => {
      assert.ok(err instanceof CofferError);
      const match = /^The data directory (\S+) is too long \((\d+) bytes\): instances keep their engine's Unix socket in it, and a socket path holds at most 107 bytes\. Choose a --data-dir of at most (\d+) bytes, e\.g\. \/var\/lib\/coffer\.$/.exec(err.message);
      assert.ok(match, err.message);
      assert.equal(match[1], long);
      max = Number(match[3]);
      return true;
    },
  );
  // The limit it names is exact: one byte more is refused, that many pass.
  const atMax = `/${'d'.repeat(max - 1)}`;
  check(atMax);
  assert.throws(() => check(`${atMax}x`), /too long/);
  assert.ok(max > 30 && max < 70, `PostgreSQL's data/.s.PGSQL.5432 under instances/<uuid> leaves ${max} bytes`);
});
