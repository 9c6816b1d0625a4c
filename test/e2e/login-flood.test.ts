// test-lane: alone (it compares create times with and without a flood: load beside it would skew them)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { measureLoginFlood, median } from '../support/login-flood.js';
import { startServe, type ServeRun } from './serve-run.js';

// A flood of bad logins against `coffer serve` must leave its creates close to their normal
// time: hashing is bounded (one at a time, half a core at most, a short queue, refusals on a
// timer). Login limits are off so that every bad login asks for a hash.
//
// The bound asserted is 3x, not the 1.5x aimed at (and measured by bench/login-flood.ts into
// bench/results/login-flood.md): this box has 2 cores shared with the flood's own client and
// with other test runs, and a create alone already varies by 2x here. Unbounded hashing made
// creates 40x slower, which 3x still catches.

let run: ServeRun;

before(async () => {
  run = await startServe('coffer-e2e-flood', 'Flood-admin-pass-1234', [
    '--login-lockout-attempts', '0', '--login-address-attempts', '0', '--warm-pool-size', '0', '--address-pool', '127.82.1.0/24',
  ]);
});
after(() => run?.stop());

test('16 parallel bad logins leave PostgreSQL creates within 3x of their time alone', { timeout: 900_000 }, async (t) => {
  const f = await measureLoginFlood(run.session, { runs: 3, parallel: 16 });
  const ratio = median(f.flooded) / median(f.quiet);
  t.diagnostic(`creates alone ${f.quiet.map(Math.round).join(', ')} ms; under the flood ${f.flooded.map(Math.round).join(', ')} ms; ratio of medians ${ratio.toFixed(2)}`);
  t.diagnostic(`${f.logins} bad logins answered during the flood, ${f.refusedBusy} of them refused without a hash`);
  assert.ok(f.logins > f.refusedBusy, 'some of the flood was hashed');
  assert.ok(f.refusedBusy > 0, 'the queue filled, so the flood was a flood');
  assert.ok(ratio < 3, `ratio ${ratio.toFixed(2)}`);
});
