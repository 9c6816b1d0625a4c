import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../src/common/index.js';
import { directoryUsage } from '../../src/guest/directory-usage.js';
import { VolumeGuard, volumeFullMessage, volumeState } from '../../src/guest/volume-guard.js';
import { tempDataDir } from '../support/temp-dir.js';

// The guard's rules on a real directory, with the engine's switch recorded: when it measures,
// what it tells the engine, and when.

let dir: string;
before(async () => {
  dir = await tempDataDir('coffer-vg-');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the usage is what du counts, over a tree deeper and wider than one slice of the walk, without following links', async () => {
  const tree = join(dir, 'tree');
  let nested = tree;
  for (let depth = 0; depth < 12; depth += 1) {
    nested = join(nested, `d${depth}`);
    await mkdir(nested, { recursive: true });
    await writeFile(join(nested, 'f'), Buffer.alloc(5000 * (depth + 1), 1));
  }
  for (let n = 0; n < 300; n += 1) await writeFile(join(tree, `wide-${n}`), Buffer.alloc(n * 37, 1));
  const outside = join(dir, 'outside');
  await writeFile(outside, Buffer.alloc(1 << 20, 1));
  await symlink(outside, join(tree, 'link'));
  const du = Number(execFileSync('du', ['-s', '--block-size=1', tree], { encoding: 'utf8' }).split('\t')[0]);
  assert.equal(await directoryUsage(tree), du);
  assert.equal(await directoryUsage(join(dir, 'missing')), 0);
  await rm(tree, { recursive: true });
  await rm(outside);
});

test('the state by share of the size: ok below 90%, nearly full from 90%, full from 100%', () => {
  assert.equal(volumeState(899, 1000), 'ok');
  assert.equal(volumeState(900, 1000), 'nearly full');
  assert.equal(volumeState(999, 1000), 'nearly full');
  assert.equal(volumeState(1000, 1000), 'full');
  assert.equal(
    volumeFullMessage({ usedBytes: Math.round(1.02 * 1024 ** 3), sizeBytes: 1024 ** 3, state: 'full' }),
    'The volume is full (1.02 of 1 GB used): writes are refused until it is resized (coffer instance resize-volume).',
  );
});

test('a guard measures the directory, refuses writes once it is full (again on every check), and lets them in after a resize', async () => {
  await writeFile(join(dir, 'data'), Buffer.alloc(64 * 1024, 1));
  const used = await directoryUsage(dir);
  const calls: boolean[] = [];
  const gb = 1024 ** 3;
  const guard = new VolumeGuard({ dir, sizeGb: (used * 4) / gb, refuseWrites: async (refused) => void calls.push(refused), logger: silentLogger() });

  const first = await guard.check(0);
  assert.equal(first.reading.state, 'ok');
  assert.ok(first.measured && first.changed);
  // the first check lifts whatever a previous guest may have left; later ones below the size ask nothing
  assert.deepEqual(calls, [false]);
  await writeFile(join(dir, 'more'), Buffer.alloc(used * 4, 1));
  const soon = await guard.check(1000);
  assert.equal(soon.measured, false, 'a volume well below its size is measured once a minute');
  assert.equal(soon.reading.state, 'ok');
  const later = await guard.check(61_000);
  assert.equal(later.reading.state, 'full');
  assert.ok(later.changed);
  const again = await guard.check(62_000);
  assert.ok(again.measured, 'a full volume is measured on every check');
  assert.equal(again.changed, false);
  assert.deepEqual(calls, [false, true, true]);

  // 95% of the new size
  guard.resize((await directoryUsage(dir)) / 0.95 / gb);
  const resized = await guard.check(63_000);
  assert.equal(resized.reading.state, 'nearly full');
  assert.deepEqual(calls, [false, true, true, false]);
  await rm(join(dir, 'more'));
  assert.equal((await guard.check(64_000)).reading.state, 'ok', 'a nearly full volume is measured on every check');
  assert.deepEqual(calls, [false, true, true, false]);
});

test('a switch that fails leaves the change to the next check, which reports it then', async () => {
  const gb = 1024 ** 3;
  let failing = true;
  const guard = new VolumeGuard({
    dir,
    sizeGb: 1 / gb, // one byte: full
    refuseWrites: async () => {
      if (failing) throw new Error('the engine is restarting');
    },
    logger: silentLogger(),
  });
  await assert.rejects(guard.check(0), /restarting/);
  failing = false;
  const next = await guard.check(1000);
  assert.equal(next.reading.state, 'full');
  assert.ok(next.changed, 'the fill is news to this check: the guest sends the fault then');
});

test("an engine started fresh is not asked to lift a refusal at the first check, but a full volume still refuses its writes", async () => {
  const gb = 1024 ** 3;
  const used = await directoryUsage(dir);
  const calls: boolean[] = [];
  const guard = new VolumeGuard({ dir, sizeGb: (used * 4) / gb, refuseWrites: async (refused) => void calls.push(refused), logger: silentLogger() });
  guard.startedFresh();
  assert.equal((await guard.check(0)).reading.state, 'ok');
  assert.equal(calls.length, 0, "no connection to the engine on the first check of a new instance");

  const full = new VolumeGuard({ dir, sizeGb: 1 / gb, refuseWrites: async (refused) => void calls.push(refused), logger: silentLogger() });
  full.startedFresh();
  assert.equal((await full.check(0)).reading.state, 'full');
  assert.deepEqual(calls, [true]);
});

test('a volume under half its size is measured every five minutes while its engine is quiet, again within a check once it is used', async () => {
  const sub = join(dir, 'quiet');
  await mkdir(sub);
  await writeFile(join(sub, 'data'), Buffer.alloc(64 * 1024, 1));
  const used = await directoryUsage(sub);
  const gb = 1024 ** 3;
  let quiet = true;
  const guard = new VolumeGuard({ dir: sub, sizeGb: (used * 4) / gb, refuseWrites: async () => undefined, quiet: () => quiet, logger: silentLogger() });
  assert.ok((await guard.check(0)).measured);
  await writeFile(join(sub, 'more'), Buffer.alloc(used * 4, 1));
  assert.equal((await guard.check(61_000)).measured, false, 'quiet: not measured after a minute');
  assert.equal((await guard.check(299_000)).reading.state, 'ok');
  const fifth = await guard.check(300_000);
  assert.ok(fifth.measured, 'measured after five minutes');
  assert.equal(fifth.reading.state, 'full');
  await rm(join(sub, 'more'));
  await guard.check(301_000); // full: measured on every check, now ok again
  quiet = false;
  assert.equal((await guard.check(302_000)).measured, false, 'used: measured once a minute, as any volume');
  assert.ok((await guard.check(361_000)).measured);
  await writeFile(join(sub, 'half'), Buffer.alloc(used * 2, 1));
  assert.equal((await guard.check(421_000)).reading.state, 'ok');
  quiet = true;
  assert.ok((await guard.check(481_000)).measured, 'over half its size: once a minute, quiet or not');
  await rm(sub, { recursive: true });
});
