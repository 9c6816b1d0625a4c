import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isCofferError, type ConfigurationValues, type ErrorCode } from '../../src/common/index.js';
import type { ProcessRunner } from '../../src/guest/index.js';
import { mariadbEngine, mariadbFlavor, mariadbInitSql, parseMariadbVersion } from '../../src/guest/engines/mariadb/engine.js';
import { mysqlEngine, mysqlFlavor, mysqlInitSql, parseMysqlVersion } from '../../src/guest/engines/mysql/engine.js';
import { deriveAccounts, rangesOf } from '../../src/guest/engines/mysql-family/account-registry.js';
import { MysqlFamilyAdmin } from '../../src/guest/engines/mysql-family/admin.js';
import { binaryLogLines, cofferSettings, optionValue, renderMyCnf, tuneMemory, withOverrides } from '../../src/guest/engines/mysql-family/config.js';
import { checkOverrides, planChange, setGlobalStatement } from '../../src/guest/engines/mysql-family/configuration.js';
import {
  backupArgs,
  backupFacts,
  checkExtracted,
  checkParent,
  checkRestoreChain,
  extractArgs,
  findBackupTools,
  prepareArgs,
} from '../../src/guest/engines/mysql-family/backup-tools.js';
import { restoredAccountsSql } from '../../src/guest/engines/mysql-family/restore-chain.js';
import { parseUpgradeInfo, upgradeArgs } from '../../src/guest/engines/mysql-family/upgrade.js';
import type { MysqlFamilyFlavor } from '../../src/guest/engines/mysql-family/flavor.js';
import { reportedParameters } from '../../src/guest/engines/mysql-family/parameters.js';
import {
  cachingSha2PasswordHash,
  nativePasswordHash,
  sha256CryptDigest,
} from '../../src/guest/engines/mysql-family/password-hash.js';
import {
  accountHost,
  alterUserPasswordStatement,
  createDatabaseStatement,
  createUserStatement,
  dropDatabaseStatement,
  grantDatabaseStatement,
  intersect,
  parseCidr,
  parseUserHost,
} from '../../src/guest/engines/mysql-family/sql.js';

// The MySQL family without a server: configuration, statements, host patterns and access
// ranges, password hashes, version parsing, and the MySQL paths that cannot run on this host.

const badRequest = (err: unknown) => isCofferError(err) && err.code === 'BadRequest';
/** a CofferError of `code` whose message matches `message` */
const refused = (code: ErrorCode, message: RegExp) => (err: unknown) => isCofferError(err) && err.code === code && message.test(err.message);

describe('mysql-family memory settings', () => {
  it('gives InnoDB half of a small flavor and more of a large one', () => {
    assert.deepEqual(tuneMemory(512), { bufferPoolMb: 256, logFileMb: 64, maxConnections: 128, tmpTableMb: 16 });
    const big = tuneMemory(16 * 1024);
    assert.equal(big.bufferPoolMb, 11468);
    assert.equal(big.logFileMb, 2048);
    assert.equal(big.maxConnections, 2000);
    assert.equal(big.tmpTableMb, 256);
  });

  it('stays within sane bounds on tiny flavors', () => {
    assert.deepEqual(tuneMemory(32), { bufferPoolMb: 32, logFileMb: 16, maxConnections: 50, tmpTableMb: 8 });
  });
});

