import assert from 'node:assert/strict';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { before, test } from 'node:test';
import { escapeId } from 'mysql2';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { decodeBackup, newProjectKey, startBackupEncoding } from '../../src/backup/index.js';
import { engineRegistry } from '../../src/guest/index.js';
import { probeServer, withAdminConnection } from '../../src/guest/engines/mysql-family/connection.js';
import { isProcessAlive } from '../../src/guest/engines/process-watch.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { testCa } from '../support/test-ca.js';
import { runIncrementalBackupSuite, storeBackup, type TestInstance } from './engine-backup-incremental.suite.js';
import { localRunner } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// MariaDB's backups with Debian's mariadb-backup and mbstream: the incremental suite, then what
// only this engine records and guarantees (its facts, the accounts a restored instance keeps,
// the backup tool's own account and password).

type Row = RowDataPacket & Record<string, unknown>;

const table = escapeId('backup kv');
const tools = /^(mariadb-backup|mariabackup|mbstream)$/;

/** pids of mariadb-backup and mbstream working anywhere in `dir` (their cwd), zombies left out */
async function toolProcesses(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const [exe, cwd] = await Promise.all([readlink(`/proc/${pid}/exe`).catch(() => ''), readlink(`/proc/${pid}/cwd`).catch(() => '')]);
    const name = exe.replace(/ \(deleted\)$/, '').split('/').pop() ?? '';
    if (tools.test(name) && (cwd === dir || cwd.startsWith(`${dir}/`)) && (await isProcessAlive(pid))) found.push(pid);
  }
  return found;
}

const socketOf = (dir: string) => join(dir, 'data', 'mysqld.sock');
const asAdmin = <T>(instance: TestInstance, work: (connection: Connection) => Promise<T>) =>
  withAdminConnection({ socketPath: socketOf(instance.dir), password: instance.adminPassword }, work);

