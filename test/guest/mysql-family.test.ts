import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isCofferError } from '../../src/common/index.js';
import type { ProcessRunner } from '../../src/guest/index.js';
import { mariadbFlavor, mariadbInitSql, parseMariadbVersion } from '../../src/guest/engines/mariadb/engine.js';
import { mysqlEngine, mysqlFlavor, mysqlInitSql, parseMysqlVersion } from '../../src/guest/engines/mysql/engine.js';
import { deriveAccounts, rangesOf } from '../../src/guest/engines/mysql-family/account-registry.js';
import { MysqlFamilyAdmin } from '../../src/guest/engines/mysql-family/admin.js';
import { optionValue, renderMyCnf, tuneMemory, type MyCnfInput } from '../../src/guest/engines/mysql-family/config.js';
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
  const input: MyCnfInput = {
    memoryMb: 1024,
    address: '127.92.0.5',
    port: 3306,
    dataDir: '/var/lib/coffer/i/data',
    tmpDir: '/var/lib/coffer/i/tmp',
    filesDir: '/var/lib/coffer/i/files',
    socket: '/var/lib/coffer/i/data/mysqld.sock',
    pidFile: '/var/lib/coffer/i/data/mysqld.pid',
    slowLog: '/var/lib/coffer/i/slow-query.log',
    generalLog: '/var/lib/coffer/i/general.log',
    extra: (memory) => mariadbFlavor.extraConfig(memory),
  };

  it('listens on the instance address, with socket, pid file and tmpdir of its own', () => {
    const conf = renderMyCnf(input);
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
    const conf = renderMyCnf(input);
    assert.match(conf, /^innodb_buffer_pool_size = 512M$/m);
    assert.match(conf, /^max_connections = 256$/m);
    assert.match(conf, /^innodb_log_file_size = 128M$/m);
    assert.match(conf, /^collation-server = utf8mb4_general_ci$/m);
    assert.doesNotMatch(conf, /mysqlx/);
    assert.notEqual(renderMyCnf({ ...input, memoryMb: 2048 }), conf);
  });

  it('turns off MySQL\'s X Protocol listener and binary log, and leaves out MariaDB-only settings', () => {
    const conf = renderMyCnf({ ...input, extra: (memory) => mysqlFlavor.extraConfig(memory) });
    assert.match(conf, /^mysqlx = OFF$/m);
    assert.match(conf, /^skip-log-bin$/m);
    assert.doesNotMatch(conf, /innodb_log_file_size|utf8mb4_general_ci/);
  });

  it('refuses option values that would break out of their line or quotes', () => {
    assert.equal(optionValue('/a b/#c'), '"/a b/#c"');
    for (const bad of ['a\nb', 'a"b', 'a\\b', 'a\rb']) assert.throws(() => optionValue(bad), badRequest);
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
    for (const reserved of ['root', 'os_admin', 'mariadb.sys', 'mysql.session', '']) {
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
