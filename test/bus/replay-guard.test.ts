import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplayGuard } from '../../src/bus/replay-guard.js';
import { LogThrottle } from '../../src/bus/log-throttle.js';

// How a receiver tells a broker's redelivery (flagged by the broker) from someone's copy.

test('a new id is taken; once answered, a copy is a replay and a redelivery is already handled', () => {
  const guard = new ReplayGuard(1_000);
  assert.equal(guard.admit('a', false, 0), 'new');
  guard.settled('a');
  assert.equal(guard.admit('a', false, 1), 'replay');
  assert.equal(guard.admit('a', true, 2), 'already-handled');
});

test('while a message is handled or after its handler threw, only a flagged redelivery runs it again', () => {
  const guard = new ReplayGuard(1_000);
  assert.equal(guard.admit('b', false, 0), 'new');
  assert.equal(guard.admit('b', false, 1), 'replay', 'a copy published while the first runs');
  assert.equal(guard.admit('b', true, 2), 'redelivery', 'its consumer went away mid-way');
  guard.released('b');
  assert.equal(guard.admit('b', false, 3), 'replay');
  assert.equal(guard.admit('b', true, 4), 'redelivery', 'the handler threw and the broker offers it again');
  guard.settled('b');
  assert.equal(guard.admit('b', true, 5), 'already-handled');
});

test('ids are forgotten once their window is over, and only then', () => {
  const guard = new ReplayGuard(1_000);
  guard.admit('old', false, 0);
  guard.settled('old');
  guard.admit('newer', false, 500);
  assert.equal(guard.admit('old', false, 999), 'replay');
  assert.equal(guard.size, 2);
  guard.admit('third', false, 1_000);
  assert.equal(guard.size, 2, 'the first id is gone, the others kept');
  assert.equal(guard.admit('newer', false, 1_400), 'replay');
});

test('a throttled warning logs once per interval and then says how many it left out', () => {
  const throttle = new LogThrottle(60_000);
  assert.deepEqual(throttle.take('k', 0), { log: true, suppressed: 0 });
  assert.deepEqual(throttle.take('k', 10), { log: false, suppressed: 0 });
  assert.deepEqual(throttle.take('k', 20), { log: false, suppressed: 0 });
  assert.deepEqual(throttle.take('other', 30), { log: true, suppressed: 0 });
  assert.deepEqual(throttle.take('k', 60_000), { log: true, suppressed: 2 });
});