describe('my.cnf', () => {
  const placement = {
    address: '127.92.0.5',
    port: 3306,
    dataDir: '/var/lib/coffer/i/data',
    tmpDir: '/var/lib/coffer/i/tmp',
    filesDir: '/var/lib/coffer/i/files',
    socket: '/var/lib/coffer/i/data/mysqld.sock',
    pidFile: '/var/lib/coffer/i/data/mysqld.pid',
    slowLog: '/var/lib/coffer/i/slow-query.log',
    generalLog: '/var/lib/coffer/i/general.log',
  };
  const render = (memoryMb: number, overrides: ConfigurationValues = {}, flavor: MysqlFamilyFlavor = mariadbFlavor) =>
    renderMyCnf({
      ...placement,
      memoryMb,
      // as the lifecycle renders an instance of a host without a backup storage (no archive)
      extraOptions: [...flavor.extraOptions, ...binaryLogLines(flavor, { basename: 'coffer-binlog', archived: false, serverId: 1, replication: undefined })],
      settings: withOverrides(cofferSettings(memoryMb, (memory) => flavor.extraSettings(memory)), overrides),
      parameters: flavor.parameters,
    });
  const mib = 1024 * 1024;
  /** every line setting `name`, as `name = value` */
  const linesOf = (conf: string, name: string) => conf.split('\n').filter((line) => line.startsWith(`${name} =`));

  it('listens on the instance address, with socket, pid file and tmpdir of its own', () => {
    const conf = render(1024);
    assert.match(conf, /^\[mysqld\]$/m);
    assert.match(conf, /^bind-address = 127\.92\.0\.5$/m);
    assert.match(conf, /^port = 3306$/m);
    assert.match(conf, /^socket = "\/var\/lib\/coffer\/i\/data\/mysqld\.sock"$/m);
    assert.match(conf, /^pid-file = "\/var\/lib\/coffer\/i\/data\/mysqld\.pid"$/m);
    assert.match(conf, /^tmpdir = "\/var\/lib\/coffer\/i\/tmp"$/m);
    assert.match(conf, /^datadir = "\/var\/lib\/coffer\/i\/data"$/m);
    assert.match(conf, /^skip-name-resolve$/m);
    assert.match(conf, /^local-infile = 0$/m);
    assert.match(conf, /^secure-file-priv = "\/var\/lib\/coffer\/i\/files"$/m);
  });

  it('sizes InnoDB and connections from the flavor, with MariaDB settings', () => {
    const conf = render(1024);
    assert.match(conf, new RegExp(`^innodb_buffer_pool_size = ${512 * mib}$`, 'm'));
    assert.match(conf, /^max_connections = 256$/m);
    assert.match(conf, new RegExp(`^innodb_log_file_size = ${128 * mib}$`, 'm'));
    assert.match(conf, /^character_set_server = "utf8mb4"$/m);
    assert.match(conf, /^collation_server = "utf8mb4_general_ci"$/m);
    assert.match(conf, /^performance_schema = OFF$/m);
    assert.doesNotMatch(conf, /mysqlx/);
    assert.notEqual(render(2048), conf);
  });

  it('turns off MySQL\'s X Protocol listener and binary log, and leaves out MariaDB-only settings', () => {
    const conf = render(1024, {}, mysqlFlavor);
    assert.match(conf, /^mysqlx = OFF$/m);
    assert.match(conf, /^skip-log-bin$/m);
    assert.doesNotMatch(conf, /innodb_log_file_size|utf8mb4_general_ci/);
  });

  it('lets an override replace Coffer\'s value of the same name, and keeps everything else following memory', () => {
    const overrides = { innodb_buffer_pool_size: 100 * mib, max_connections: 500, wait_timeout: 60 };
    const small = render(1024, overrides);
    const large = render(4096, overrides);
    for (const conf of [small, large]) {
      assert.deepEqual(linesOf(conf, 'innodb_buffer_pool_size'), [`innodb_buffer_pool_size = ${100 * mib}`]);
      assert.deepEqual(linesOf(conf, 'max_connections'), ['max_connections = 500']);
      assert.deepEqual(linesOf(conf, 'wait_timeout'), ['wait_timeout = 60']);
    }
    assert.deepEqual(linesOf(small, 'tmp_table_size'), [`tmp_table_size = ${32 * mib}`]);
    assert.deepEqual(linesOf(large, 'tmp_table_size'), [`tmp_table_size = ${128 * mib}`], 'what no override sets follows memory');
  });

  it('writes each value in option-file syntax: booleans ON/OFF, numbers without exponents, strings quoted, options under their own name', () => {
    const conf = render(1024, { performance_schema: true, long_query_time: 0.0000001, sql_mode: '', tx_isolation: 'READ-COMMITTED' });
    assert.deepEqual(linesOf(conf, 'performance_schema'), ['performance_schema = ON']);
    assert.deepEqual(linesOf(conf, 'long_query_time'), ['long_query_time = 0.000000']);
    assert.deepEqual(linesOf(conf, 'sql_mode'), ['sql_mode = ""']);
    // MariaDB 10.11 has the variable tx_isolation but reads the option transaction-isolation
    assert.deepEqual(linesOf(conf, 'transaction-isolation'), ['transaction-isolation = "READ-COMMITTED"']);
    assert.deepEqual(linesOf(conf, 'tx_isolation'), []);
  });

  it('replaces Coffer\'s character set and collation together, so that the server never gets a mismatched pair', () => {
    const charset = render(1024, { character_set_server: 'latin1' });
    assert.deepEqual(linesOf(charset, 'character_set_server'), ['character_set_server = "latin1"']);
    assert.deepEqual(linesOf(charset, 'collation_server'), [], 'the server derives latin1\'s own collation');
    const collation = render(1024, { collation_server: 'latin1_german2_ci' });
    assert.deepEqual(linesOf(collation, 'character_set_server'), []);
    assert.deepEqual(linesOf(collation, 'collation_server'), ['collation_server = "latin1_german2_ci"']);
  });

  it('renders nothing outside the published parameters, and refuses values that would break out of their line or quotes', () => {
    for (const name of ['secure_file_priv', 'plugin_load_add', 'init_file', 'local_infile', 'datadir']) {
      assert.throws(
        () => renderMyCnf({ ...placement, memoryMb: 512, extraOptions: [], settings: new Map([[name, 'x']]), parameters: mariadbFlavor.parameters }),
        (err: unknown) => isCofferError(err) && err.code === 'UnprocessableEntity',
        name,
      );
    }
    assert.equal(optionValue('/a b/#c'), '"/a b/#c"');
    for (const bad of ['a\nb', 'a"b', 'a\\b', 'a\rb']) assert.throws(() => optionValue(bad), badRequest);
    assert.throws(() => render(1024, { sql_mode: 'ANSI"\nplugin_load_add = evil' }), badRequest);
  });
});

