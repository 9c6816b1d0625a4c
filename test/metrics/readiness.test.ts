import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CofferError } from '../../src/common/index.js';
import { Readiness } from '../../src/metrics/index.js';

// How /readyz decides: every check at once, a check that hangs fails as Timeout instead of
// hanging the probe, and only error codes (never messages, which name hosts) reach the answer.

test('ready only when every check answers; failing checks are named with their error code, not their message', async () => {
  const readiness = new Readiness(
    [
      { name: 'stateDatabase', check: async () => undefined },
      { name: 'bus', check: async () => Promise.reject(new CofferError('BusUnavailable', 'broker at amqp://coffer:secret@10.1.2.3 is gone')) },
      { name: 'other', check: async () => Promise.reject(new Error('ECONNREFUSED 10.1.2.4:3306')) },
    ],
    { reuseMs: 0 },
  );
  const report = await readiness.report();
  assert.deepEqual(report, { ready: false, failing: ['bus', 'other'], checks: { stateDatabase: 'ok', bus: 'BusUnavailable', other: 'Error' } });
  assert.doesNotMatch(JSON.stringify(report), /10\.1\.2|secret/);
});

test('a check that never answers fails as Timeout, and the others are still reported', async () => {
  const readiness = new Readiness(
    [
      { name: 'bus', check: () => new Promise<void>(() => undefined) },
      { name: 'stateDatabase', check: async () => undefined },
    ],
    { timeoutMs: 20, reuseMs: 0 },
  );
  assert.deepEqual(await readiness.report(), { ready: false, failing: ['bus'], checks: { bus: 'Timeout', stateDatabase: 'ok' } });
});

test('a recent report is served again instead of asking the dependencies once per probe', async () => {
  let asked = 0;
  const readiness = new Readiness([{ name: 'bus', check: async () => void asked++ }], { reuseMs: 60_000 });
  const reports = await Promise.all([readiness.report(), readiness.report()]);
  await readiness.report();
  assert.equal(asked, 1);
  assert.ok(reports.every((r) => r.ready));
  const fresh = new Readiness([{ name: 'bus', check: async () => void asked++ }], { reuseMs: 0 });
  await fresh.report();
  await fresh.report();
  assert.equal(asked, 3);
});
