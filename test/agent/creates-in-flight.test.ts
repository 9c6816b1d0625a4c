// test-lane: parallel (no I/O)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CreatesInFlight } from '../../src/agent/creates-in-flight.js';

// When the warm pool and the spare users may be made back: only once no create is under way.

describe('creates in flight', () => {
  it('is busy from the start of a create until its engine is prepared', () => {
    const creating = new CreatesInFlight();
    assert.equal(creating.busy(), false);
    creating.begin('a');
    creating.begin('b');
    assert.equal(creating.busy(), true);
    let aPrepared = false;
    creating.begin('a', () => aPrepared);
    creating.end('b');
    assert.equal(creating.busy(), true, 'a is not prepared yet');
    aPrepared = true;
    assert.equal(creating.busy(), false);
  });

  it('lets a create whose prepare never comes hold for its window only, counted from its start', () => {
    let now = 0;
    const creating = new CreatesInFlight(1000, () => now);
    creating.begin('a');
    now = 600;
    // placed and hosted: the window still runs from the start
    creating.begin('a', () => false);
    now = 999;
    assert.equal(creating.busy(), true);
    now = 1000;
    assert.equal(creating.busy(), false);
  });
});
