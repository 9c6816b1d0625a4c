// test-lane: parallel (roles that stop before connecting to anything)
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli } from '../support/coffer-process.js';
import { makeDataDir } from '../support/temp-dir.js';

// What a distributed role says before it opens anything: no key, no start; an open door, a warning.
// The state database and broker here are unreachable on purpose (port 1): every line checked
// comes before the role connects, and the role then fails to start.

let dir: { path: string; remove: () => Promise<void> };
let keyFile: string;
before(async () => {
  dir = await makeDataDir('coffer-role-start');
  keyFile = join(dir.path, 'bus.key');
  await writeFile(keyFile, `${Buffer.alloc(32, 9).toString('base64')}\n`, { mode: 0o600 });
});
after(async () => {
  await dir.remove();
});

const unreachable = { COFFER_DATABASE_URL: 'mysql://coffer:pw@127.0.0.1:1/coffer', COFFER_BUS_URL: 'amqp://coffer:pw@127.0.0.1:1/coffer' };
// the environment of the test runner must not lend the roles a key
const noKey = { COFFER_BUS_KEY_FILE: '' };

for (const role of ['conductor', 'taskmanager', 'agent', 'api'] as const) {
  test(`coffer ${role} refuses to start without a bus key file and says how to make one`, async () => {
    const args = role === 'agent' ? [role, '--data-dir', join(dir.path, 'agent')] : [role];
    const run = await runCli(args, { env: { ...unreachable, ...noKey }, timeoutMs: 60_000 });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /a bus key file is required: --bus-key-file or COFFER_BUS_KEY_FILE/);
    assert.match(run.stderr, /head -c 32 \/dev\/urandom \| base64 > .*; chmod 600 /);
  });
}

test('a role refuses a bus key file that others can read, before connecting to anything', async () => {
  const open = join(dir.path, 'open.key');
  await writeFile(open, Buffer.alloc(32, 3).toString('base64'));
  await chmod(open, 0o644);
  const run = await runCli(['conductor', '--bus-key-file', open], { env: unreachable, timeoutMs: 60_000 });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /can be read by other users \(mode 0644\).*chmod 600/);
  assert.doesNotMatch(run.stdout + run.stderr, /ECONNREFUSED|Cannot connect/, 'refused before any connection was tried');
});

test("a role warns at start about RabbitMQ's guest account and a state database without a password", async () => {
  const run = await runCli(['taskmanager', '--bus-key-file', keyFile], {
    env: { COFFER_DATABASE_URL: 'mysql://root@127.0.0.1:1/coffer', COFFER_BUS_URL: 'amqp://guest:guest@127.0.0.1:1' },
    timeoutMs: 60_000,
  });
  assert.equal(run.code, 1, 'nothing listens on port 1');
  const warnings = run.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((line) => line.level === 40)
    .map((line) => line.msg);
  assert.equal(warnings.length, 3, run.stdout);
  assert.match(warnings.join('\n'), /default 'guest' account/);
  assert.match(warnings.join('\n'), /no password: on a shared host/);
  assert.match(warnings.join('\n'), /backups are off: give --backup-storage and --backup-master-key-file/);
});
