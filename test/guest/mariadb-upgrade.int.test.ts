// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { pino } from 'pino';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { engineRegistry, type EngineBinary, type EngineDriver } from '../../src/guest/index.js';
import { mariadbFlavor } from '../../src/guest/engines/mariadb/engine.js';
import { findTools } from '../../src/guest/engines/mysql-family/binaries.js';
import { withAdminConnection } from '../../src/guest/engines/mysql-family/connection.js';
import { parseUpgradeInfo } from '../../src/guest/engines/mysql-family/upgrade.js';
import { tempDataDir } from '../support/temp-dir.js';
import { localRunner, randomNet } from './engine-fixture.js';
import { cleanUpMysqlFamily } from './mysql-family-fixture.js';

// Minor upgrades by restart against Debian's mariadbd: a start on a data directory that an
// older version last upgraded runs mariadb-upgrade once, outside the binary log; a new instance
// and a start with a current record do not.

type Row = RowDataPacket & Record<string, unknown>;

const adminPassword = 'Adm1n-pass-for-tests';
const upgradingLine = "upgrading the data directory to the server's version";

describe('mariadb upgrade by restart', () => {
  const address = `${randomNet()}.1`;
  let root: string;
  let dir: string;
  let binary: EngineBinary;
  let runner: LocalProcessRunner;
  let driver: EngineDriver;
  let lines: Record<string, unknown>[] = [];

  const create = (engineBinary = binary) =>
    engineRegistry.mariadb.create({
      placement: { instanceId: 'i', dir, address, port: 3306 },
      binary: engineBinary,
      runner,
      logger: pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) }),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
  const admin = <T>(work: (connection: Connection) => Promise<T>) =>
    withAdminConnection({ socketPath: join(dir, 'data', 'mysqld.sock'), password: adminPassword }, work);
  const select = (sql: string) => admin(async (connection) => (await connection.query<Row[]>(sql))[0]);
  const infoFile = () => join(dir, 'data', 'mysql_upgrade_info');
  const recorded = async () => parseUpgradeInfo(await readFile(infoFile(), 'utf8'));
  const gtidPosition = async () => String((await select('SELECT @@gtid_binlog_pos AS pos'))[0]!.pos);
  const upgrades = () => lines.filter((line) => line.msg === upgradingLine);
  /** stops the server, lets `change` rewrite the data directory's record, starts it again */
  const restart = async (change: () => Promise<void> = async () => undefined) => {
    await driver.stop();
    await change();
    lines = [];
    await driver.start();
  };

  before(async () => {
    root = await tempDataDir('coffer-myup-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    runner = await localRunner();
    const discovery = await engineRegistry.mariadb.discover([], runner);
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    driver = create();
    await driver.prepare({
      memoryMb: 512,
      databases: [{ name: 'app' }],
      users: [{ name: 'alice', password: 'al1ce-pass', databases: [{ name: 'app' }] }],
      adminPassword,
      access: null,
      overrides: {},
    });
    await admin(async (connection) => {
      await connection.query('CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB');
      await connection.query("INSERT INTO app.t VALUES (1, 'one')");
    });
  });

  after(async () => {
    await driver?.stop().catch(() => undefined);
    await cleanUpMysqlFamily(root);
  });

  it('creates an instance whose data directory records the server version, without running the tool', async () => {
    assert.equal(await recorded(), binary.version);
    assert.deepEqual(upgrades(), []);
  });

  it('runs mariadb-upgrade once on a data directory an older version upgraded, writing nothing to the binary log', async () => {
    const position = await gtidPosition();
    await restart(() => writeFile(infoFile(), '10.11.1-MariaDB'));
    // as the tool writes it (a restore writes the bare version)
    assert.equal((await readFile(infoFile(), 'utf8')).trimEnd(), `${binary.version}-MariaDB`, 'the tool recorded the running version');
    assert.deepEqual(upgrades().map((line) => [line.from, line.to]), [['10.11.1', binary.version]]);
    assert.ok(lines.some((line) => String(line.msg).endsWith('finished')), JSON.stringify(lines));
    assert.equal(await gtidPosition(), position, 'no transaction of the tool (nor its account) in the binary log');
    assert.deepEqual(await select("SELECT User AS user FROM mysql.user WHERE User = 'os_upgrade'"), [], 'its account is gone');
    assert.deepEqual(await select('SELECT v FROM app.t'), [{ v: 'one' }]);
    assert.equal(await driver.health(), 'healthy');
  });

  it('does not run it on a restart with a current record', async () => {
    await restart();
    assert.deepEqual(upgrades(), []);
    assert.equal(await recorded(), binary.version);
  });

  it('upgrades a data directory with no record once, which leaves one', async () => {
    await restart(() => rm(infoFile()));
    assert.deepEqual(upgrades().map((line) => line.from), [null]);
    assert.equal(await recorded(), binary.version);
  });

  it('leaves the server running and says so when the tool is missing; the next start with it upgrades', async () => {
    // the installation's server and install script, without its upgrade tool beside them
    const tools = (await findTools(mariadbFlavor, binary.binDir))!;
    const sbin = join(root, 'partial', 'sbin');
    await mkdir(sbin, { recursive: true });
    await symlink(tools.server, join(sbin, 'mariadbd'));
    await symlink(tools.installer!, join(sbin, 'mariadb-install-db'));
    const partial = create({ ...binary, binDir: sbin });
    const position = await gtidPosition();
    await driver.stop();
    await writeFile(infoFile(), '10.11.1-MariaDB');
    lines = [];
    await assert.rejects(partial.start(), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'EngineError');
      assert.match(err.message ?? '', /^MariaDB runs, but the upgrade of the data directory from MariaDB 10\.11\.1 to .* failed: mariadb-upgrade is not installed/);
      return true;
    });
    assert.equal(await partial.health(), 'healthy', 'the server runs on');
    assert.ok(lines.some((line) => line.level === 50), 'the failure is logged as an error');
    assert.equal(await recorded(), '10.11.1');
    lines = [];
    // adopts the running server
    await driver.start();
    assert.deepEqual(upgrades().map((line) => line.from), ['10.11.1']);
    assert.equal(await recorded(), binary.version);
    assert.equal(await gtidPosition(), position);
  });
});
