import assert from 'node:assert/strict';
import { access, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LocalProcessRunner } from '../../src/agent/index.js';
import { WarmPool, burstCreates, defaultWarmPoolSize, diskFreeBytes, thisHost, type WarmKind } from '../../src/agent/warm-pool.js';
import { silentLogger } from '../../src/common/logger.js';
import type { WarmStart } from '../../src/guest/index.js';
import { until } from '../support/wait.js';

// The pool's bookkeeping with a stand-in engine whose "cluster" is a file naming itself: what
// counts as complete, atomic takes, refills, clean-up at start, failures and stop. The real
// engine's clusters are tested in warm-pool.int.test.ts.

const binary = { versionName: '1', version: '1.0', binDir: '/nonexistent' };
const logger = silentLogger();
const runner = new LocalProcessRunner(undefined);

interface FakeStart extends WarmStart {
  made: number;
  discarded: string[];
  /** makes wait on this until released */
  gate: Promise<void>;
  fail: boolean;
}

function fakeStart(): FakeStart & { release(): void } {
  let release!: () => void;
  const fake = {
    made: 0,
    discarded: [] as string[],
    fail: false,
    gate: new Promise<void>((resolve) => (release = resolve)),
    release: () => release(),
    async make(dir: string, _binary: unknown, _runner: unknown, signal: AbortSignal) {
      await new Promise<void>((resolve, reject) => {
        if (signal.aborted) reject(new Error('aborted'));
        signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        fake.gate.then(resolve);
      });
      if (fake.fail) throw new Error('make failed');
      fake.made += 1;
      await writeFile(join(dir, 'cluster'), `cluster ${fake.made}`);
    },
    async discard(dir: string) {
      fake.discarded.push(dir);
    },
  };
  return fake;
}

