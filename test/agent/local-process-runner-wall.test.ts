// test-lane: parallel (its own temp directories, programs as the current user)
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { LocalProcessRunner } from '../../src/agent/index.js';
import { CofferError } from '../../src/common/index.js';
import { until } from '../support/wait.js';

// A new instance's wall goes up beside the rest of its create (agent.ts): its runner is what
// keeps the order that matters, the wall before anything runs as the instance's user.

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

const wallFault = () => new CofferError('Internal', 'The network wall around the instance\'s engine could not be put up, so the engine was not started.');

/** A temporary directory, a wall being raised, and a runner behind it. */
async function behindWall(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-runner-wall-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const wall = deferred();
  return { dir, wall, runner: new LocalProcessRunner(undefined, wall.promise), marker: join(dir, 'ran') };
}

/** The same program, started after the others by a runner without a wall, has run and written its file: the walled ones had time to. */
async function unwalledRunFinished(marker: string): Promise<void> {
  await new LocalProcessRunner(undefined).run('sh', ['-c', `echo yes > ${marker}.unwalled`], { timeoutMs: 10_000 });
  assert.equal(await readFile(`${marker}.unwalled`, 'utf8'), 'yes\n');
}

describe('LocalProcessRunner behind a wall being raised', () => {
  it('starts no program until the wall is up, then runs it', async (t) => {
    const { dir, wall, runner, marker } = await behindWall(t);
    const running = runner.run('sh', ['-c', `echo yes > ${marker}`], { timeoutMs: 10_000 });
    const detached = runner.spawnDetached('sh', ['-c', `echo yes > ${marker}.detached`], { logFile: join(dir, 'log'), cwd: dir });
    assert.throws(() => runner.stream('true', [], { timeoutMs: 10_000 }), /network wall is not up yet/);
    // what a restore's prepare waits for before it streams
    let ready = false;
    const readiness = runner.ready().then(() => (ready = true));
    await unwalledRunFinished(marker);
    assert.equal(ready, false, 'not ready while the wall is being raised');
    await assert.rejects(readFile(marker), { code: 'ENOENT' });
    await assert.rejects(readFile(`${marker}.detached`), { code: 'ENOENT' });
    wall.resolve();
    await readiness;
    await running;
    assert.equal(await readFile(marker, 'utf8'), 'yes\n');
    // a detached child is unref'd: its exit keeps nothing waiting, its file is looked for instead
    await detached;
    await until('the detached program ran', async () => (await readFile(`${marker}.detached`, 'utf8').catch(() => '')) === 'yes\n', 10_000);
    const streamed = runner.stream('true', [], { timeoutMs: 10_000 });
    streamed.stdout.resume();
    await streamed.exited;
  });

  it('starts nothing, ever, when the wall cannot be put up: every start fails with why', async (t) => {
    const { dir, wall, runner, marker } = await behindWall(t);
    const running = runner.run('sh', ['-c', `echo yes > ${marker}`], { timeoutMs: 10_000 });
    wall.reject(wallFault());
    await assert.rejects(running, /network wall .* could not be put up/);
    await assert.rejects(runner.ready(), /network wall .* could not be put up/);
    await assert.rejects(runner.spawnDetached('sh', ['-c', `echo yes > ${marker}`], { logFile: join(dir, 'log'), cwd: dir }), /network wall .* could not be put up/);
    assert.throws(() => runner.stream('sh', ['-c', `echo yes > ${marker}`], { timeoutMs: 10_000 }), /network wall .* could not be put up/);
    await unwalledRunFinished(marker);
    await assert.rejects(readFile(marker), { code: 'ENOENT' });
    await assert.rejects(readFile(join(dir, 'log')), { code: 'ENOENT' }, 'not even the log was opened');
  });
});