runIncrementalBackupSuite<Connection>(
  {
    engine: 'mariadb',
    loopbackPrefix: '127.94',
    connect: (options) => connectTenant(options),
    async write(connection, key, value) {
      await connection.query(`CREATE TABLE IF NOT EXISTS ${table} (k VARCHAR(100) PRIMARY KEY, v LONGTEXT) CHARACTER SET utf8mb4`);
      await connection.query(`INSERT INTO ${table} (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)`, [key, value]);
    },
    async snapshot(connection) {
      const [exists] = await connection.query<Row[]>(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'backup kv'",
      );
      if (exists.length === 0) return [];
      const [rows] = await connection.query<Row[]>(`SELECT k, v FROM ${table} ORDER BY k`);
      return rows.map((row) => `${String(row.k)}=${String(row.v)}`);
    },
    async adminAccepts(dir, password) {
      const answer = await probeServer({ socketPath: socketOf(dir), password }, 5_000);
      assert.notEqual(answer, 'no', `the server in ${dir} answers`);
      return answer === 'yes';
    },
    toolProcesses,
    restoreLeftovers: (dir) => [join(dir, 'restore-scratch'), join(dir, 'data'), join(dir, '.initialised'), join(dir, '.init.sql')],
    rootUser: 'root',
    cleanUp: cleanUpMysqlFamily,
  },
  (context) => {
    let versionName: string;
    before(async () => {
      const discovery = await engineRegistry.mariadb.discover([], await localRunner());
      versionName = discovery.binaries[0]!.versionName;
    });

    test('mariadb: records LSNs, ids and the server version; each incremental names the backup it follows', () => {
      const { full, incremental1, incremental2 } = context();
      assert.equal(full.facts['from-lsn'], '0');
      for (const backup of [full, incremental1, incremental2]) {
        assert.match(backup.facts['to-lsn'] ?? '', /^\d+$/);
        assert.match(backup.facts.uuid ?? '', /^[0-9a-f-]{36}$/);
        assert.ok(backup.facts.version?.startsWith(`${versionName}.`), backup.facts.version);
      }
      assert.equal(full.facts['parent-uuid'], undefined);
      assert.equal(incremental1.facts['from-lsn'], full.facts['to-lsn']);
      assert.equal(incremental1.facts['parent-uuid'], full.facts.uuid);
      assert.equal(incremental2.facts['from-lsn'], incremental1.facts['to-lsn']);
      assert.equal(incremental2.facts['parent-uuid'], incremental1.facts.uuid);
    });

    test('mariadb: refuses a backup of another major.minor, naming it', async () => {
      const { full, restoreInto, linkOf } = context();
      const older = { ...linkOf(full), facts: { ...full.facts, version: '10.6.21' } };
      await rejectsWithCode(restoreInto([older], 'older-version'), 'BadRequest');
      await assert.rejects(restoreInto([older], 'older-version-2'), /taken from MariaDB 10\.6\.21.*instance of version 10\.6/);
    });

    test('mariadb: refuses a link whose stream is another backup than its record', async () => {
      const { full, incremental1, restoreInto, linkOf } = context();
      // a full backup's record with an incremental's bytes
      const swapped = { ...linkOf(full), open: linkOf(incremental1).open };
      await assert.rejects(restoreInto([swapped], 'swapped'), /holds another MariaDB backup than its record describes/);
    });

    test('mariadb: a restored instance has no anonymous, root or backup account, and the guest\'s own at localhost only', async () => {
      const { full, incremental1, source, restoreInto, linkOf } = context();
      const restored = await restoreInto([linkOf(full), linkOf(incremental1)], 'restored-accounts');
      const accounts = async (instance: TestInstance) =>
        asAdmin(instance, async (connection) => {
          const [rows] = await connection.query<Row[]>(
            "SELECT User AS user, Host AS host FROM mysql.user WHERE User IN ('', 'root', 'os_admin', 'os_backup') ORDER BY User, Host",
          );
          return rows.map((row) => `${String(row.user)}@${String(row.host)}`);
        });
      assert.deepEqual(await accounts(restored), ['os_admin@localhost']);
      // the source has root enabled; the backups' account is gone once they ended
      assert.deepEqual(
        (await accounts(source)).filter((name) => !name.startsWith('root@')),
        ['os_admin@localhost'],
      );
      assert.deepEqual(await restored.driver.users!.list().then((users) => users.map((user) => user.name).sort()), ['fresh', 'tenant']);
    });

    test("mariadb: a restore records its backup's version, and upgrades a backup of an older minor version as it restores it", async () => {
      const { full, restoreInto, linkOf } = context();
      const recorded = async (instance: TestInstance) => (await readFile(join(instance.dir, 'data', 'mysql_upgrade_info'), 'utf8')).trimEnd();
      const current = await restoreInto([linkOf(full)], 'restored-version');
      assert.equal(await recorded(current), full.facts.version, "the restore's record: mariadb-upgrade did not run");
      const older = await restoreInto([{ ...linkOf(full), facts: { ...full.facts, version: `${versionName}.1` } }], 'restored-older');
      assert.equal(await recorded(older), `${full.facts.version}-MariaDB`, "mariadb-upgrade's record");
    });

    test('mariadb: the backup tool gets a password of its own, never the admin password, and not on its command line', async () => {
      const { source } = context();
      const controller = new AbortController();
      const run = await source.driver.backup!.start({ signal: controller.signal });
      try {
        await new Promise((resolve) => run.stream.once('readable', resolve));
        const [pid] = await toolProcesses(source.dir);
        assert.ok(pid !== undefined, 'mariadb-backup runs');
        const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
        const password = environ.find((entry) => entry.startsWith('MYSQL_PWD='))?.slice('MYSQL_PWD='.length);
        assert.ok(password !== undefined && password.length >= 24, 'a password through the environment');
        assert.notEqual(password, source.adminPassword);
        assert.ok(!environ.join('\n').includes(source.adminPassword), 'the admin password is not in its environment');
        assert.ok(!cmdline.includes(source.adminPassword) && !cmdline.includes(password), 'no password on its command line');
        assert.ok(!cmdline.includes(source.dir), 'no instance path on its command line');
      } finally {
        controller.abort();
        run.stream.resume();
        await run.finished.catch(() => undefined);
      }
      const left = await asAdmin(source, async (connection) => {
        const [rows] = await connection.query<Row[]>("SELECT COUNT(*) AS n FROM mysql.user WHERE User = 'os_backup'");
        return Number(rows[0]!.n);
      });
      assert.equal(left, 0, "an aborted backup's account is gone too");
    });

    test('mariadb: given the compressor’s input, the tool writes its stream into zstd itself, and that backup restores', async () => {
      const { source, restoreInto, linkOf } = context();
      const key = newProjectKey();
      const encoding = startBackupEncoding({ compression: 'zstd', key });
      const run = await source.driver.backup!.start({ signal: new AbortController().signal, output: encoding.input });
      assert.equal(run.wroteToOutput, true);
      const body = encoding.fedDirectly();
      run.stream.resume();
      const backups = join(source.dir, '..', 'backups');
      await pipeline(body, createWriteStream(join(backups, 'direct.enc')));
      const facts = await run.finished;
      await pipeline(decodeBackup(createReadStream(join(backups, 'direct.enc')), { key }), createWriteStream(join(backups, 'direct')));
      const restored = await restoreInto([linkOf({ kind: 'full', facts, file: join(backups, 'direct') })], 'restored-direct');
      assert.equal(await restored.driver.health(), 'healthy');
    });

    // last: the source requires TLS from here on
    test('mariadb: backs up a server that serves TLS and refuses plaintext clients, over its socket', async () => {
      const { source, full, restoreInto, linkOf } = context();
      const ca = await testCa();
      await source.driver.installTls(await ca.issue({ address: source.address, validityDays: 1 }));
      await source.driver.updateAccess({ requireTls: true });
      const backup = await storeBackup(source.driver, join(source.dir, '..', 'backups', 'tls'), full);
      assert.equal(backup.facts['parent-uuid'], full.facts.uuid);
      const restored = await restoreInto([linkOf(full), linkOf(backup)], 'restored-tls');
      assert.equal(await restored.driver.health(), 'healthy');
    });
  },
);
