// test-lane: parallel (the conformance suite as nobody: no OS users, no nftables; its own data directories and a random port range)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, it } from 'node:test';

// The local driver's other half: an agent that is not root runs every engine as its own user,
// in directories only it may enter, and walls nothing. The conformance suite runs as `nobody`
// here (CI runs as root, where local-compute-driver.int.test.ts covers the isolated half).

const run = promisify(execFile);
const suite = fileURLToPath(new URL('./local-compute-driver.int.test.ts', import.meta.url));
const ordinary = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
let home: string | undefined;
after(() => (home === undefined ? undefined : rm(home, { recursive: true, force: true })));

it('the local driver passes the conformance suite when it is not root, in both address modes', async () => {
  // tsx's cache and the suite's data directories: somewhere the user may write
  home = await mkdtemp(join(tmpdir(), 'coffer-cd-plain-'));
  if (ordinary.uid !== undefined) await chown(home, ordinary.uid, ordinary.gid!);
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', suite], {
    ...ordinary,
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, TMPDIR: home },
    timeout: 300_000,
  }).catch((err: { stdout?: string; message: string }) => {
    throw new Error(`the suite failed as an ordinary user: ${err.message}\n${err.stdout ?? ''}`);
  });
  assert.match(stdout, /^# pass 16$/m, stdout);
  assert.match(stdout, /^# fail 0$/m);
  assert.match(stdout, /^# skipped 0$/m);
  // it really ran without isolation (engines as its own user, nothing walled), in both modes
  assert.equal(stdout.match(/^\s*# isolated: false$/gm)?.length, 2, stdout);
});
