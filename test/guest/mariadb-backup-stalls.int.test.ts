// test-lane: parallel (its own MariaDB as coffer-test-db on a random loopback address, in its own directory; it waits out the backup's lock wait, a minute of sleeping)
import assert from 'node:assert/strict';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineDriver } from '../../src/guest/index.js';
import { backupLockWaitSeconds } from '../../src/guest/engines/mysql-family/backup-tools.js';
import { withAdminConnection } from '../../src/guest/engines/mysql-family/connection.js';
import { tempDataDir } from '../support/temp-dir.js';
import { localRunner, randomAddress } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// MariaDB backups that cannot go on, each ending with a reason the tenant can act on and the next
// backup, once the cause is gone, succeeding:
// - a tenant's session that holds LOCK TABLES would keep a backup waiting for ever
//   (mariadb-backup's BACKUP STAGE START waits for it): the backup gives up after a minute and
//   leaves no account behind;
// - a server that writes its redo log faster than the backup's stream is taken (a slow storage)
//   overwrites the log before the tool copied it: that backup is unusable and says why.

describe('mariadb backups that cannot go on', () => {
  let root: string;
  let driver: EngineDriver;
  let dir: string;
  let address: string;
  const input: PrepareInput = {
    memoryMb: 256,
    databases: [{ name: 'app' }],
    users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [{ name: 'app' }] }],
    adminPassword: 'lock-Admin-1',
    access: null,
    overrides: {},
  };

  async function backup(): Promise<unknown> {
    const run = await driver.backup!.start({ signal: new AbortController().signal });
    run.stream.resume();
    return run.finished;
  }

  const asAdmin = <T>(work: (connection: Connection) => Promise<T>) =>
    withAdminConnection({ socketPath: join(dir, 'data', 'mysqld.sock'), password: input.adminPassword }, work);
  const backupAccounts = () =>
    asAdmin(async (connection) => {
      const [rows] = await connection.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM mysql.user WHERE User = 'os_backup'");
      return Number(rows[0]!.n);
    });

  before(async () => {
    root = await tempDataDir('coffer-mylock-');
    const discovery = await engineRegistry.mariadb.discover([], await localRunner());
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    dir = join(root, 'source');
    await mkdir(dir);
    await chmod(dir, 0o711);
    address = randomAddress();
    driver = engineRegistry.mariadb.create({
      placement: { instanceId: 'source', dir, address, port: 3306 },
      binary: discovery.binaries[0],
      runner: await localRunner(),
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    await driver.prepare(input);
  });

  after(async () => {
    await driver?.stop().catch(() => undefined);
    await cleanUpMysqlFamily(root);
  });

  it(`fails after ${backupLockWaitSeconds} s saying which lock it waited for; once it is released the next backup succeeds`, async () => {
    const tenant = await connectTenant({ address, port: 3306, user: 'tenant', password: 'tenant-Pass-1', database: 'app' });
    try {
      await tenant.query('CREATE TABLE kept (v INT)');
      await tenant.query('LOCK TABLES kept WRITE');
      await assert.rejects(backup(), (err: { code?: string; message?: string }) => {
        assert.equal(err.code, 'EngineError');
        assert.match(err.message ?? '', /held a table lock \(LOCK TABLES\).*end it \(UNLOCK TABLES or disconnect\), then take the backup again/);
        return true;
      });
      assert.equal(await backupAccounts(), 0, "the failed backup's account is gone");
      await tenant.query('UNLOCK TABLES');
    } finally {
      await tenant.end();
    }
    const facts = await backup();
    assert.match((facts as { 'to-lsn'?: string })['to-lsn'] ?? '', /^\d+$/);
  });

  it('fails saying why when the server overwrote its redo log before the backup copied it (a stream taken too slowly)', async () => {
    // the smallest log this server takes, and a table whose updates write many times that
    await asAdmin(async (connection) => {
      await connection.query('SET GLOBAL innodb_log_file_size = @@innodb_log_buffer_size');
      await connection.query('SET SESSION max_recursive_iterations = 1000000');
      await connection.query('CREATE TABLE app.busy (id INT PRIMARY KEY, m VARCHAR(64))');
      await connection.query('INSERT INTO app.busy WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 100000) SELECT n, md5(n) FROM s');
    });
    const run = await driver.backup!.start({ signal: new AbortController().signal });
    const reader = run.stream[Symbol.asyncIterator]();
    // the tool has begun and now waits on its full pipe, redo log copy included, while the server writes on
    await reader.next();
    await asAdmin(async (connection) => {
      for (let i = 0; i < 6; i++) await connection.query('UPDATE app.busy SET m = md5(m)');
    });
    for (let next = await reader.next(); next.done !== true; next = await reader.next());
    await assert.rejects(run.finished, (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'EngineError');
      assert.match(err.message ?? '', /wrote its redo log faster than the backup could copy it.*larger innodb_log_file_size/);
      return true;
    });
    assert.equal(await backupAccounts(), 0, "the failed backup's account is gone");
    // read as fast as it comes, the next one is whole
    const facts = await backup();
    assert.match((facts as { 'to-lsn'?: string })['to-lsn'] ?? '', /^\d+$/);
  });
});