describe('mysql-family configuration parameters', () => {
  const flavors = [mariadbFlavor, mysqlFlavor];
  const unprocessable = (err: unknown) => isCofferError(err) && err.code === 'UnprocessableEntity';
  const engineError = (err: unknown) => isCofferError(err) && err.code === 'EngineError';

  it('publishes nothing that reaches files, programs, the network or what Coffer manages', () => {
    const forbidden =
      /(_file|dir|socket|port|address)$|^(plugin|ssl_|log_bin|binlog|relay|gtid|init_|secure|local_infile|skip_networking|require_secure|server_id|read_only)/;
    for (const flavor of flavors) {
      const names = flavor.parameters.map((p) => p.name);
      assert.deepEqual(names.filter((name) => forbidden.test(name)), [], flavor.manager);
      assert.equal(new Set(names).size, names.length, `${flavor.manager}: each name once`);
    }
  });

  it('lets a group set every setting Coffer computes itself', () => {
    for (const flavor of flavors) {
      const names = new Set(flavor.parameters.map((p) => p.name));
      for (const name of cofferSettings(512, (memory) => flavor.extraSettings(memory)).keys()) assert.ok(names.has(name), `${flavor.manager}: ${name}`);
    }
  });

  it('names the variable each engine has, and reports Trove\'s fields only, in name order', () => {
    const mariadb = reportedParameters(mariadbFlavor.parameters);
    const mysql = reportedParameters(mysqlFlavor.parameters);
    assert.ok(mariadb.some((p) => p.name === 'tx_isolation') && !mariadb.some((p) => p.name === 'transaction_isolation'));
    assert.ok(mysql.some((p) => p.name === 'transaction_isolation') && !mysql.some((p) => p.name === 'lower_case_table_names'));
    assert.deepEqual(
      mariadb.map((p) => p.name),
      mariadb.map((p) => p.name).sort(),
    );
    assert.deepEqual(mariadb.find((p) => p.name === 'innodb_flush_method'), { name: 'innodb_flush_method', type: 'string', restartRequired: true });
    assert.deepEqual(mariadb.find((p) => p.name === 'innodb_file_per_table'), {
      name: 'innodb_file_per_table',
      type: 'integer',
      restartRequired: false,
      min: 0,
      max: 1,
    });
    for (const parameter of [...mariadb, ...mysql]) {
      if (parameter.max !== undefined) assert.ok(Number.isSafeInteger(parameter.max), `${parameter.name}: max exact as JSON`);
    }
  });

  it('checks overrides with Trove\'s rules, then refuses strings that are not words and names outside the list', () => {
    const check = (values: Record<string, unknown>, memoryMb = 512) => checkOverrides(values, mariadbFlavor, 'mariadb 10.11', memoryMb);
    assert.deepEqual(check({ WAIT_TIMEOUT: 60, sql_mode: 'STRICT_TRANS_TABLES,ANSI', tx_isolation: 'READ-COMMITTED' }), {
      wait_timeout: 60,
      sql_mode: 'STRICT_TRANS_TABLES,ANSI',
      tx_isolation: 'READ-COMMITTED',
    });
    assert.throws(() => check({ wait_timeout: '60' }), unprocessable);
    assert.throws(() => check({ max_connections: 100_001 }), unprocessable);
    for (const name of ['secure_file_priv', 'local_infile', 'plugin_load_add', 'init_connect', 'general_log_file', 'require_secure_transport']) {
      assert.throws(() => check({ [name]: 'x' }), unprocessable, name);
    }
    for (const hostile of ['a"b', "a'b", 'a\\b', 'a b', 'x\nplugin_load_add=evil', 'a#b', 'a;b', 'x'.repeat(1025)]) {
      assert.throws(() => check({ sql_mode: hostile }), unprocessable, JSON.stringify(hostile));
    }
  });

  it('refuses a restart-only value the server would not start with, and a buffer pool larger than the flavor', () => {
    const check = (values: Record<string, unknown>, memoryMb = 512) => checkOverrides(values, mariadbFlavor, 'mariadb 10.11', memoryMb);
    assert.deepEqual(check({ innodb_flush_method: 'O_DIRECT' }), { innodb_flush_method: 'O_DIRECT' });
    assert.throws(() => check({ innodb_flush_method: 'sometimes' }), (err: unknown) => engineError(err) && /innodb_flush_method/.test((err as Error).message));
    assert.deepEqual(check({ innodb_buffer_pool_size: 512 * 1024 * 1024 }), { innodb_buffer_pool_size: 512 * 1024 * 1024 });
    assert.throws(
      () => check({ innodb_buffer_pool_size: 512 * 1024 * 1024 + 1 }),
      (err: unknown) => engineError(err) && /innodb_buffer_pool_size/.test((err as Error).message),
    );
  });
});

