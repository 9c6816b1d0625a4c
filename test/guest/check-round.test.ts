import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { CheckRound } from '../../src/guest/check-round.js';
import { silentLogger } from '../../src/common/index.js';

// The host's one round of health checks: every member once per interval, spread over it.

/** lets the checks started by a tick run to their end */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('the check round', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('checks every member once per interval with one timer, each slice at its own moment', async () => {
    const round = new CheckRound({ intervalMs: 1000, slices: 4, logger: silentLogger() });
    const checkedAt: number[][] = Array.from({ length: 10 }, () => []);
    let now = 0;
    const leaves = checkedAt.map((times) =>
      round.join(async () => {
        times.push(now);
      }),
    );
    for (let tick = 1; tick <= 8; tick++) {
      now = tick * 250;
      mock.timers.tick(250);
      await settle();
    }
    for (const times of checkedAt) {
      assert.equal(times.length, 2, 'two intervals: two checks each');
      assert.equal(times[1]! - times[0]!, 1000, 'one interval apart');
    }
    // 10 members in 4 slices: 3, 3, 2, 2 checked at each of the four moments of an interval
    const perMoment = new Map<number, number>();
    for (const times of checkedAt) perMoment.set(times[0]!, (perMoment.get(times[0]!) ?? 0) + 1);
    assert.deepEqual([...perMoment.values()].sort(), [2, 2, 3, 3]);
    for (const leave of leaves) leave();
  });

  it('does not start a check again while it runs, runs a few at a time, and stops once empty', async () => {
    const round = new CheckRound({ intervalMs: 100, slices: 1, concurrency: 2, logger: silentLogger() });
    let running = 0;
    let most = 0;
    let started = 0;
    const releases: (() => void)[] = [];
    const leaves = Array.from({ length: 3 }, () =>
      round.join(
        () =>
          new Promise<void>((resolve) => {
            started += 1;
            running += 1;
            most = Math.max(most, running);
            releases.push(() => {
              running -= 1;
              resolve();
            });
          }),
      ),
    );
    mock.timers.tick(100);
    await settle();
    assert.equal(started, 2, 'two at a time');
    mock.timers.tick(100);
    await settle();
    assert.equal(started, 2, 'the two still running are not started again, the third still waits');
    releases.shift()!();
    await settle();
    assert.equal(started, 3, 'the third starts once one ends');
    assert.equal(most, 2);
    for (const release of releases.splice(0)) release();
    await settle();
    for (const leave of leaves) leave();
    assert.equal(round.size, 0);
    mock.timers.tick(1000);
    await settle();
    assert.equal(started, 3, 'no member, no check');
  });

  it('keeps checking the others after a check fails', async () => {
    const round = new CheckRound({ intervalMs: 100, slices: 1, logger: silentLogger() });
    let checked = 0;
    const leaveFailing = round.join(async () => {
      throw new Error('engine gone');
    });
    const leave = round.join(async () => {
      checked += 1;
    });
    for (let i = 0; i < 3; i++) {
      mock.timers.tick(100);
      await settle();
    }
    assert.equal(checked, 3);
    leave();
    leaveFailing();
  });
});
