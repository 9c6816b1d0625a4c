// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { escapeId } from 'mysql2';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger, type ConfigurationValue, type ConfigurationValues } from '../../src/common/index.js';
import { engineRegistry, type EngineBinary, type EngineDriver } from '../../src/guest/index.js';
import { withAdminConnection } from '../../src/guest/engines/mysql-family/connection.js';
import { mariadbParameters } from '../../src/guest/engines/mariadb/parameters.js';
import type { MysqlParameter } from '../../src/guest/engines/mysql-family/parameters.js';
import { readEngineSpec } from '../../src/guest/engines/engine-spec-file.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import { localRunner, randomNet } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// Configuration groups on Debian's MariaDB 10.11: every published parameter set at prepare is
// live from the first start; each exists on the server, with bounds inside the server's own and
// restartRequired exactly where the server refuses SET GLOBAL; a refused value puts the file, the
// saved spec and the live values back.

type Row = RowDataPacket & Record<string, unknown>;

const adminPassword = 'Adm1n-pass-for-config';
const mib = 1024 * 1024;

/** A value for every published parameter, unlike both the server's default and Coffer's own. */
const everyParameter: ConfigurationValues = {
  innodb_buffer_pool_size: 128 * mib,
  innodb_flush_log_at_trx_commit: 2,
  innodb_flush_method: 'fsync',
  innodb_io_capacity_max: 3000,
  innodb_io_capacity: 1500,
  innodb_lock_wait_timeout: 20,
  innodb_file_per_table: 0,
  innodb_open_files: 300,
  max_connections: 77,
  max_user_connections: 50,
  max_connect_errors: 999,
  wait_timeout: 600,
  interactive_timeout: 700,
  connect_timeout: 15,
  net_read_timeout: 45,
  net_write_timeout: 90,
  max_allowed_packet: 32 * mib,
  max_prepared_stmt_count: 20_000,
  thread_cache_size: 12,
  table_open_cache: 1000,
  table_definition_cache: 800,
  join_buffer_size: 512 * 1024,
  sort_buffer_size: mib,
  read_buffer_size: 256 * 1024,
  read_rnd_buffer_size: 512 * 1024,
  tmp_table_size: 32 * mib,
  max_heap_table_size: 32 * mib,
  bulk_insert_buffer_size: 4 * mib,
  key_buffer_size: 16 * mib,
  myisam_sort_buffer_size: 16 * mib,
  slow_query_log: true,
  long_query_time: 2.5,
  log_queries_not_using_indexes: true,
  general_log: true,
  sql_mode: 'STRICT_ALL_TABLES,NO_ZERO_DATE',
  autocommit: 0,
  auto_increment_increment: 2,
  auto_increment_offset: 2,
  character_set_server: 'latin1',
  collation_server: 'latin1_german2_ci',
  default_storage_engine: 'Aria',
  event_scheduler: true,
  performance_schema: true,
  innodb_log_file_size: 32 * mib,
  innodb_log_buffer_size: 4 * mib,
  lower_case_table_names: 1,
  tx_isolation: 'READ-COMMITTED',
  log_warnings: 3,
};

/** Whether `live` (as SELECT @@GLOBAL answers) is `value` in the parameter's type. */
function isLive(parameter: MysqlParameter, value: ConfigurationValue, live: unknown): boolean {
  if (typeof value === 'boolean') return (value ? ['1', 'ON'] : ['0', 'OFF']).includes(String(live).toUpperCase());
  if (typeof value === 'number') return Number(live) === value;
  return parameter.type === 'string' && String(live) === value;
}