describe('mysql-family configuration changes', () => {
  const settings = (memoryMb: number, overrides: ConfigurationValues) =>
    withOverrides(cofferSettings(memoryMb, (memory) => mariadbFlavor.extraSettings(memory)), overrides);
  const plan = (before: ConfigurationValues, after: ConfigurationValues) =>
    planChange(settings(512, before), settings(512, after), mariadbFlavor.parameters);

  it('sets changed dynamic values live and names only the changed restart-only ones', () => {
    assert.deepEqual(plan({}, { wait_timeout: 60, performance_schema: true }), {
      live: [{ name: 'wait_timeout', value: 60 }],
      pendingRestart: ['performance_schema'],
    });
    assert.deepEqual(plan({ performance_schema: true }, { performance_schema: true, wait_timeout: 60 }), {
      live: [{ name: 'wait_timeout', value: 60 }],
      pendingRestart: [],
    });
    assert.deepEqual(plan({ max_connections: 128 }, {}), { live: [], pendingRestart: [] }, 'Coffer renders 128 for 512 MB too');
  });

  it('puts a removed override back to Coffer\'s value, or to the server\'s default where Coffer sets none', () => {
    assert.deepEqual(plan({ max_connections: 500, wait_timeout: 60, performance_schema: true }, {}), {
      live: [
        { name: 'max_connections', value: 128 },
        { name: 'wait_timeout', value: undefined },
      ],
      pendingRestart: ['performance_schema'],
    });
  });

  it('raises innodb_io_capacity_max before innodb_io_capacity', () => {
    const { live } = plan({}, { innodb_io_capacity: 4000, innodb_io_capacity_max: 8000 });
    assert.deepEqual(live.map((s) => s.name), ['innodb_io_capacity_max', 'innodb_io_capacity']);
  });

  it('sets a character set and collation as the file does: the most specific one, from which the server derives the other', () => {
    assert.deepEqual(plan({}, { character_set_server: 'latin1' }).live, [{ name: 'character_set_server', value: 'latin1' }]);
    assert.deepEqual(plan({}, { character_set_server: 'latin1', collation_server: 'latin1_bin' }).live, [
      { name: 'collation_server', value: 'latin1_bin' },
    ]);
    assert.deepEqual(plan({ collation_server: 'latin1_bin' }, {}).live, [{ name: 'collation_server', value: 'utf8mb4_general_ci' }]);
  });

  it('writes SET GLOBAL with numbers as numbers, booleans ON/OFF, strings as quoted literals, DEFAULT for none', () => {
    assert.equal(setGlobalStatement({ name: 'wait_timeout', value: 60 }), 'SET GLOBAL wait_timeout = 60');
    assert.equal(setGlobalStatement({ name: 'long_query_time', value: 0.5 }), 'SET GLOBAL long_query_time = 0.5');
    assert.equal(setGlobalStatement({ name: 'general_log', value: true }), 'SET GLOBAL general_log = ON');
    assert.equal(setGlobalStatement({ name: 'sql_mode', value: "a' OR 1; --" }), "SET GLOBAL sql_mode = 'a\\' OR 1; --'");
    assert.equal(setGlobalStatement({ name: 'sql_mode', value: undefined }), 'SET GLOBAL sql_mode = DEFAULT');
    assert.throws(() => setGlobalStatement({ name: 'x = 1; DROP', value: 1 }), (err: unknown) => isCofferError(err));
  });
});

describe('mysql-family statements', () => {
  it('quotes database names whole, dots and backticks included', () => {
    assert.equal(createDatabaseStatement({ name: 'a.b`c' }), 'CREATE DATABASE `a.b``c`');
    assert.equal(
      createDatabaseStatement({ name: 'x; DROP DATABASE victim; --', characterSet: 'latin1', collate: 'latin1_german2_ci' }, true),
      'CREATE DATABASE IF NOT EXISTS `x; DROP DATABASE victim; --` CHARACTER SET latin1 COLLATE latin1_german2_ci',
    );
    assert.equal(dropDatabaseStatement('it`s'), 'DROP DATABASE `it``s`');
    assert.throws(() => createDatabaseStatement({ name: 'd', characterSet: "latin1'; DROP" }), badRequest);
    assert.throws(() => createDatabaseStatement({ name: 'd', collate: 'utf8 bin' }), badRequest);
  });

  it('grants exactly one database: the wildcards _ and % of GRANT are escaped', () => {
    assert.equal(grantDatabaseStatement("o'k", '%', 'a_b%c\\d'), "GRANT ALL PRIVILEGES ON `a\\_b\\%c\\\\d`.* TO 'o\\'k'@'%'");
  });

  it('sets passwords as hashes only, in each engine\'s syntax', () => {
    const mariadb = createUserStatement("it's", '10.0.0.0/255.0.0.0', mariadbFlavor.identifiedClause(nativePasswordHash('pw')));
    assert.equal(mariadb, `CREATE USER 'it\\'s'@'10.0.0.0/255.0.0.0' IDENTIFIED BY PASSWORD '${nativePasswordHash('pw')}'`);
    const hash = cachingSha2PasswordHash('pw', 'abcdefghijklmnopqrst');
    assert.equal(
      alterUserPasswordStatement('u', '%', mysqlFlavor.identifiedClause(hash)),
      `ALTER USER 'u'@'%' IDENTIFIED WITH caching_sha2_password AS '${hash}'`,
    );
  });

  it('checks names against each engine\'s limits and its reserved accounts', () => {
    const mariadb = new MysqlFamilyAdmin(mariadbFlavor, () => Promise.reject(new Error('no server')));
    const mysql = new MysqlFamilyAdmin(mysqlFlavor, () => Promise.reject(new Error('no server')));
    const user = (name: string, host?: string) => [{ name, host, password: 'p', databases: [] }];
    mariadb.checkUsers(user('u'.repeat(80)));
    assert.throws(() => mariadb.checkUsers(user('u'.repeat(81))), badRequest);
    mysql.checkUsers(user('u'.repeat(32)));
    assert.throws(() => mysql.checkUsers(user('u'.repeat(33))), badRequest);
    for (const reserved of ['root', 'os_admin', 'os_backup', 'mariadb.sys', 'mysql.session', '']) {
      assert.throws(() => mariadb.checkUsers(user(reserved)), badRequest, reserved);
    }
    assert.throws(() => mariadb.checkUsers(user('u', 'db.example.com')), badRequest);
    assert.throws(() => mariadb.checkUsers([{ name: 'u', password: 'p', databases: [{ name: 'mysql' }] }]), badRequest);
    assert.throws(() => mariadb.checkUsers([{ name: 'u', password: 'p', databases: [{ name: 'd'.repeat(65) }] }]), badRequest);
    assert.throws(() => mariadb.checkUsers([{ name: 'u', password: 'p', databases: [{ name: 'trailing ' }] }]), badRequest);
  });
});

