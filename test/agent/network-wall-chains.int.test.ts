// test-lane: parallel (it walls uids of no user, far above any useradd hands out, and reads only their own chains and map elements)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { LocalProcessRunner } from '../../src/agent/local-process-runner.js';
import { NetworkWall } from '../../src/agent/network-wall.js';
import { chainOf } from '../support/network-walls.js';

// How the wall is kept in nftables: a chain per walled uid and one map element sending the uid's
// packets there, changed by name, so that taking a uid down never lists the table and never
// touches another uid's wall. (What the wall lets through is tested with real users in
// network-wall.int.test.ts and the compute driver's conformance suite.)

const run = promisify(execFile);
const notRoot = process.getuid?.() !== 0 && 'only root can set nftables';

async function inMap(uid: number): Promise<boolean> {
  const { stdout } = await run('nft', ['-j', 'list', 'map', 'inet', 'coffer', 'walls']);
  const parsed = JSON.parse(stdout) as { nftables: { map?: { elem?: [number, unknown][] } }[] };
  return parsed.nftables.flatMap((item) => item.map?.elem ?? []).some(([key]) => key === uid);
}

async function inOldSet(uid: number): Promise<boolean> {
  const { stdout } = await run('nft', ['-j', 'list', 'set', 'inet', 'coffer', 'walled']);
  const parsed = JSON.parse(stdout) as { nftables: { set?: { elem?: number[] } }[] };
  return parsed.nftables.flatMap((item) => item.set?.elem ?? []).includes(uid);
}

describe('network wall chains', { skip: notRoot }, () => {
  const wall = new NetworkWall(new LocalProcessRunner(undefined));
  // uids no user has: far above what useradd hands out, random so that parallel runs do not meet
  const base = 4_000_000_000 + Math.floor(Math.random() * 1_000_000) * 100;
  const [a, b, c, d, e, f] = [base + 1, base + 2, base + 3, base + 4, base + 5, base + 6];

  after(async () => {
    for (const uid of [a, b, c, d, e, f]) await wall.remove(uid);
  });

  it("removes a uid's chain and map element by name and keeps its neighbour's; raising again replaces what it allowed", async () => {
    await wall.raise(a, [{ address: '127.0.0.5', port: 5432 }]);
    await wall.raise(b, [
      { address: '127.0.0.6', port: 6379 },
      { address: '::1', port: 6380 },
    ]);
    assert.ok(await inMap(a));
    assert.ok(await inMap(b));
    const ofB = (await chainOf(b))!;
    assert.equal(ofB.length, 4, ofB.join('\n'));
    assert.match(ofB[0]!, /ip daddr 127\.0\.0\.6 th dport 6379 accept/);
    assert.match(ofB[1]!, /ip6 daddr ::1 th dport 6380 accept/);
    assert.match(ofB[2]!, /reject with tcp reset/);
    assert.match(ofB[3]!, /reject/);

    await wall.remove(a);
    assert.equal(await inMap(a), false, "a's element is gone");
    assert.equal(await chainOf(a), undefined, "a's chain is gone");
    assert.ok(await inMap(b), "b's element stays");
    assert.deepEqual(await chainOf(b), ofB, "b's chain is as it was");
    // idempotent
    await wall.remove(a);

    await wall.raise(b, [{ address: '127.0.0.7', port: 5432 }]);
    const replaced = (await chainOf(b))!;
    assert.equal(replaced.length, 3, replaced.join('\n'));
    assert.match(replaced[0]!, /127\.0\.0\.7 th dport 5432 accept/);
    // and with nothing allowed, everything is refused
    await wall.raise(b, []);
    assert.equal((await chainOf(b))!.length, 2);
  });

  it('takes a uid out of the walls of before (the set `walled`) when it walls or removes it', async () => {
    await wall.raise(c, []);
    await run('nft', ['add', 'element', 'inet', 'coffer', 'walled', `{ ${c} }`]);
    assert.ok(await inOldSet(c));
    await wall.raise(c, [{ address: '127.0.0.8', port: 5432 }]);
    assert.equal(await inOldSet(c), false, 'walled again: out of the old set');
    await run('nft', ['add', 'element', 'inet', 'coffer', 'walled', `{ ${c} }`]);
    await wall.remove(c);
    assert.equal(await inOldSet(c), false, 'removed: out of the old set');
    assert.equal(await inMap(c), false);
  });

  it('extends a wall of nothing into the very chain a whole raise makes, and refuses a uid with no chain, changing nothing', async () => {
    const allowed = [
      { address: '127.0.0.9', port: 6379 },
      { address: '::1', port: 6380 },
    ];
    await wall.raise(d, allowed);
    const raised = (await chainOf(d))!;
    await wall.raise(e, []);
    await wall.extend(e, allowed);
    assert.deepEqual(await chainOf(e), raised, 'the same rules in the same order');
    assert.ok(await inMap(e));

    // no chain (a host rebooted since the wall of nothing, the table flushed): nothing is added
    await assert.rejects(wall.extend(f, allowed), /network wall/);
    assert.equal(await chainOf(f), undefined);
    assert.equal(await inMap(f), false);
  });
});
