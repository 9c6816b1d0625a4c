import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { CliIo } from '../../src/cli/index.js';
import { FakeCoffer } from './fake-coffer.js';
import { runCli, tempConfigDir, unreachableUrl, type CliResult } from './run-cli.js';

function assertNoSecrets(result: CliResult, fake: FakeCoffer): void {
  for (const secret of [fake.token, fake.password]) {
    assert.ok(!result.stdout.includes(secret), 'stdout must not contain a secret');
    assert.ok(!result.stderr.includes(secret), 'stderr must not contain a secret');
  }
}

describe('coffer login / logout', () => {
  const fake = new FakeCoffer();
  before(() => fake.start());
  after(() => fake.close());

  it('stores the token, project and database endpoint in a 0600 file in a 0700 dir, printing neither secret', async () => {
    const { dir, cleanup } = await tempConfigDir();
    try {
      const result = await runCli(dir, ['login', '--url', `${fake.url}/`], { env: { COFFER_PASSWORD: fake.password } });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Logged in to http:\/\/127\.0\.0\.1:\d+ as admin \(project admin\)/);
      assertNoSecrets(result, fake);

      const file = join(dir, 'credentials.json');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
      const file_ = JSON.parse(await readFile(file, 'utf8'));
      assert.equal(file_.current, fake.url);
      const saved = file_.servers[fake.url];
      assert.equal(saved.url, fake.url);
      assert.equal(saved.token, fake.token);
      assert.equal(saved.projectId, fake.projectId);
      assert.equal(saved.databaseEndpoint, fake.endpoint, 'the public endpoint, not the internal one');
      assert.ok(Date.parse(saved.expiresAt) > Date.now());

      const [request] = fake.requestsTo('POST', '/identity/v3/auth/tokens').slice(-1);
      assert.deepEqual(request?.body, {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'admin', domain: { id: 'default' }, password: fake.password } },
          },
          scope: { project: { name: 'admin', domain: { id: 'default' } } },
        },
      });
    } finally {
      await cleanup();
    }
  });

  it('reads the password from stdin with --password-stdin, dropping the trailing newline', async () => {
    const { dir, cleanup } = await tempConfigDir();
    try {
      const result = await runCli(dir, ['login', '--url', fake.url, '--password-stdin'], {
        stdin: Readable.from([`${fake.password}\n`]),
        env: { COFFER_PASSWORD: 'not-this-one' },
      });
      assert.equal(result.code, 0, result.stderr);
      assertNoSecrets(result, fake);
    } finally {
      await cleanup();
    }
  });

  it('prompts on a terminal without echoing what is typed', async () => {
    const { dir, cleanup } = await tempConfigDir();
    try {
      const rawModes: boolean[] = [];
      const stdin = Object.assign(new PassThrough(), {
        isTTY: true,
        setRawMode: (mode: boolean) => rawModes.push(mode),
      });
      const typing = setTimeout(() => {
        // A typo fixed with backspace, then Enter.
        stdin.write(`x\u007f${fake.password}`);
        stdin.write('\r');
      }, 20);
      const result = await runCli(dir, ['login', '--url', fake.url], { stdin: stdin as unknown as CliIo['stdin'] });
      clearTimeout(typing);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, 'Password: \n');
      assert.deepEqual(rawModes, [true, false]);
      assertNoSecrets(result, fake);
    } finally {
      await cleanup();
    }
  });

  it('refuses to guess when there is no password and no terminal', async () => {
    const { dir, cleanup } = await tempConfigDir();
    try {
      const result = await runCli(dir, ['login', '--url', fake.url]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /No password given\.\n.*--password-stdin.*COFFER_PASSWORD/);
    } finally {
      await cleanup();
    }
  });

  it('reports a wrong password with the next step, and saves nothing', async () => {
    const { dir, cleanup } = await tempConfigDir();
    try {
      const result = await runCli(dir, ['login', '--url', fake.url], { env: { COFFER_PASSWORD: 'wrong-password' } });
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        'Error: Login failed: The request you have made requires authentication.\n' +
          'Check the user name, project and password.\n',
      );
      assert.ok(!result.stderr.includes('wrong-password'));
      await assert.rejects(stat(join(dir, 'credentials.json')), { code: 'ENOENT' });
    } finally {
      await cleanup();
    }
  });

  it('logout revokes the token on the server and deletes the file; then commands say "Not logged in"', async () => {
    const { dir, cleanup } = await tempConfigDir();
    try {
      await runCli(dir, ['login', '--url', fake.url], { env: { COFFER_PASSWORD: fake.password } });
      const out = await runCli(dir, ['logout']);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout, `Logged out of ${fake.url}.\n`);
      assert.ok(fake.revokedTokens.includes(fake.token));
      await assert.rejects(stat(join(dir, 'credentials.json')), { code: 'ENOENT' });

      const list = await runCli(dir, ['instance', 'list']);
      assert.equal(list.code, 1);
      assert.equal(list.stderr, 'Error: Not logged in. Run `coffer login --url http://127.0.0.1:8779`.\n');
      assert.equal((await runCli(dir, ['logout'])).stdout, 'Not logged in.\n');
    } finally {
      fake.revokedTokens.length = 0;
      await cleanup();
    }
  });

  it('treats an expired token as not logged in, naming the URL to log in to again', async () => {
    const { dir, cleanup } = await tempConfigDir();
    try {
      await runCli(dir, ['login', '--url', fake.url], { env: { COFFER_PASSWORD: fake.password } });
      const file = join(dir, 'credentials.json');
      const saved = JSON.parse(await readFile(file, 'utf8'));
      saved.servers[fake.url].expiresAt = new Date(Date.now() - 1000).toISOString();
      await writeFile(file, JSON.stringify(saved));
      const before = fake.requests.length;
      const result = await runCli(dir, ['flavor', 'list']);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `Error: Not logged in (the saved token has expired). Run \`coffer login --url ${fake.url}\`.\n`,
      );
      assert.equal(fake.requests.length, before, 'no request is made with an expired token');
    } finally {
      await cleanup();
    }
  });

  it('tells the user to log in again when the server rejects the token', async () => {
    const { dir, cleanup } = await tempConfigDir();
    try {
      await runCli(dir, ['login', '--url', fake.url], { env: { COFFER_PASSWORD: fake.password } });
      fake.revokedTokens.push(fake.token);
      const result = await runCli(dir, ['datastore', 'list']);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        'Error: The request you have made requires authentication.\n' +
          `Run \`coffer login --url ${fake.url}\` to sign in again.\n`,
      );
    } finally {
      fake.revokedTokens.length = 0;
      await cleanup();
    }
  });

  it('says the server cannot be reached instead of showing a stack', async () => {
    const { dir, cleanup } = await tempConfigDir();
    try {
      const unreachable = await unreachableUrl();
      const result = await runCli(dir, ['login', '--url', unreachable], { env: { COFFER_PASSWORD: 'x' } });
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `Error: Cannot reach Coffer at ${unreachable}: is \`coffer serve\` running? (ECONNREFUSED)\n`,
      );
    } finally {
      await cleanup();
    }
  });

  describe('several servers', () => {
    const second = new FakeCoffer();
    before(() => second.start());
    after(() => second.close());

    it('keeps one login per server URL: a second login does not log out of the first, and COFFER_URL picks one', async () => {
      const { dir, cleanup } = await tempConfigDir();
      try {
        assert.equal((await runCli(dir, ['login', '--url', fake.url], { env: { COFFER_PASSWORD: fake.password } })).code, 0);
        assert.equal((await runCli(dir, ['login', '--url', second.url], { env: { COFFER_PASSWORD: second.password } })).code, 0);

        const beforeFirst = fake.requestsTo('GET', `/v1.0/${fake.projectId}/flavors`).length;
        const beforeSecond = second.requestsTo('GET', `/v1.0/${second.projectId}/flavors`).length;
        assert.equal((await runCli(dir, ['flavor', 'list'])).code, 0, 'the last login is the current server');
        assert.equal(second.requestsTo('GET', `/v1.0/${second.projectId}/flavors`).length, beforeSecond + 1);
        const first = await runCli(dir, ['flavor', 'list'], { env: { COFFER_URL: `${fake.url}/` } });
        assert.equal(first.code, 0, first.stderr);
        assert.equal(fake.requestsTo('GET', `/v1.0/${fake.projectId}/flavors`).length, beforeFirst + 1);

        const elsewhere = await runCli(dir, ['flavor', 'list'], { env: { COFFER_URL: 'http://127.0.0.1:1' } });
        assert.equal(elsewhere.code, 1);
        assert.equal(elsewhere.stderr, 'Error: Not logged in. Run `coffer login --url http://127.0.0.1:1`.\n');

        const out = await runCli(dir, ['logout']);
        assert.equal(out.stdout, `Logged out of ${second.url}.\nCommands now go to ${fake.url}, where you are still logged in.\n`);
        assert.ok(second.revokedTokens.includes(second.token));
        assert.ok(!fake.revokedTokens.includes(fake.token), 'the other login is left alone');
        assert.equal((await runCli(dir, ['flavor', 'list'])).code, 0);
        assert.equal(fake.requestsTo('GET', `/v1.0/${fake.projectId}/flavors`).length, beforeFirst + 2);
      } finally {
        second.revokedTokens.length = 0;
        await cleanup();
      }
    });

    it('logout --url forgets only that server', async () => {
      const { dir, cleanup } = await tempConfigDir();
      try {
        await runCli(dir, ['login', '--url', fake.url], { env: { COFFER_PASSWORD: fake.password } });
        await runCli(dir, ['login', '--url', second.url], { env: { COFFER_PASSWORD: second.password } });
        const out = await runCli(dir, ['logout', '--url', fake.url]);
        assert.equal(out.stdout, `Logged out of ${fake.url}.\nCommands now go to ${second.url}, where you are still logged in.\n`);
        const saved = JSON.parse(await readFile(join(dir, 'credentials.json'), 'utf8'));
        assert.deepEqual(Object.keys(saved.servers), [second.url]);
        assert.equal((await runCli(dir, ['logout', '--url', fake.url])).stdout, `Not logged in to ${fake.url}.\n`);
      } finally {
        fake.revokedTokens.length = 0;
        await cleanup();
      }
    });

    it("still reads the one-login file earlier versions wrote, and keeps it when logging in to another server", async () => {
      const { dir, cleanup } = await tempConfigDir();
      try {
        await runCli(dir, ['login', '--url', fake.url], { env: { COFFER_PASSWORD: fake.password } });
        const file = join(dir, 'credentials.json');
        const saved = JSON.parse(await readFile(file, 'utf8'));
        await writeFile(file, JSON.stringify(saved.servers[fake.url]), { mode: 0o600 });
        assert.equal((await runCli(dir, ['flavor', 'list'])).code, 0);
        await runCli(dir, ['login', '--url', second.url], { env: { COFFER_PASSWORD: second.password } });
        const both = JSON.parse(await readFile(file, 'utf8'));
        assert.deepEqual(Object.keys(both.servers).sort(), [fake.url, second.url].sort());
        assert.equal(both.current, second.url);
      } finally {
        await cleanup();
      }
    });
  });
});
