import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { once } from 'node:events';
import { runsAsOwnerOf, ServerWatch } from '../../src/guest/engines/process-watch.js';

// Where another user's working directory is unreadable, an engine whose command line names no
// path is recognised by running as the owner of its data directory.

it('tells whether a process runs as the owner of a directory', async () => {
  const mine = await mkdtemp(join(tmpdir(), 'coffer-owner-'));
  const other = await mkdtemp(join(tmpdir(), 'coffer-owner-'));
  const root = process.getuid?.() === 0;
  // as root: a directory of nobody's; otherwise one of root's
  if (root) await chown(other, 65534, 65534);
  const otherDir = root ? other : '/';
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    assert.equal(await runsAsOwnerOf(child.pid!, mine), true);
    assert.equal(await runsAsOwnerOf(child.pid!, otherDir), false);
    assert.equal(await runsAsOwnerOf(child.pid!, join(mine, 'missing')), false, 'a directory that is gone owns nothing');
  } finally {
    child.kill('SIGKILL');
    await rm(mine, { recursive: true, force: true });
    await rm(other, { recursive: true, force: true });
  }
  assert.equal(await runsAsOwnerOf(2 ** 22 + 1, mine), false, 'a pid that does not exist runs as no one');
});

it("keeps a verified server by its pid and start time, and looks again once it is gone", async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  let finds = 0;
  let found: number | undefined = child.pid!;
  const watch = new ServerWatch(async () => {
    finds += 1;
    return found;
  });
  try {
    assert.equal(await watch.pid(), child.pid);
    assert.equal(await watch.pid(), child.pid);
    assert.equal(await watch.pid(), child.pid);
    assert.equal(finds, 1, 'a server still running with its start time is not verified again');
    const exited = once(child, 'exit');
    process.kill(child.pid!, 'SIGKILL');
    await exited;
    found = undefined;
    assert.equal(await watch.pid(), undefined);
    assert.equal(finds, 2, 'a server gone is looked for again');
    assert.equal(await watch.pid(), undefined);
    assert.equal(finds, 3, 'nothing found is not kept');
  } finally {
    child.kill('SIGKILL');
  }
});
