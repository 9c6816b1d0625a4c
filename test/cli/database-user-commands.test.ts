import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { defaultPasswordPolicy } from '../../src/api/password-policy.js';
import { noEngineCapabilities } from '../../src/common/index.js';
import { adminPassword, adminSession, seededCapabilities, startHarness, type Harness } from '../api/api-harness.js';
import { guestInstance, type GuestInstance } from '../api/guest-instance.js';
import { runCli, tempConfigDir } from './run-cli.js';

// The database, user and root commands against the real API (over HTTP, on an in-memory state
// store) with a fake guest behind each instance, the one part that would need a real engine.

let h: Harness;
let dir: string;
let cleanup: () => Promise<void>;
let pg: GuestInstance;
let my: GuestInstance;
let cache: GuestInstance;

before(async () => {
  ({ dir, cleanup } = await tempConfigDir());
  h = await startHarness({ passwordPolicy: defaultPasswordPolicy });
  await h.app.listen({ host: '127.94.0.1', port: 0 });
  const { port } = h.app.server.address() as AddressInfo;
  const admin = await adminSession(h.app);
  pg = await guestInstance(h, admin, { capabilities: seededCapabilities.postgresql });
  my = await guestInstance(h, admin, { manager: 'mysql', capabilities: seededCapabilities.mysql });
  cache = await guestInstance(h, admin, { manager: 'redis', capabilities: { ...noEngineCapabilities, users: true } });
  await h.store.instances.update(pg.id, { name: 'mypg' });
  await h.store.instances.update(my.id, { name: 'mysql-1' });
  await h.store.instances.update(cache.id, { name: 'cache' });
  const login = await runCli(dir, ['login', '--url', `http://127.94.0.1:${port}`], { env: { COFFER_PASSWORD: adminPassword } });
  assert.equal(login.code, 0, login.stderr);
});

after(async () => {
  for (const g of [pg, my, cache]) await g?.close();
  await h?.close();
  await cleanup?.();
});

const cli = (...args: string[]) => runCli(dir, args);

describe('coffer database', () => {
  it('creates, lists (following every page) and deletes databases of an instance found by name', async () => {
    const empty = await cli('database', 'list', 'mypg');
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, 'No databases on mypg. Create one with `coffer database create mypg <name>`.\n');

    const created = await cli('database', 'create', 'mypg', 'orders', 'billing');
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout, 'Created databases orders, billing on mypg.\n');
    assert.deepEqual([...pg.engine.databases.keys()].sort(), ['billing', 'orders']);

    const table = await cli('database', 'list', pg.id);
    assert.match(table.stdout, /Name[\s\S]*billing[\s\S]*orders/);

    for (let i = 0; i < 23; i++) pg.engine.databases.set(`bulk${String(i).padStart(2, '0')}`, { name: `bulk${String(i).padStart(2, '0')}` });
    const all = JSON.parse((await cli('database', 'list', 'mypg', '--json')).stdout) as { name: string }[];
    assert.equal(all.length, 25, 'all pages of 20 were followed');

    const deleted = await cli('database', 'delete', 'mypg', 'orders');
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(pg.engine.databases.has('orders'), false);
  });

  it('says what to do next when the API refuses', async () => {
    const missing = await cli('database', 'delete', 'mypg', 'nope');
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'Error: Database nope cannot be found on the instance.\nSee the databases mypg has with `coffer database list mypg`.\n');

    const unsupported = await cli('database', 'create', 'cache', 'd1');
    assert.equal(unsupported.code, 1);
    assert.equal(unsupported.stderr, 'Error: Operation not supported for datastore redis.\nThe datastore of cache does not support this; `coffer datastore list` shows the others.\n');
    assert.deepEqual(cache.engine.calls, []);

    await h.store.serviceStatuses.set({ instanceId: my.id, status: 'SHUTDOWN', updatedAt: new Date() });
    const down = await cli('database', 'list', 'mysql-1');
    await h.store.serviceStatuses.set({ instanceId: my.id, status: 'HEALTHY', updatedAt: new Date() });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^Error: Instance .* is not ready, status: SHUTDOWN\. .*the instance shows SHUTDOWN\.\nWait until `coffer instance show mysql-1` says ACTIVE \/ HEALTHY \(or ACTIVE \/ ACTIVE\), then try again\.\n$/);

    const unknown = await cli('database', 'list', 'no-such-instance');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /No instance has the ID or name "no-such-instance"/);
  });
});

