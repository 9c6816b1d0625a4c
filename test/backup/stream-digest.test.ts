import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { StreamDigest } from '../../src/backup/stream-digest.js';
import { collect } from './codec-helpers.js';

// The size and SHA-256 of what passes, known at the end, with the bytes passed unchanged.

test('passes bytes unchanged and knows their size and SHA-256 once they ended', async () => {
  const chunks = [randomBytes(10), randomBytes(70_000), Buffer.alloc(0), randomBytes(1)];
  const digest = new StreamDigest();
  assert.throws(() => digest.sha256, /only once the stream ended/);
  const out = await collect(Readable.from(chunks).pipe(digest));
  const whole = Buffer.concat(chunks);
  assert.deepEqual(out, whole);
  assert.equal(digest.size, whole.length);
  assert.equal(digest.sha256, createHash('sha256').update(whole).digest('hex'));
});

test('an empty stream has the SHA-256 of nothing', async () => {
  const digest = new StreamDigest();
  await pipeline(Readable.from([]), digest, async function* (source) {
    for await (const _ of source) yield _;
  });
  assert.equal(digest.size, 0);
  assert.equal(digest.sha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});