describe('mysql-family hosts and access ranges', () => {
  it('reads the host patterns that are address ranges, as the API accepts them', () => {
    const host = (pattern: string) => accountHost(parseUserHost(pattern)!);
    assert.deepEqual(parseUserHost('%'), { network: 0, prefix: 0 });
    assert.equal(host('10.1.2.3'), '10.1.2.3');
    assert.equal(host('10.1.%'), '10.1.0.0/255.255.0.0');
    assert.equal(host('192.168.%.%'), '192.168.0.0/255.255.0.0');
    assert.equal(host('%.%.%.%'), '%');
    assert.equal(host('192.168.0.0/255.255.255.0'), '192.168.0.0/255.255.255.0');
    assert.equal(host('10.0.0.0/8'), '10.0.0.0/255.0.0.0');
    // the server listens on IPv4: an IPv6 host is valid and admits no client
    assert.equal(parseUserHost('::1'), undefined);
    assert.equal(parseUserHost('fd00::/8'), undefined);
    for (const bad of ['localhost', 'db.example.com', '10.1%', '10.%.1', '10.%.%.%.%', '1.2.3.4/255.0.255.0', '10.0.0.1/255.0.0.0', '10.0.0.1/8', '10.0.0.0/33', '300.%', '']) {
      assert.throws(() => parseUserHost(bad), badRequest, bad);
    }
  });

  it('reads IPv4 CIDRs, skips IPv6 ones (the server listens on IPv4) and refuses anything else', () => {
    assert.deepEqual(parseCidr('10.1.2.3/8'), { network: 10 * 2 ** 24, prefix: 8 });
    assert.equal(parseCidr('fd00::/8'), undefined);
    for (const bad of ['10.0.0.0', '10.0.0.0/33', "10.0.0.0/8' OR 1", 'example.com/8']) assert.throws(() => parseCidr(bad), badRequest, bad);
  });

  it('intersects nested ranges and finds none between disjoint ones', () => {
    const of = (host: string) => parseUserHost(host)!;
    assert.equal(accountHost(intersect(of('%'), parseCidr('10.0.0.0/8')!)!), '10.0.0.0/255.0.0.0');
    assert.equal(accountHost(intersect(of('10.1.%'), parseCidr('10.0.0.0/8')!)!), '10.1.0.0/255.255.0.0');
    assert.equal(accountHost(intersect(of('10.1.2.3'), parseCidr('10.1.0.0/16')!)!), '10.1.2.3');
    assert.equal(intersect(of('10.1.2.3'), parseCidr('10.2.0.0/16')!), undefined);
    assert.equal(accountHost(intersect(of('%'), parseCidr('0.0.0.0/0')!)!), '%');
  });

  it('derives one account per allowed range a user reaches; the more specific user takes shared addresses', () => {
    const ranges = rangesOf(['10.0.0.0/8', '192.168.1.0/24', 'fd00::/8']);
    assert.deepEqual(deriveAccounts([{ host: '%' }], ranges), [
      { accountHost: '10.0.0.0/255.0.0.0', host: '%' },
      { accountHost: '192.168.1.0/255.255.255.0', host: '%' },
    ]);
    assert.deepEqual(deriveAccounts([{ host: '172.16.0.1' }], ranges), [], 'a host outside every range gets no account');
    assert.deepEqual(deriveAccounts([{ host: '::1' }], ranges), [], 'an IPv6 host gets no account');
    assert.deepEqual(deriveAccounts([{ host: '%' }, { host: '10.%' }], rangesOf(['10.0.0.0/8'])), [
      { accountHost: '10.0.0.0/255.0.0.0', host: '10.%' },
    ]);
  });
});

describe('mysql-family password hashes', () => {
  it('computes mysql_native_password as the server does (PASSWORD())', () => {
    // SELECT PASSWORD('secret') on MariaDB 10.11
    assert.equal(nativePasswordHash('secret'), '*14E65567ABDB5135D0CFD9A70B3032C179A49EE7');
  });

  it('computes SHA-256 crypt digests as glibc does, and MySQL\'s caching_sha2_password format', () => {
    // Drepper's specification, test vector 1, and glibc's crypt('password', '$5$rounds=5000$saltsaltsaltsalt')
    assert.equal(sha256CryptDigest('Hello world!', 'saltstring', 5000), '5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5');
    assert.equal(sha256CryptDigest('password', 'saltsaltsaltsalt', 5000), 'WsFBeg1qQ90JL3VkUTuM7xVV/5njhLngIVm6ftSnBR2');
    const hash = cachingSha2PasswordHash('p\'a"s ☃', 'ABCDEFGHIJKLMNOPQRST');
    assert.equal(hash, `$A$005$ABCDEFGHIJKLMNOPQRST${sha256CryptDigest('p\'a"s ☃', 'ABCDEFGHIJKLMNOPQRST', 5000)}`);
    assert.equal(hash.length, 70);
    const random = cachingSha2PasswordHash('pw');
    assert.match(random, /^\$A\$005\$[./0-9A-Za-z]{63}$/);
    assert.notEqual(cachingSha2PasswordHash('pw'), random, 'a fresh salt each time');
  });
});