describe('warm pool', () => {
  const roots: string[] = [];
  const pools: WarmPool[] = [];
  after(async () => {
    for (const pool of pools) await pool.stop();
    for (const root of roots) await rm(root, { recursive: true, force: true });
  });

  async function newPool(size: number, warm: WarmStart, dir?: string, retryMs?: number, busy?: () => boolean) {
    const root = dir ?? (await mkdtemp(join(tmpdir(), 'coffer-wp-')));
    if (dir === undefined) roots.push(root);
    const kinds: WarmKind[] = [{ name: 'fake-1', binary, warm }];
    const pool = new WarmPool({ dir: join(root, 'pool'), size, kinds, runner, logger, ...(retryMs ? { retryMs } : {}), ...(busy ? { busy, busyPollMs: 10 } : {}) });
    pools.push(pool);
    return { pool, root, kindDir: join(root, 'pool', 'fake-1') };
  }

  const full = (pool: WarmPool, size: number) =>
    until(`${size} entries`, async () => (await pool.count('fake-1')) === size);

  it('fills to its size, hands each entry to one taker only, and refills', async () => {
    const fake = fakeStart();
    const { pool, root, kindDir } = await newPool(3, fake);
    pool.start();
    // nothing complete while the first entry is being made
    await until('a build', async () => (await readdir(kindDir).catch(() => [])).length > 0);
    assert.equal(await pool.count('fake-1'), 0);
    assert.equal(await pool.take('fake-1', join(root, 'none')), false);
    fake.release();
    await full(pool, 3);

    const dests = [0, 1, 2, 3, 4, 5].map((n) => join(root, `taken-${n}`));
    const taken = await Promise.all(dests.map((dest) => pool.take('fake-1', dest)));
    assert.equal(taken.filter(Boolean).length, 3, 'six takers, three entries');
    const clusters = await Promise.all(
      dests.filter((_, i) => taken[i]).map((dest) => readFile(join(dest, 'cluster'), 'utf8')),
    );
    assert.equal(new Set(clusters).size, 3, 'each taker got a different entry');
    await full(pool, 3);
    assert.equal(fake.made, 6);
    assert.equal(pool.source('other-1'), undefined);
  });

  it('begins no build while creates are under way, and fills back once they are over', async () => {
    const fake = fakeStart();
    fake.release();
    let creating = false;
    const { pool, root, kindDir } = await newPool(2, fake, undefined, undefined, () => creating);
    pool.start();
    await full(pool, 2);
    creating = true;
    assert.equal(await pool.take('fake-1', join(root, 'a')), true);
    assert.equal(await pool.take('fake-1', join(root, 'b')), true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(await readdir(kindDir), [], 'nothing built, nor begun, during the creates');
    assert.equal(fake.made, 2);
    creating = false;
    await full(pool, 2);
    assert.equal(fake.made, 4);
  });

  it('stops while it waits for creates to finish', async () => {
    const fake = fakeStart();
    fake.release();
    const { pool, kindDir } = await newPool(1, fake, undefined, undefined, () => true);
    pool.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await pool.stop();
    assert.equal(fake.made, 0);
    assert.deepEqual(await readdir(kindDir).catch(() => []), []);
  });

  it('hands a taken entry to its taker before the take resolves, and removes one it could not hand over', async () => {
    const fake = fakeStart();
    const { pool, root } = await newPool(2, fake);
    pool.start();
    fake.release();
    await full(pool, 2);

    const seen: string[] = [];
    const handed = pool.source('fake-1', async (path) => {
      seen.push(await readFile(join(path, 'cluster'), 'utf8'));
      await writeFile(join(path, 'handed'), '');
    })!;
    const dest = join(root, 'handed');
    assert.equal(await handed.take(dest), true);
    assert.deepEqual(seen, [await readFile(join(dest, 'cluster'), 'utf8')], 'handed over at its destination');
    await access(join(dest, 'handed'));

    const refused = pool.source('fake-1', async () => {
      throw new Error('chown failed');
    })!;
    const lost = join(root, 'lost');
    assert.equal(await refused.take(lost), false, 'a taker that cannot have it initialises its own');
    await assert.rejects(access(lost), 'the entry is removed, not left half-given');
    assert.ok(fake.discarded.includes(lost));
  });

  it('removes half-made entries, excess entries and unknown kinds at start', async () => {
    const root = await mkdtemp(join(tmpdir(), 'coffer-wp-'));
    roots.push(root);
    const kindDir = join(root, 'pool', 'fake-1');
    const complete = ['0000000000000001', '0000000000000002', '0000000000000003'];
    for (const name of [...complete, '.building-00000000000000aa']) {
      await mkdir(join(kindDir, name), { recursive: true });
      await writeFile(join(kindDir, name, 'cluster'), name);
    }
    await mkdir(join(root, 'pool', 'gone-9', '0000000000000009'), { recursive: true });
    const fake = fakeStart();
    const { pool } = await newPool(2, fake, root);
    pool.start();
    await until('clean-up', async () => (await readdir(join(root, 'pool'))).length === 1);
    assert.deepEqual(await readdir(kindDir), complete.slice(0, 2), 'the half-made and the excess entry are gone');
    assert.ok(fake.discarded.some((dir) => dir.endsWith('.building-00000000000000aa')), 'the engine stopped what the half-made entry ran');
    assert.equal(await pool.take('fake-1', join(root, 'a')), true);
    assert.equal(await readFile(join(root, 'a', 'cluster'), 'utf8'), complete[0]);
  });

  it('with size 0 keeps nothing and gives no source', async () => {
    const root = await mkdtemp(join(tmpdir(), 'coffer-wp-'));
    roots.push(root);
    await mkdir(join(root, 'pool', 'fake-1', '0000000000000001'), { recursive: true });
    const fake = fakeStart();
    fake.release();
    const { pool, kindDir } = await newPool(0, fake, root);
    assert.equal(pool.source('fake-1'), undefined);
    pool.start();
    await until('clean-up', async () => (await readdir(kindDir)).length === 0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(fake.made, 0);
  });

  it('removes the entry of a failed build and tries again later', async () => {
    const fake = fakeStart();
    fake.fail = true;
    fake.release();
    const { pool, kindDir } = await newPool(1, fake, undefined, 200);
    pool.start();
    // the engine's discard runs before the pool removes the directory
    await until('a failed build removed', async () => fake.discarded.length > 0 && (await readdir(kindDir)).length === 0);
    assert.equal(await pool.count('fake-1'), 0);
    fake.fail = false;
    await full(pool, 1);
  });

  it('stops a build in progress and removes its entry', async () => {
    const fake = fakeStart();
    const { pool, kindDir } = await newPool(2, fake);
    pool.start();
    await until('a build', async () => (await readdir(kindDir).catch(() => [])).length > 0);
    await pool.stop();
    assert.deepEqual(await readdir(kindDir), []);
    assert.equal(fake.discarded.length, 1);
    fake.release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(fake.made, 0, 'nothing is built after stop');
  });
});

describe('the default warm pool size', () => {
  const gib = 2 ** 30;

  it('serves a burst of ten from the pool on any host where memory and disk allow', () => {
    assert.equal(burstCreates, 10);
    assert.equal(defaultWarmPoolSize({ cores: 1, memoryBytes: 24 * gib }), 10);
    assert.equal(defaultWarmPoolSize({ cores: 2, memoryBytes: 24 * gib, diskFreeBytes: 78 * gib }), 10);
  });

  it('keeps four entries per core where that is more than the burst', () => {
    assert.equal(defaultWarmPoolSize({ cores: 3, memoryBytes: 16 * gib }), 12);
  });

  it('keeps no more than one per GiB of memory', () => {
    assert.equal(defaultWarmPoolSize({ cores: 4, memoryBytes: 6.5 * gib }), 6);
  });

  it('keeps no more than one per GiB of free disk', () => {
    assert.equal(defaultWarmPoolSize({ cores: 2, memoryBytes: 24 * gib, diskFreeBytes: 7.9 * gib }), 7);
  });

  it('keeps from 2 to 16', () => {
    assert.equal(defaultWarmPoolSize({ cores: 1, memoryBytes: 1 * gib }), 2);
    assert.equal(defaultWarmPoolSize({ cores: 0, memoryBytes: 0 }), 2);
    assert.equal(defaultWarmPoolSize({ cores: 2, memoryBytes: 24 * gib, diskFreeBytes: 0 }), 2);
    assert.equal(defaultWarmPoolSize({ cores: 64, memoryBytes: 512 * gib }), 16);
  });

  it("reads the free disk of a data directory's filesystem, from its nearest existing parent", () => {
    const free = diskFreeBytes(join(tmpdir(), 'not-made-yet', 'data'));
    assert.ok(free !== undefined && free > 0, String(free));
    assert.equal(thisHost(join(tmpdir(), 'not-made-yet')).diskFreeBytes !== undefined, true);
    assert.equal(thisHost().diskFreeBytes, undefined);
  });

  it('is sized from this host when none is given', () => {
    const size = defaultWarmPoolSize();
    assert.ok(Number.isInteger(size) && size >= 2 && size <= 16, String(size));
  });
});
