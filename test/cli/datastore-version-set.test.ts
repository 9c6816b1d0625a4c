import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { adminPassword, seedDatastores, startHarness, type Harness } from '../api/api-harness.js';
import { runCli, tempConfigDir } from './run-cli.js';

// coffer datastore version-set against the real API over HTTP: an administrator takes a version
// out of service, gives it back, moves the default; mistakes are said before anything changes.

let h: Harness;
let dir: string;
let cleanup: () => Promise<void>;
let seeded: Awaited<ReturnType<typeof seedDatastores>>;

before(async () => {
  ({ dir, cleanup } = await tempConfigDir());
  h = await startHarness();
  seeded = await seedDatastores(h.store);
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = h.app.server.address() as AddressInfo;
  const login = await runCli(dir, ['login', '--url', `http://127.0.0.1:${port}`], { env: { COFFER_PASSWORD: adminPassword } });
  assert.equal(login.code, 0, login.stderr);
});
after(async () => {
  await h?.close();
  await cleanup?.();
});

const cli = (...args: string[]) => runCli(dir, args);

test('an administrator deactivates the default version only once another is the default, and activates it again', async () => {
  const refused = await cli('datastore', 'version-set', 'postgresql', '15', '--inactive');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /is the default of postgresql: make another version the default first/);
  assert.equal((await h.store.datastores.getVersion(seeded.activeVersionId))!.active, true);

  const mysql = await cli('datastore', 'version-set', 'mysql', '8.0', '--default');
  assert.equal(mysql.code, 0, mysql.stderr);
  assert.equal(mysql.stdout, 'mysql 8.0 is active, and the default.\n');

  const both = await cli('datastore', 'version-set', 'postgresql', '15', '--no-default', '--inactive');
  assert.equal(both.code, 0, both.stderr);
  assert.equal(both.stdout, 'postgresql 15 is inactive (an administrator deactivated it).\n');
  assert.equal((await h.store.datastores.getDatastore(seeded.datastoreId))!.defaultVersionId, null);

  const back = await cli('datastore', 'version-set', 'postgresql', seeded.activeVersionId, '--active', '--default');
  assert.equal(back.code, 0, back.stderr);
  assert.equal(back.stdout, 'postgresql 15 is active, and the default.\n');
});

test('an unknown version names the known ones; no option or both states is refused before any request', async () => {
  const unknown = await cli('datastore', 'version-set', 'postgresql', '99', '--active');
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /No version 99 of datastore postgresql/);
  assert.match(unknown.stderr, /Its versions: 15, 16/);
  const nothing = await cli('datastore', 'version-set', 'postgresql', '15');
  assert.match(nothing.stderr, /Nothing to change/);
  const contradictory = await cli('datastore', 'version-set', 'postgresql', '15', '--active', '--inactive');
  assert.match(contradictory.stderr, /--active or --inactive, not both/);
});
