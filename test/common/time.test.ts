import assert from 'node:assert/strict';
import { test } from 'node:test';
import { troveTimestamp } from '../../src/common/index.js';

test("troveTimestamp is toISOString's first 19 characters, for any moment", () => {
  const moments = [
    new Date(0),
    new Date('2019-12-23T20:53:38.999Z'),
    new Date('2026-01-09T03:04:05.000Z'),
    new Date('2099-12-31T23:59:59.500Z'),
    new Date('0999-06-01T00:00:00Z'),
    new Date('+010000-01-01T00:00:00Z'),
  ];
  for (let n = 0; n < 2000; n++) moments.push(new Date(Math.floor(Math.random() * 4_102_444_800_000)));
  for (const moment of moments) assert.equal(troveTimestamp(moment), moment.toISOString().slice(0, 19), moment.toISOString());
});

test('troveTimestamp refuses an invalid date as toISOString does', () => {
  assert.throws(() => troveTimestamp(new Date(Number.NaN)), RangeError);
});