describe('coffer user', () => {
  it('creates a user with a generated password printed once, or one read from stdin and never printed', async () => {
    const generated = await cli('user', 'create', 'mypg', 'app', '--database', 'billing');
    assert.equal(generated.code, 0, generated.stderr);
    const password = /^Password: (\S+)$/m.exec(generated.stdout)?.[1];
    assert.equal(password?.length, 36);
    assert.equal(pg.engine.users.get('app@%')?.password, password);
    assert.deepEqual([...pg.engine.users.get('app@%')!.databases], ['billing']);

    const piped = await runCli(dir, ['user', 'create', 'mypg', 'report', '--password-stdin'], { stdin: Readable.from(['Piped-pass-123\n']) });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, 'Created user report on mypg.\n');
    assert.equal(pg.engine.users.get('report@%')?.password, 'Piped-pass-123');

    // issue 15: `user create … short` was accepted; now the refusal says what the policy is
    const weak = await runCli(dir, ['user', 'create', 'mypg', 'weak', '--password-stdin'], { stdin: Readable.from(['short\n']) });
    assert.equal(weak.code, 1);
    assert.match(weak.stderr, /^Error: Password validation error: the password of user 'weak' does not meet the requirements: Passwords must be at least 10 characters long and use at least 2 of: lower-case letters, upper-case letters, digits, other characters\.\n/);
    assert.ok(!weak.stderr.includes('short'));
    assert.equal(pg.engine.users.get('weak@%'), undefined);

    const again = await cli('user', 'create', 'mypg', 'app');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^Error: A user with the name "app" already exists\.\nSee the users of mypg with `coffer user list mypg`/);
    assert.doesNotMatch(again.stderr, /--host/, 'PostgreSQL users have no host');
  });

  it('names CLI flags, not API fields, in what to leave out, and says which characters a name may have', async () => {
    const host = await runCli(dir, ['user', 'create', 'mypg', 'bob', '--host', '10.0.0.1', '--password-stdin'], { stdin: Readable.from(['Bob-pass-1234']) });
    assert.equal(host.code, 1);
    assert.match(host.stderr, /^Error: Users of the 'postgresql' datastore have no host patterns: leave out --host for user 'bob' \(or give '%'\)\.\n/);
    assert.doesNotMatch(host.stderr, /'host'|a user with a host needs/);

    const quoted = await runCli(dir, ['user', 'create', 'mypg', "o'neil", '--password-stdin'], { stdin: Readable.from(['Bob-pass-1234']) });
    assert.equal(quoted.code, 1);
    assert.match(quoted.stderr, /^Error: 'o'neil' is not a valid user name\. A user name may have any characters but quotes \(' " `\), ';', ',', '\/', backslashes and control characters, and may not start or end with a space\.\n/);
    const badDb = await cli('database', 'create', 'mypg', 'it"s');
    assert.equal(badDb.code, 1);
    assert.match(badDb.stderr, /^Error: 'it"s' is not a valid schema name\. A database name has letters, digits, '_' and '-' \(at least two\), with at most one run of spaces, '\?', '#' or '@' between them\.\n/);
  });

  it('lists, shows, grants, revokes and deletes; --host addresses users whose name holds @', async () => {
    const list = await cli('user', 'list', 'mypg');
    assert.equal(
      list.stdout,
      '┌────────┬──────┬───────────┐\n' +
        '│ Name   │ Host │ Databases │\n' +
        '├────────┼──────┼───────────┤\n' +
        '│ app    │ %    │ billing   │\n' +
        '│ report │ %    │           │\n' +
        '└────────┴──────┴───────────┘\n',
    );

    assert.equal((await cli('user', 'grant', 'mypg', 'report', 'billing', 'bulk00')).code, 0);
    assert.deepEqual(JSON.parse((await cli('user', 'show', 'mypg', 'report', '--json')).stdout), {
      name: 'report', host: '%', databases: [{ name: 'billing' }, { name: 'bulk00' }],
    });
    assert.equal((await cli('user', 'revoke', 'mypg', 'report', 'billing')).code, 0);
    assert.deepEqual([...pg.engine.users.get('report@%')!.databases], ['bulk00']);
    const notGranted = await cli('user', 'revoke', 'mypg', 'report', 'billing');
    assert.equal(notGranted.code, 1);
    assert.match(notGranted.stderr, /`coffer user show mypg report` shows which databases the user has/);

    const odd = await runCli(dir, ['user', 'create', 'mysql-1', 'a@b', '--host', '10.0.0.1', '--password-stdin'], { stdin: Readable.from(['Pw-1234-567']) });
    assert.equal(odd.code, 0, odd.stderr);
    assert.equal(odd.stdout, 'Created user a@b@10.0.0.1 on mysql-1.\n');
    const shown = await cli('user', 'show', 'mysql-1', 'a@b', '--host', '10.0.0.1');
    assert.match(shown.stdout, /│ name +│ a@b +│\n│ host +│ 10\.0\.0\.1 +│/);
    const withoutHost = await cli('user', 'show', 'mysql-1', 'a@b');
    assert.equal(withoutHost.code, 1);
    assert.match(withoutHost.stderr, /a user with a host needs --host/);

    assert.equal((await cli('user', 'delete', 'mysql-1', 'a@b', '--host', '10.0.0.1')).code, 0);
    assert.equal(my.engine.users.size, 0);
  });

  it('refuses access commands on an engine whose users have no databases', async () => {
    const res = await cli('user', 'grant', 'cache', 'someone', 'd1');
    assert.equal(res.code, 1);
    assert.match(res.stderr, /Operation not supported for datastore redis/);
  });
});

describe('coffer root', () => {
  it('shows, enables with a printed password, disables, and explains disabling what was never enabled', async () => {
    const never = await cli('root', 'disable', 'mypg');
    assert.equal(never.code, 1);
    assert.equal(never.stderr, 'Error: Root user has never been enabled on the instance.\nNothing to disable; `coffer root enable mypg` enables it.\n');
    assert.equal((await cli('root', 'show', 'mypg')).stdout, 'Root has never been enabled on mypg.\n');

    const enabled = await cli('root', 'enable', 'mypg');
    assert.equal(enabled.code, 0, enabled.stderr);
    assert.match(enabled.stdout, /^Root is enabled on mypg\.\n  user: +root\n  password: (\S{36})\n$/);
    assert.equal(pg.engine.rootPassword, /password: (\S+)/.exec(enabled.stdout)?.[1]);

    const chosen = await runCli(dir, ['root', 'enable', 'mypg', '--password-stdin', '--json'], { stdin: Readable.from(['Root-pass-123\n']) });
    assert.deepEqual(JSON.parse(chosen.stdout), { name: 'root', password: 'Root-pass-123' });

    assert.equal((await cli('root', 'disable', 'mypg')).stdout, 'Root is disabled on mypg.\n');
    assert.equal(pg.engine.rootPassword, undefined);
    assert.deepEqual(JSON.parse((await cli('root', 'show', 'mypg', '--json')).stdout), { rootEnabled: true });
  });
});
