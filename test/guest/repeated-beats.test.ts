import assert from 'node:assert/strict';
import { it } from 'node:test';
import { RepeatedBeats } from '../../src/guest/repeated-beats.js';

// Which periodic heartbeats a guest sends: news at once, a repeat of the same word only now and then.

const healthy = { status: 'HEALTHY', message: undefined, carriesNews: false };

it('sends a new status twice, then its repeats once per keep-alive period', () => {
  const beats = new RepeatedBeats(30_000);
  const sentAt: number[] = [];
  for (let now = 0; now <= 100_000; now += 10_000) {
    if (beats.due(healthy, now)) {
      beats.sent(healthy, now);
      sentAt.push(now);
    }
  }
  assert.deepEqual(sentAt, [0, 10_000, 40_000, 70_000, 100_000]);
});

it('sends at once what differs from the last beat sent: a status, a message, or anything riding along', () => {
  const beats = new RepeatedBeats(30_000);
  beats.sent(healthy, 0);
  beats.sent(healthy, 10_000);
  assert.equal(beats.due(healthy, 20_000), false);
  assert.equal(beats.due({ ...healthy, status: 'RUNNING' }, 20_000), true);
  assert.equal(beats.due({ ...healthy, message: 'The volume is nearly full.' }, 20_000), true);
  assert.equal(beats.due({ ...healthy, carriesNews: true }, 20_000), true);
  // a beat an operation sent (a restart's HEALTHY) counts as the last one sent
  beats.sent({ ...healthy, status: 'RESTARTING' }, 21_000);
  beats.sent(healthy, 22_000);
  assert.equal(beats.due(healthy, 32_000), true, 'a status back after a change goes twice again');
  beats.sent(healthy, 32_000);
  assert.equal(beats.due(healthy, 42_000), false);
});
