// The CLI as a real process: exit codes, stdin, file modes and the 250 ms polling of the real
// wiring (registerClientCommands with the process's own io).
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeCoffer } from './fake-coffer.js';
import { createArgs, spawnCli, tempConfigDir, unreachableUrl } from './run-cli.js';

describe('coffer as a process', () => {
  const fake = new FakeCoffer();
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    await fake.start();
    ({ dir, cleanup } = await tempConfigDir());
  });
  after(async () => {
    await fake.close();
    await cleanup();
  });

  it('logs in with --password-stdin, creates an instance and waits for it, then fails cleanly on ERROR', async () => {
    const env = { COFFER_CONFIG_DIR: dir };
    const login = await spawnCli(['login', '--url', fake.url, '--password-stdin'], env, `${fake.password}\n`);
    assert.equal(login.code, 0, login.stderr);
    assert.equal((await stat(join(dir, 'credentials.json'))).mode & 0o777, 0o600);
    for (const secret of [fake.token, fake.password]) assert.ok(!`${login.stdout}${login.stderr}`.includes(secret));

    const started = Date.now();
    const create = await spawnCli(
      [...createArgs('orders'), '--database', 'app', '--user', 'alice:pw1'],
      env,
    );
    assert.equal(create.code, 0, create.stderr);
    assert.match(create.stdout, /url: {2}postgresql:\/\/alice@127\.77\.0\.12:5432\/app\n/);
    const polls = fake.requestsTo('GET', `/v1.0/${fake.projectId}/instances/`);
    assert.equal(polls.length, 3);
    assert.ok(Date.now() - started >= 500, 'two 250 ms pauses between three polls');

    const broken = await spawnCli(createArgs('broken'), env);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /Error: Instance broken \(.+\) failed: initdb failed: No space left on device\n/);
    assert.doesNotMatch(broken.stderr, /\n\s+at /, 'no stack trace');
  });

  it('exits 1 with "Cannot reach Coffer" when nothing listens, without a stack trace', async () => {
    const url = await unreachableUrl();
    const { dir: other, cleanup: cleanupOther } = await tempConfigDir();
    try {
      const result = await spawnCli(['login', '--url', url], { COFFER_CONFIG_DIR: other, COFFER_PASSWORD: 'x' });
      assert.equal(result.code, 1);
      assert.equal(result.stderr, `Error: Cannot reach Coffer at ${url}: is \`coffer serve\` running? (ECONNREFUSED)\n`);
      const notLoggedIn = await spawnCli(['instance', 'list'], { COFFER_CONFIG_DIR: other });
      assert.equal(notLoggedIn.code, 1);
      assert.equal(notLoggedIn.stderr, 'Error: Not logged in. Run `coffer login --url http://127.0.0.1:8779`.\n');
    } finally {
      await cleanupOther();
    }
  });
});