describe('mariadb configuration groups', () => {
  const net = randomNet();
  const address = `${net}.1`;
  let root: string;
  let dir: string;
  let binary: EngineBinary;
  let runner: Awaited<ReturnType<typeof localRunner>>;
  let driver: EngineDriver;

  const admin = <T>(work: (connection: Connection) => Promise<T>) =>
    withAdminConnection({ socketPath: join(dir, 'data', 'mysqld.sock'), password: adminPassword }, work);
  const globalValue = (name: string) =>
    admin(async (connection) => (await connection.query<Row[]>(`SELECT @@GLOBAL.${escapeId(name)} AS value`))[0][0]!.value);
  const myCnf = () => readFile(join(dir, 'my.cnf'), 'utf8');

  const input: PrepareInput = {
    memoryMb: 512,
    databases: [{ name: 'app' }],
    users: [{ name: 'alice', password: 'al1ce-pass', databases: [{ name: 'app' }] }],
    adminPassword,
    access: null,
    overrides: everyParameter,
  };

  before(async () => {
    root = await tempDataDir('coffer-mc-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    runner = await localRunner();
    const discovery = await engineRegistry.mariadb.discover([], runner);
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    driver = create();
  });

  /** a driver as the agent makes one; `memoryMb` is the host's record of the flavor */
  const create = (memoryMb?: number) =>
    engineRegistry.mariadb.create({
      placement: { instanceId: 'i', dir, address, port: 3306 },
      binary,
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
      ...(memoryMb === undefined ? {} : { memoryMb }),
    });

  after(async () => {
    await driver?.stop().catch(() => undefined);
    await cleanUpMysqlFamily(root);
  });

  it('publishes the parameters checked here, each with a value in this test', () => {
    assert.deepEqual(Object.keys(everyParameter).sort(), mariadbParameters.map((p) => p.name).sort());
    assert.deepEqual(
      driver.configuration?.parameters.map((p) => p.name),
      mariadbParameters.map((p) => p.name),
    );
  });

  it('prepares with a group: every value is live from the first start, and the tenant works as usual', async () => {
    await driver.prepare(input);
    const wrong: string[] = [];
    for (const parameter of mariadbParameters) {
      const value = everyParameter[parameter.name]!;
      const live = await globalValue(parameter.name);
      if (!isLive(parameter, value, live)) wrong.push(`${parameter.name}: ${String(live)}, not ${String(value)}`);
    }
    assert.deepEqual(wrong, []);
    const tenant = await connectTenant({ address, port: 3306, user: 'alice', password: 'al1ce-pass', database: 'app' });
    try {
      // the group's autocommit = 0 is the tenant's session default; the guest's own writes (users, grants) were committed
      await tenant.query('CREATE TABLE t (k INT PRIMARY KEY) ENGINE=InnoDB');
      await tenant.query('INSERT INTO t VALUES (1)');
      await tenant.query('COMMIT');
    } finally {
      await tenant.end();
    }
    assert.deepEqual(await driver.users!.list(), [{ name: 'alice', host: '%', databases: [{ name: 'app' }] }]);
    assert.deepEqual((await readEngineSpec(dir))?.overrides, everyParameter);
  });

  it('has every published parameter on the server, restart-only exactly where SET GLOBAL is refused as read-only', async () => {
    const mismatched: string[] = [];
    await admin(async (connection) => {
      for (const parameter of mariadbParameters) {
        const [rows] = await connection.query<Row[]>(
          'SELECT READ_ONLY AS readOnly FROM information_schema.SYSTEM_VARIABLES WHERE VARIABLE_NAME = ?',
          [parameter.name.toUpperCase()],
        );
        assert.equal(rows.length, 1, `${parameter.name} is a server variable`);
        const outcome = await connection
          .query(`SET GLOBAL ${escapeId(parameter.name)} = @@GLOBAL.${escapeId(parameter.name)}`)
          .then(() => 'set', (err: { code?: string; sqlMessage?: string }) => {
            assert.equal(err.code, 'ER_INCORRECT_GLOBAL_LOCAL_VAR', `${parameter.name}: ${err.sqlMessage}`);
            return 'read-only';
          });
        if ((outcome === 'read-only') !== parameter.restartRequired) mismatched.push(`${parameter.name} is ${outcome}`);
        if ((rows[0]!.readOnly === 'YES') !== parameter.restartRequired) mismatched.push(`${parameter.name}: READ_ONLY ${String(rows[0]!.readOnly)}`);
      }
    });
    assert.deepEqual(mismatched, []);
  });

  it('publishes types the server holds and bounds inside the server\'s own, so that no value is silently clamped', async () => {
    const problems: string[] = [];
    await admin(async (connection) => {
      for (const parameter of mariadbParameters) {
        const [rows] = await connection.query<Row[]>(
          'SELECT VARIABLE_TYPE AS type, NUMERIC_MIN_VALUE AS min, NUMERIC_MAX_VALUE AS max, ENUM_VALUE_LIST AS choices ' +
            'FROM information_schema.SYSTEM_VARIABLES WHERE VARIABLE_NAME = ?',
          [parameter.name.toUpperCase()],
        );
        const server = rows[0]!;
        const type = String(server.type);
        const fits = {
          // Trove's integers 0..1 (innodb_file_per_table, autocommit) are the server's booleans
          integer: /INT/.test(type) || (type === 'BOOLEAN' && parameter.min === 0 && parameter.max === 1),
          float: type === 'DOUBLE',
          boolean: type === 'BOOLEAN' || (type === 'ENUM' && /\bOFF,ON\b/.test(String(server.choices))),
          string: ['ENUM', 'SET', 'VARCHAR'].includes(type),
        }[parameter.type];
        if (!fits) problems.push(`${parameter.name}: ${parameter.type} for ${type}`);
        if (parameter.min !== undefined && server.min !== null && Number(parameter.min) < Number(server.min)) {
          problems.push(`${parameter.name}: min ${parameter.min} < ${String(server.min)}`);
        }
        if (parameter.max !== undefined && server.max !== null && BigInt(Math.trunc(parameter.max)) > BigInt(String(server.max).split('.')[0]!)) {
          problems.push(`${parameter.name}: max ${parameter.max} > ${String(server.max)}`);
        }
        for (const choice of parameter.choices ?? []) {
          if (!String(server.choices).split(',').includes(choice)) problems.push(`${parameter.name}: ${choice} is not one of ${String(server.choices)}`);
        }
      }
    });
    assert.deepEqual(problems, []);
  });

  it('answers the effective configuration: Coffer\'s settings with the group\'s values', async () => {
    const effective = await driver.configuration!.effective();
    for (const [name, value] of Object.entries(everyParameter)) assert.equal(effective[name], value, name);
    const detached = await driver.configuration!.apply({});
    assert.deepEqual(
      detached.pendingRestart.sort(),
      mariadbParameters.filter((p) => p.restartRequired).map((p) => p.name).sort(),
    );
    const own = await driver.configuration!.effective();
    assert.equal(own.innodb_buffer_pool_size, 256 * mib, 'half of 512 MB');
    assert.equal(own.character_set_server, 'utf8mb4');
    assert.equal(own.wait_timeout, undefined, 'Coffer sets none');
    assert.equal(Number(await globalValue('wait_timeout')), 28_800, 'the server\'s default again');
    assert.equal(Number(await globalValue('innodb_buffer_pool_size')), 256 * mib, 'Coffer\'s value again, live');
    assert.equal(await globalValue('collation_server'), 'utf8mb4_general_ci');
    assert.equal(Number(await globalValue('autocommit')), 1);
  });

  it('puts the file, the spec and every live value back when the server refuses one value', async () => {
    await driver.configuration!.apply({ max_connections: 90, wait_timeout: 100 });
    const file = await myCnf();
    const spec = await readEngineSpec(dir);
    // max_connections and wait_timeout are set before sql_mode: both must be undone
    await assert.rejects(driver.configuration!.apply({ max_connections: 300, wait_timeout: 200, sql_mode: 'NOT_A_REAL_MODE' }), (err: Error) => {
      assert.equal((err as { code?: string }).code, 'EngineError');
      assert.match(err.message, /sql_mode/);
      assert.match(err.message, /NOT_A_REAL_MODE/);
      return true;
    });
    assert.equal(Number(await globalValue('max_connections')), 90);
    assert.equal(Number(await globalValue('wait_timeout')), 100);
    assert.equal(await myCnf(), file);
    assert.deepEqual(await readEngineSpec(dir), spec);
  });

  it('refuses a collation of another character set before changing anything', async () => {
    const file = await myCnf();
    await rejectsWithCode(driver.configuration!.apply({ character_set_server: 'latin1', collation_server: 'utf8mb4_bin' }), 'EngineError');
    assert.equal(await globalValue('character_set_server'), 'utf8mb4');
    assert.equal(await myCnf(), file);
    // one of the two alone: the server derives the other, live as at the next start
    assert.deepEqual(await driver.configuration!.apply({ character_set_server: 'latin1' }), { pendingRestart: [] });
    assert.equal(await globalValue('collation_server'), 'latin1_swedish_ci');
    await driver.stop();
    await driver.start();
    assert.equal(await globalValue('collation_server'), 'latin1_swedish_ci');
  });

  it('refuses hostile strings and unpublished names before anything changes', async () => {
    const file = await myCnf();
    const refused: ConfigurationValues[] = [
      { sql_mode: "ANSI'; SET GLOBAL local_infile = 1; --" },
      { sql_mode: 'ANSI"\nplugin_load_add = ha_connect' },
      { local_infile: 1 },
      { secure_file_priv: '' },
      { innodb_flush_method: 'sometimes' },
      { innodb_buffer_pool_size: 513 * mib },
    ];
    for (const overrides of refused) {
      await assert.rejects(driver.configuration!.apply(overrides), JSON.stringify(overrides));
    }
    assert.equal(await myCnf(), file);
    assert.equal(Number(await globalValue('local_infile')), 0);
  });

  it('keeps the overrides across a resize and an access update, recomputing only what follows memory', async () => {
    await driver.configuration!.apply({ max_connections: 90, wait_timeout: 100 });
    await driver.resize(1024);
    assert.equal(Number(await globalValue('max_connections')), 90);
    assert.equal(Number(await globalValue('wait_timeout')), 100);
    assert.equal(Number(await globalValue('innodb_buffer_pool_size')), 512 * mib, 'the new memory');
    await driver.updateAccess({ allowedCidrs: ['127.0.0.0/8'] });
    const spec = await readEngineSpec(dir);
    assert.deepEqual(spec, { memoryMb: 1024, access: { allowedCidrs: ['127.0.0.0/8'] }, overrides: { max_connections: 90, wait_timeout: 100 } });
    await driver.stop();
    await driver.start();
    assert.equal(Number(await globalValue('max_connections')), 90);
  });

  it('serves an instance prepared before specs were saved from the host\'s record of its flavor, and saves a spec from then on', async () => {
    await driver.configuration!.apply({});
    await rm(join(dir, 'engine-spec.json'));
    const file = await myCnf();
    await rejectsWithCode(driver.configuration!.apply({ wait_timeout: 50 }), 'EngineError');
    await rejectsWithCode(driver.configuration!.effective(), 'EngineError');
    assert.equal(await myCnf(), file, 'nothing rendered without knowing the memory');

    const recorded = create(1024);
    assert.equal((await recorded.configuration!.effective()).innodb_buffer_pool_size, 512 * mib);
    assert.deepEqual(await recorded.configuration!.apply({ wait_timeout: 50 }), { pendingRestart: [] });
    assert.equal(Number(await globalValue('wait_timeout')), 50);
    assert.deepEqual(await readEngineSpec(dir), { memoryMb: 1024, access: null, overrides: { wait_timeout: 50 } });

    await rm(join(dir, 'engine-spec.json'));
    await driver.resize(512);
    assert.deepEqual(await readEngineSpec(dir), { memoryMb: 512, access: null, overrides: {} }, 'a resize saves what it rendered');
    assert.equal(Number(await globalValue('innodb_buffer_pool_size')), 256 * mib);
  });
});