describe('mysql-family versions and initialisation', () => {
  it('parses MariaDB versions and leaves MySQL ones alone', () => {
    const debian = '/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)';
    assert.deepEqual(parseMariadbVersion(debian), { versionName: '10.11', version: '10.11.19' });
    assert.equal(parseMariadbVersion('/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)'), undefined);
  });

  it('parses MySQL versions and refuses MariaDB\'s mysqld', () => {
    assert.deepEqual(parseMysqlVersion('/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)'), {
      versionName: '8.0',
      version: '8.0.36',
    });
    assert.deepEqual(parseMysqlVersion('/usr/local/mysql/bin/mysqld  Ver 8.4.3 for Linux on x86_64 (MySQL Community Server - GPL)'), {
      versionName: '8.4',
      version: '8.4.3',
    });
    assert.equal(parseMysqlVersion('/usr/sbin/mysqld  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)'), undefined);
  });

  it('initialises MariaDB with install-db and MySQL with mysqld --initialize-insecure, each with the init file', () => {
    const mariadb = mariadbFlavor.initCommand({ server: '/usr/sbin/mariadbd', installer: '/usr/bin/mariadb-install-db', baseDir: '/usr' }, '/i/my.cnf', '/i/.init.sql');
    assert.equal(mariadb.file, '/usr/bin/mariadb-install-db');
    assert.equal(mariadb.args[0], '--defaults-file=/i/my.cnf');
    assert.ok(mariadb.args.includes('--extra-file=/i/.init.sql'));
    assert.ok(mariadb.args.includes('--skip-test-db'));
    const mysql = mysqlFlavor.initCommand({ server: '/opt/mysql/bin/mysqld', baseDir: '/opt/mysql' }, '/i/my.cnf', '/i/.init.sql');
    assert.deepEqual(mysql, {
      file: '/opt/mysql/bin/mysqld',
      args: ['--defaults-file=/i/my.cnf', '--initialize-insecure', '--init-file=/i/.init.sql'],
    });
  });

  it('leaves only the guest\'s account after initialisation: no anonymous users, no root', () => {
    const mariadb = mariadbInitSql(nativePasswordHash('x'));
    assert.match(mariadb, /DELETE FROM mysql\.global_priv WHERE User IN \('', 'root'\);/);
    assert.match(mariadb, /DELETE FROM mysql\.db WHERE User = '';/);
    // escape() writes the JSON's double quotes as \", which the server reads back as "
    assert.match(
      mariadb.replace(/\\"/g, '"'),
      /'localhost', 'os_admin', '\{"access":18446744073709551615,"plugin":"mysql_native_password","authentication_string":"\*[0-9A-F]{40}"\}'/,
    );
    const hash = cachingSha2PasswordHash('x', 'ABCDEFGHIJKLMNOPQRST');
    assert.equal(
      mysqlInitSql(hash),
      `CREATE USER 'os_admin'@'localhost' IDENTIFIED WITH caching_sha2_password AS '${hash}';\n` +
        "GRANT ALL PRIVILEGES ON *.* TO 'os_admin'@'localhost' WITH GRANT OPTION;\n" +
        "DROP USER 'root'@'localhost';\n",
    );
  });
});

describe('mysql-family discovery', () => {
  /** runs --version the way the agent's runner does, without changing user */
  const runner: ProcessRunner = {
    run: async (file, args) => {
      const { execFile } = await import('node:child_process');
      return new Promise((resolve, reject) =>
        execFile(file, [...args], (err, stdout, stderr) => (err === null ? resolve({ stdout, stderr }) : reject(err))),
      );
    },
    spawnDetached: () => Promise.reject(new Error('not used')),
    stream: () => {
      throw new Error('not used');
    },
    handOver: async () => undefined,
    ready: async () => undefined,
  };

  it('finds MySQL only where a real MySQL server is, and otherwise says how to install one', async () => {
    const root = await mkdtemp(join(tmpdir(), 'coffer-mysql-bin-'));
    try {
      const fake = join(root, 'mysql', 'bin');
      await mkdir(fake, { recursive: true });
      // a stand-in for Oracle's server, which Debian does not ship: only its --version answer matters here
      await writeFile(join(fake, 'mysqld'), '#!/bin/sh\necho "$0  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)"\n');
      await chmod(join(fake, 'mysqld'), 0o755);
      const found = await mysqlEngine.discover([fake], runner);
      assert.deepEqual(found.binaries, [{ versionName: '8.0', version: '8.0.36', binDir: fake }]);
      assert.equal(found.reports[0]?.active, true);
      assert.equal(found.reports[0]?.datastore, 'mysql');

      const missing = await mysqlEngine.discover([join(root, 'nowhere')], runner);
      const report = missing.reports[0]!;
      assert.equal(missing.binaries.filter((b) => b.binDir.startsWith(root)).length, 0);
      if (missing.binaries.length === 0) {
        assert.equal(report.active, false);
        assert.match(report.inactiveReason ?? '', /Debian ships no MySQL server: install MySQL Community Server/);
        assert.equal(report.capabilities.accessRules, true);
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('mysql-family backups', () => {
  const mariadbCheckpoints = 'backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 44878\nlast_lsn = 48135\nrecover_binlog_info = 0\n';
  const mariadbInfo = [
    'uuid = 44b88f59-ef1d-11f1-a8dd-02fc00000001',
    'name = ',
    'tool_name = mariadb-backup',
    'server_version = 10.11.19-MariaDB-0+deb12u1',
    'binlog_pos = ',
    'innodb_from_lsn = 0',
    'innodb_to_lsn = 44878',
    '',
  ].join('\n');
  // as Percona XtraBackup 8.0 writes them for a server that logs binary logs with GTIDs
  const mysqlCheckpoints = 'backup_type = incremental\nfrom_lsn = 18153472\nto_lsn = 18164938\nlast_lsn = 18164948\nflushed_lsn = 18164948\n';
  const mysqlInfo = [
    'uuid = 0f7cd6a1-3a52-11ef-9a6b-0242ac110002',
    'tool_name = xtrabackup',
    'server_version = 8.0.36',
    "binlog_pos = filename 'binlog.000003', position '1568', GTID of the last change '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-23'",
    '',
  ].join('\n');

  it('streams a backup as xbstream over the socket, the password never on the command line', () => {
    const input = { defaultsFile: '../my.cnf', scratchDir: '../backup-scratch', socket: 'mysqld.sock', user: 'os_backup' };
    assert.deepEqual(backupArgs(mariadbFlavor, input), [
      '--defaults-file=../my.cnf',
      '--backup',
      '--stream=xbstream',
      '--target-dir=../backup-scratch',
      '--extra-lsndir=../backup-scratch',
      '--socket=mysqld.sock',
      '--user=os_backup',
      // a session's LOCK TABLES makes the backup fail after a while, not wait for ever
      '--startup-wait-timeout=60',
    ]);
    const mysql = backupArgs(mysqlFlavor, { ...input, incrementalLsn: '18153472' });
    assert.equal(mysql[0], '--defaults-file=../my.cnf');
    assert.ok(mysql.includes('--incremental-lsn=18153472'));
    assert.ok(mysql.includes('--no-version-check'));
    for (const args of [mysql, backupArgs(mariadbFlavor, input)]) assert.ok(!args.some((arg) => /password/i.test(arg)));
    assert.deepEqual(extractArgs('.'), ['-x', '-C', '.']);
  });

  it('prepares MariaDB\'s full backup, then applies each incremental to it; XtraBackup applies the log only until the last', () => {
    const chain = (flavor: MysqlFamilyFlavor, count: number) =>
      Array.from({ length: count }, (_, index) => prepareArgs(flavor, '.', { index, count, dir: `../incremental-${index}` }));
    assert.deepEqual(chain(mariadbFlavor, 3), [
      ['--prepare', '--target-dir=.'],
      ['--prepare', '--target-dir=.', '--incremental-dir=../incremental-1'],
      ['--prepare', '--target-dir=.', '--incremental-dir=../incremental-2'],
    ]);
    assert.deepEqual(chain(mysqlFlavor, 3), [
      ['--prepare', '--target-dir=.', '--apply-log-only'],
      ['--prepare', '--target-dir=.', '--incremental-dir=../incremental-1', '--apply-log-only'],
      ['--prepare', '--target-dir=.', '--incremental-dir=../incremental-2'],
    ]);
    assert.deepEqual(chain(mysqlFlavor, 1), [['--prepare', '--target-dir=.']]);
  });

  it('records LSNs, the backup\'s id, the server version and the binary log position from the tool\'s files', () => {
    assert.deepEqual(backupFacts(mariadbCheckpoints, mariadbInfo), {
      uuid: '44b88f59-ef1d-11f1-a8dd-02fc00000001',
      'from-lsn': '0',
      'to-lsn': '44878',
      version: '10.11.19',
    });
    const parent = { uuid: 'parent-id', 'to-lsn': '18153472', version: '8.0.36' };
    assert.deepEqual(backupFacts(mysqlCheckpoints, mysqlInfo, parent), {
      uuid: '0f7cd6a1-3a52-11ef-9a6b-0242ac110002',
      'from-lsn': '18153472',
      'to-lsn': '18164938',
      version: '8.0.36',
      'parent-uuid': 'parent-id',
      'binlog-file': 'binlog.000003',
      'binlog-position': '1568',
      gtid: '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-23',
    });
    const engineError = (err: unknown) => isCofferError(err) && err.code === 'EngineError';
    assert.throws(() => backupFacts('', mariadbInfo), engineError);
    assert.throws(() => backupFacts(mariadbCheckpoints, 'uuid = x\n'), engineError);
    assert.throws(() => backupFacts(mariadbCheckpoints.replace('44878', '4487x'), mariadbInfo), engineError);
  });

  it('continues an incremental only from a parent of this server\'s major.minor', () => {
    const parent = { uuid: 'p', 'to-lsn': '44878', version: '10.11.19' };
    assert.equal(checkParent(mariadbFlavor, parent, '10.11'), '44878');
    assert.throws(() => checkParent(mariadbFlavor, { ...parent, 'to-lsn': '1; rm -rf /' }, '10.11'), badRequest);
    assert.throws(() => checkParent(mariadbFlavor, { 'to-lsn': '1', version: '10.11.19' }, '10.11'), badRequest);
    assert.throws(
      () => checkParent(mysqlFlavor, { ...parent, version: '8.0.36' }, '8.4'),
      refused('BadRequest', /MySQL 8\.0\.36.*MySQL 8\.4: take a full backup/),
    );
  });

  it('checks a restore chain before anything is restored', () => {
    const full = { kind: 'full' as const, facts: { uuid: 'a', 'from-lsn': '0', 'to-lsn': '100', version: '10.11.19' } };
    const one = { kind: 'incremental' as const, facts: { uuid: 'b', 'parent-uuid': 'a', 'from-lsn': '100', 'to-lsn': '100', version: '10.11.19' } };
    const two = { kind: 'incremental' as const, facts: { uuid: 'c', 'parent-uuid': 'b', 'from-lsn': '100', 'to-lsn': '180', version: '10.11.19' } };
    const check = (chain: (typeof full | typeof one)[], version = '10.11') => () => checkRestoreChain(mariadbFlavor, chain, version);
    check([full])();
    check([full, one, two])();
    // one and two share their LSNs (no checkpoint between them): only their ids tell the order
    assert.throws(
      check([full, two, one]),
      refused('BadRequest', /Backup 2 of the restore chain does not follow backup 1: the chain is out of order or misses a backup/),
    );
    assert.throws(check([full, two]), refused('BadRequest', /does not follow backup 1/));
    assert.throws(check([one, two]), refused('BadRequest', /Backup 1 of the restore chain is incremental/));
    assert.throws(check([full, full]), refused('BadRequest', /Backup 2 of the restore chain is a full backup/));
    assert.throws(check([]), refused('BadRequest', /at least one backup/));
    assert.throws(check([{ ...full, facts: { ...full.facts, 'to-lsn': '' } }]), refused('BadRequest', /records no to-lsn/));
    assert.throws(
      check([full], '11.4'),
      refused('BadRequest', /taken from MariaDB 10\.11\.19; this instance runs MariaDB 11\.4: restore it into an instance of version 10\.11/),
    );
    // the LSN must continue too, whatever the ids say
    assert.throws(check([full, { ...one, facts: { ...one.facts, 'from-lsn': '90' } }]), badRequest);
  });

  it('refuses a link whose unpacked stream is another backup than its record', () => {
    const record = { kind: 'full' as const, facts: { 'from-lsn': '0', 'to-lsn': '44878' } };
    checkExtracted(mariadbFlavor, record, 0, mariadbCheckpoints);
    assert.throws(() => checkExtracted(mariadbFlavor, { ...record, facts: { ...record.facts, 'to-lsn': '1' } }, 0, mariadbCheckpoints), badRequest);
    assert.throws(
      () => checkExtracted(mariadbFlavor, { ...record, kind: 'incremental' }, 1, mariadbCheckpoints),
      refused('BadRequest', /Backup 2 .*\(full-backuped, LSN 0 to 44878\)/),
    );
  });

  it('gives a restored server\'s guest account the new password and drops the backup account, in each engine\'s syntax', () => {
    const mariadb = restoredAccountsSql(mariadbFlavor, nativePasswordHash('new'));
    assert.equal(
      mariadb,
      "DROP USER IF EXISTS 'os_admin'@'localhost', 'os_backup'@'localhost';\n" +
        `CREATE USER 'os_admin'@'localhost' IDENTIFIED BY PASSWORD '${nativePasswordHash('new')}';\n` +
        "GRANT ALL PRIVILEGES ON *.* TO 'os_admin'@'localhost' WITH GRANT OPTION;\n",
    );
    const hash = cachingSha2PasswordHash('new', 'ABCDEFGHIJKLMNOPQRST');
    assert.match(restoredAccountsSql(mysqlFlavor, hash), /^CREATE USER 'os_admin'@'localhost' IDENTIFIED WITH caching_sha2_password AS '/m);
  });

  it('finds the tools beside the server or in the system\'s directories, and says how to install them when missing', async () => {
    const root = await mkdtemp(join(tmpdir(), 'coffer-xtrabackup-'));
    try {
      const bin = join(root, 'mysql', 'bin');
      const system = join(root, 'usr-bin');
      await mkdir(bin, { recursive: true });
      await mkdir(system);
      // MySQL's binary log programs come with its server (see mysql-point-in-time.test.ts)
      for (const path of [join(bin, 'xtrabackup'), join(system, 'xbstream'), join(bin, 'mysqlbinlog'), join(bin, 'mysql')]) {
        await writeFile(path, '#!/bin/sh\n');
        await chmod(path, 0o755);
      }
      assert.deepEqual(await findBackupTools(mysqlFlavor, bin, [system]), {
        tool: join(bin, 'xtrabackup'),
        extractor: join(system, 'xbstream'),
        binlogReader: join(bin, 'mysqlbinlog'),
        client: join(bin, 'mysql'),
      });
      await assert.rejects(
        findBackupTools(mysqlFlavor, join(root, 'nowhere'), [system]),
        refused('EngineError', /cannot back up or restore MySQL: xtrabackup is not installed\. Install Percona XtraBackup/),
      );
      await assert.rejects(
        findBackupTools(mariadbFlavor, bin, [system]),
        refused('EngineError', /mariadb-backup is not installed\. Install Debian's mariadb-backup package/),
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('declares full and incremental backups for both engines of the family', () => {
    for (const engine of [mariadbEngine, mysqlEngine]) {
      assert.equal(engine.capabilities.backup, true);
      assert.equal(engine.capabilities.incrementalBackup, true);
    }
  });
});

describe('mysql-family upgrades by restart', () => {
  it('reads the version the upgrade tool records, and runs it forced, out of the binary log, with no password or host path', () => {
    assert.equal(parseUpgradeInfo('10.11.19-MariaDB\n'), '10.11.19');
    assert.equal(parseUpgradeInfo('10.11.19'), '10.11.19');
    assert.equal(parseUpgradeInfo('garbage'), undefined);
    // paths relative to the data directory, the password in MYSQL_PWD
    assert.deepEqual(upgradeArgs('mysqld.sock', '../tmp'), [
      '--no-defaults',
      '--socket=mysqld.sock',
      '--user=os_upgrade',
      '--force',
      '--skip-write-binlog',
      '--tmpdir=../tmp',
      '--silent',
    ]);
  });

  it('is MariaDB\'s alone: MySQL upgrades its own system tables as it starts', () => {
    assert.deepEqual(mariadbFlavor.upgrade?.toolNames, ['mariadb-upgrade', 'mysql_upgrade']);
    assert.equal(mysqlFlavor.upgrade, undefined);
  });
});
