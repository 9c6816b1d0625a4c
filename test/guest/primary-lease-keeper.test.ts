import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { primaryLeaseTimes, silentLogger } from '../../src/common/index.js';
import { writeEngineSpec } from '../../src/guest/engines/engine-spec-file.js';
import { PrimaryLeaseKeeper } from '../../src/guest/primary-lease-keeper.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { handDrivenRound } from '../support/hand-round.js';

// The lease keeper of an instance that needs no lease, in a host's round: its slow look at
// whether the instance became a source with replicas is taken in the round's turns, with no
// timer of its own.

describe('primary lease keeper in a round', () => {
  it("looks at the spec in the round's turns only while no lease is needed, and leaves the round when closed", async () => {
    const dir = await tempDataDir('coffer-lease-round-');
    const { round, members, turn } = handDrivenRound();
    let asked = 0;
    const keeper = new PrimaryLeaseKeeper({
      instanceId: 'i-lease',
      dir,
      conductor: {
        renewLease: async () => {
          asked += 1;
          return { lease: 'none' as const };
        },
      } as never,
      logger: silentLogger(),
      times: primaryLeaseTimes,
      fence: async () => undefined,
      regained: () => undefined,
      enginePid: async () => undefined,
      round,
      idleCheckMs: 20,
    });
    try {
      keeper.start();
      assert.equal(members.size, 1, 'joined the round');
      // the look at start, and one asked for now after it, find no spec: no lease needed
      await keeper.renewNow();
      assert.equal(keeper.current, 'idle');
      assert.equal(asked, 0);
      await writeEngineSpec(dir, {
        memoryMb: 256,
        access: null,
        overrides: {},
        replication: { role: 'source', replicas: [{ id: 'r1', address: '127.0.0.2', user: 'repl', slot: 'r1' }] },
      });
      // its idle interval (20 ms) passes many times over: without a turn it does not look
      await sleep(300);
      assert.equal(asked, 0);
      await turn();
      await until('the turn looked, found a source with replicas, and asked for a lease', () => asked === 1, 10_000);
    } finally {
      await keeper.close();
      await rm(dir, { recursive: true, force: true });
    }
    assert.equal(members.size, 0, 'left the round');
  });
});
