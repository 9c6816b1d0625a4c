// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { access, chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { engineRegistry, type EngineBinary, type EngineDriver } from '../../src/guest/index.js';
import { withAdminConnection } from '../../src/guest/engines/mysql-family/connection.js';
import { nativePasswordHash } from '../../src/guest/engines/mysql-family/password-hash.js';
import { isProcessAlive } from '../../src/guest/engines/process-watch.js';
import { tempDataDir } from '../support/temp-dir.js';
import { localRunner, ownerOf, randomNet } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// The MariaDB engine driver against Debian's mariadbd: what the install leaves and what the
// guest removes, the server's own settings, how host patterns and access ranges become
// accounts, grants that name exactly one database, and adoption of a running server.

type Row = RowDataPacket & Record<string, unknown>;

const adminPassword = 'Adm1n-pass-for-tests';
const alicePassword = 'al1ce pass \'with\' "quotes" \\ and `ticks`';

describe('mariadb engine', () => {
  const net = randomNet();
  // the /24 after it: a client from there is outside `${net}.%`
  const nextNet = net.replace(/\d+$/, (octet) => String((Number(octet) + 1) % 256));
  const address = `${net}.1`;
  let root: string;
  let dir: string;
  let binary: EngineBinary;
  let runner: LocalProcessRunner;
  let driver: EngineDriver;

  const create = () =>
    engineRegistry.mariadb.create({
      placement: { instanceId: 'i', dir, address, port: 3306 },
      binary,
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
  const admin = <T>(work: (connection: Connection) => Promise<T>) =>
    withAdminConnection({ socketPath: join(dir, 'data', 'mysqld.sock'), password: adminPassword }, work);
  const select = (sql: string) => admin(async (connection) => (await connection.query<Row[]>(sql))[0]);
  const login = async (user: string, password: string, database?: string, localAddress?: string) => {
    const connection = await connectTenant({ address, port: 3306, user, password, database, localAddress });
    return connection;
  };
  const canLogIn = async (...args: Parameters<typeof login>) => {
    const connection = await login(...args).catch(() => undefined);
    await connection?.end();
    return connection !== undefined;
  };

  before(async () => {
    root = await tempDataDir('coffer-my-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    runner = await localRunner();
    const discovery = await engineRegistry.mariadb.discover([], runner);
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    // Debian's 10.11: the version users pick, and the full one
    assert.match(binary.versionName, /^\d+\.\d+$/);
    assert.ok(binary.version.startsWith(`${binary.versionName}.`), binary.version);
    assert.equal(discovery.reports[0]?.active, true);
    driver = create();
  });

  after(async () => {
    await driver?.stop().catch(() => undefined);
    await cleanUpMysqlFamily(root);
  });

  const input = {
    memoryMb: 512,
    databases: [{ name: 'app' }, { name: 'binary', characterSet: 'utf8mb4', collate: 'utf8mb4_bin' }],
    users: [
      { name: 'alice', password: alicePassword, databases: [{ name: 'app' }] },
      { name: 'bob', password: 'b0b-pass', host: `${net}.%`, databases: [{ name: 'binary' }] },
    ],
    adminPassword,
    access: null,
    overrides: {},
  };

  it('prepares a server that runs as the engine user with a tmpdir, socket and pid file of its own', async (t) => {
    const timings = await driver.prepare(input);
    t.diagnostic(`prepare: init ${timings.initMs.toFixed(0)} ms, start ${timings.startMs.toFixed(0)} ms, setup ${timings.setupMs.toFixed(0)} ms`);
    assert.equal(await driver.health(), 'healthy');
    const pid = (await driver.processId())!;
    if (runner.identity !== undefined) {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${runner.identity.uid}\\s`, 'm'));
    }
    const [settings] = await select(
      'SELECT @@tmpdir AS tmpdir, @@socket AS socket, @@pid_file AS pid, @@bind_address AS bind, @@skip_name_resolve AS skip, ' +
        '@@innodb_buffer_pool_size AS pool, @@max_connections AS conns, @@local_infile AS localInfile, @@secure_file_priv AS files',
    );
    assert.deepEqual(
      { ...settings },
      {
        tmpdir: join(dir, 'tmp'),
        socket: join(dir, 'data', 'mysqld.sock'),
        pid: join(dir, 'data', 'mysqld.pid'),
        bind: address,
        skip: 1,
        pool: 256 * 1024 * 1024,
        conns: 128,
        localInfile: 0,
        files: `${join(dir, 'files')}/`,
      },
    );
  });

  it('keeps secrets and what the host writes out of the engine user\'s reach', async () => {
    const host = process.getuid!();
    const engine = runner.identity?.uid ?? host;
    const owner = (name: string) => ownerOf(join(dir, name));
    assert.deepEqual(await owner('.'), { uid: host, mode: '711' });
    assert.deepEqual(await owner('os_admin.password'), { uid: host, mode: '600' });
    for (const name of ['data', 'tmp', 'files']) assert.deepEqual(await owner(name), { uid: engine, mode: '700' }, name);
    for (const name of ['my.cnf', 'error.log', 'general.log', 'slow-query.log']) {
      assert.deepEqual(await owner(name), { uid: engine, mode: '600' }, name);
    }
    await assert.rejects(access(join(dir, '.init.sql')), 'the init file with the admin hash is gone');
    assert.ok((await stat(join(dir, 'error.log'))).size > 0, 'the server logs to error.log');
  });

  it('leaves no anonymous user, no root and no passwordless account; tenants get one account per allowed range', async () => {
    const accounts = await select("SELECT User AS user, Host AS host, authentication_string = '' AS empty FROM mysql.user ORDER BY User, Host");
    assert.deepEqual(
      accounts.map((row) => `${row.user}@${row.host}`),
      ['alice@127.0.0.0/255.0.0.0', `bob@${net}.0/255.255.255.0`, 'mariadb.sys@localhost', 'os_admin@localhost'],
    );
    // mariadb.sys owns system views and cannot log in (its plugin refuses every password)
    assert.deepEqual(
      accounts.filter((row) => row.empty === 1).map((row) => row.user),
      ['mariadb.sys'],
    );
    assert.equal(await canLogIn('root', ''), false);
    assert.equal(await canLogIn('', ''), false);
  });

  it('lists users with the hosts the tenant gave, and databases with their character sets, hiding its own', async () => {
    assert.deepEqual(await driver.users!.list(), [
      { name: 'alice', host: '%', databases: [{ name: 'app' }] },
      { name: 'bob', host: `${net}.%`, databases: [{ name: 'binary' }] },
    ]);
    const databases = await driver.databases!.list();
    assert.deepEqual(
      databases.map((d) => d.name),
      ['app', 'binary'],
    );
    assert.deepEqual(databases[1], { name: 'binary', characterSet: 'utf8mb4', collate: 'utf8mb4_bin' });
    assert.equal(await canLogIn('bob', 'b0b-pass', 'binary', `${net}.7`), true);
    assert.equal(await canLogIn('bob', 'b0b-pass', 'binary', `${nextNet}.7`), false);
    assert.equal(await canLogIn('alice', alicePassword, 'app'), true);
    assert.equal(await canLogIn('alice', alicePassword, 'binary'), false);
  });

  it('grants exactly the named database, and a database dropped and made again keeps no old grant', async () => {
    await driver.databases!.create([{ name: 'a_b' }, { name: 'axb' }]);
    await driver.users!.access!.grant({ name: 'alice', host: '%' }, ['a_b']);
    assert.equal(await canLogIn('alice', alicePassword, 'a_b'), true);
    assert.equal(await canLogIn('alice', alicePassword, 'axb'), false, '_ is no wildcard in the grant');
    await driver.databases!.delete('a_b');
    assert.deepEqual((await driver.users!.list()).find((u) => u.name === 'alice')?.databases, [{ name: 'app' }]);
    await driver.databases!.create([{ name: 'a_b' }]);
    assert.equal(await canLogIn('alice', alicePassword, 'a_b'), false);
    const grants = await select("SELECT Db AS db FROM mysql.db WHERE User = 'alice'");
    assert.deepEqual(grants.map((row) => row.db), ['app']);
    await driver.databases!.delete('a_b');
    await driver.databases!.delete('axb');
  });

  it('answers BadRequest for a host pattern that is not an address range, and an unknown character set', async () => {
    const isBadRequest = (err: unknown) => (err as { code?: string }).code === 'BadRequest';
    await assert.rejects(driver.users!.create([{ name: 'carol', password: 'c', host: 'db.example.com', databases: [] }]), isBadRequest);
    await assert.rejects(driver.databases!.create([{ name: 'bad', characterSet: 'klingon' }]), isBadRequest);
    assert.ok(!(await driver.databases!.list()).some((d) => d.name === 'bad'));
  });

  it('gives root all privileges with the grant option within the allowed ranges, and removes it again', async () => {
    assert.equal(await driver.root!.enable('R00t-pass'), 'root');
    const [row] = await select("SELECT Host AS host, Grant_priv AS grantPriv FROM mysql.user WHERE User = 'root'");
    assert.deepEqual({ ...row }, { host: '127.0.0.0/255.0.0.0', grantPriv: 'Y' });
    const rootSession = await login('root', 'R00t-pass');
    await rootSession.query('CREATE DATABASE by_root');
    await rootSession.end();
    assert.ok((await driver.databases!.list()).some((d) => d.name === 'by_root'));
    await driver.root!.disable();
    assert.deepEqual(await select("SELECT 1 FROM mysql.user WHERE User = 'root'"), []);
    await driver.databases!.delete('by_root');
  });

  it('is adopted running by a new driver (an agent restart) and stopped by it', async () => {
    const pid = await driver.processId();
    const adopted = create();
    assert.equal(await adopted.health(), 'healthy');
    await adopted.start();
    assert.equal(await adopted.processId(), pid);
    await adopted.prepare(input);
    assert.equal(await adopted.processId(), pid, 'a redelivered prepare keeps the server');
    assert.equal(await canLogIn('alice', alicePassword, 'app'), true);
    await adopted.stop();
    assert.equal(await isProcessAlive(pid!), false);
    assert.equal(await driver.health(), 'stopped');
    await driver.start();
    assert.equal(await canLogIn('bob', 'b0b-pass', 'binary', `${net}.8`), true);
  });

  it('starts again after the server was killed, leaving its pid file and socket behind', async () => {
    const pid = (await driver.processId())!;
    process.kill(pid, 'SIGKILL');
    while (await isProcessAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 5));
    await access(join(dir, 'data', 'mysqld.pid'));
    assert.equal(await driver.health(), 'stopped');
    await driver.start();
    assert.notEqual(await driver.processId(), pid);
    assert.equal(await canLogIn('alice', alicePassword, 'app'), true);
  });

  it('says so at once when a tenant\'s root locked the guest out, and recovers when it is let back in', async () => {
    await driver.root!.enable('R00t-pass');
    const rootSession = await login('root', 'R00t-pass');
    try {
      await rootSession.query("ALTER USER 'os_admin'@'localhost' IDENTIFIED BY 'changed-by-root'");
      assert.equal(await driver.health(), 'running');
      await assert.rejects(driver.start(), /refuses the guest's administrative login/);
      assert.ok(await driver.processId(), 'the tenant\'s server keeps running');
      await rootSession.query("ALTER USER 'os_admin'@'localhost' IDENTIFIED BY PASSWORD ?", [nativePasswordHash(adminPassword)]);
    } finally {
      await rootSession.end();
    }
    assert.equal(await driver.health(), 'healthy');
    await driver.root!.disable();
  });
});
