// test-lane: parallel (no server: fakes stand in for MySQL and its programs)
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import { escape } from 'mysql2';
import type { Connection } from 'mysql2/promise';
import { isCofferError, silentLogger } from '../../src/common/index.js';
import type { ProcessRunner, RunOptions, StreamOptions, StreamingProcess } from '../../src/guest/process-runner.js';
import type { ArchivedLogFile, PointInTimeSource } from '../../src/guest/engines/engine.js';
import { mariadbEngine, mariadbFlavor } from '../../src/guest/engines/mariadb/engine.js';
import { mysqlEngine, mysqlFlavor } from '../../src/guest/engines/mysql/engine.js';
import type { MysqlFamilyAdmin } from '../../src/guest/engines/mysql-family/admin.js';
import { mysqlFamilyBackup, type BackupHost } from '../../src/guest/engines/mysql-family/backup.js';
import { backupFacts, findBackupTools } from '../../src/guest/engines/mysql-family/backup-tools.js';
import { BinlogArchive, rotateAfterMs } from '../../src/guest/engines/mysql-family/binlog-archive.js';
import { beginsTransaction, binlogEvents, endsTransaction, isBinlogName } from '../../src/guest/engines/mysql-family/binlog-files.js';
import { planReplay, replayBinlog } from '../../src/guest/engines/mysql-family/binlog-replay.js';
import { binaryLogLines } from '../../src/guest/engines/mysql-family/config.js';
import { cachingSha2PasswordHash } from '../../src/guest/engines/mysql-family/password-hash.js';

// MySQL's point-in-time recovery without a MySQL server (Debian ships none): where its path
// differs from MariaDB's (my.cnf, the tools found, what XtraBackup records, what mysqlbinlog
// prints, the SQL sent and the command lines run), with inputs in MySQL 8's own formats.

/** mysqlbinlog 8.0 --base64-output=decode-rows, TZ=UTC, of a file holding one insert and one DDL (gtid_mode OFF, MySQL's default) */
const mysqlbinlogOutput = [
  '# The proper term is pseudo_replica_mode, but we use this compatibility alias',
  '# to make the statement usable on server versions 8.0.24 and older.',
  '/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/;',
  '/*!50003 SET @OLD_COMPLETION_TYPE=@@COMPLETION_TYPE,COMPLETION_TYPE=0*/;',
  'DELIMITER /*!*/;',
  '# at 4',
  '#261203 10:00:01 server id 1  end_log_pos 126 CRC32 0x6d2e0dc4 \tStart: binlog v 4, server v 8.0.36 created 261203 10:00:01',
  '# at 126',
  '#261203 10:00:01 server id 1  end_log_pos 157 CRC32 0x4a0a5e3f \tPrevious-GTIDs',
  '# [empty]',
  '# at 157',
  '#261203 10:00:03 server id 1  end_log_pos 236 CRC32 0x9a3c5d2e \tAnonymous_GTID\tlast_committed=0\tsequence_number=1\trbr_only=yes\toriginal_committed_timestamp=1796292003412345\timmediate_commit_timestamp=1796292003412345\ttransaction_length=283',
  "/*!50718 SET TRANSACTION ISOLATION LEVEL READ COMMITTED*//*!*/;",
  '# original_commit_timestamp=1796292003412345 (2026-12-03 10:00:03.412345 UTC)',
  '# immediate_commit_timestamp=1796292003412345 (2026-12-03 10:00:03.412345 UTC)',
  '/*!80001 SET @@session.original_commit_timestamp=1796292003412345*//*!*/;',
  '/*!80014 SET @@session.original_server_version=80036*//*!*/;',
  "SET @@SESSION.GTID_NEXT= 'ANONYMOUS'/*!*/;",
  '# at 236',
  '#261203 10:00:02 server id 1  end_log_pos 315 CRC32 0x1b2c3d4e \tQuery\tthread_id=9\texec_time=0\terror_code=0',
  'SET TIMESTAMP=1796292002/*!*/;',
  'BEGIN',
  '/*!*/;',
  '# at 315',
  '#261203 10:00:02 server id 1  end_log_pos 372 CRC32 0x77a1c0de \tTable_map: `shop`.`orders` mapped to number 92',
  '# has_generated_invisible_primary_key=0',
  '# at 372',
  '#261203 10:00:02 server id 1  end_log_pos 409 CRC32 0x0c0ffee0 \tWrite_rows: table id 92 flags: STMT_END_F',
  '### INSERT INTO `shop`.`orders`',
  '### SET',
  '###   @1=1',
  '# at 409',
  '#261203 10:00:03 server id 1  end_log_pos 440 CRC32 0x5eed5eed \tXid = 21',
  'COMMIT/*!*/;',
  '# at 440',
  '#261203 10:00:04 server id 1  end_log_pos 519 CRC32 0x3c3c3c3c \tAnonymous_GTID\tlast_committed=1\tsequence_number=2\trbr_only=no\toriginal_committed_timestamp=1796292004000000\timmediate_commit_timestamp=1796292004000000\ttransaction_length=210',
  '# at 519',
  '#261203 10:00:04 server id 1  end_log_pos 650 CRC32 0x4d4d4d4d \tQuery\tthread_id=9\texec_time=0\terror_code=0\tXid = 25',
  'SET TIMESTAMP=1796292004/*!*/;',
  'CREATE TABLE `shop`.`invoices` (id INT PRIMARY KEY)',
  '/*!*/;',
  '# at 650',
  '#261203 10:00:07 server id 1  end_log_pos 697 CRC32 0x5a5a5a5a \tRotate to coffer-binlog.000004  pos: 4',
  "SET @@SESSION.GTID_NEXT= 'AUTOMATIC' /* added by mysqlbinlog */ /*!*/;",
  'DELIMITER ;',
  '# End of log file',
  '/*!50003 SET COMPLETION_TYPE=@OLD_COMPLETION_TYPE*/;',
  '/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=0*/;',
  '',
].join('\n');

/** as Percona XtraBackup 8.0 writes xtrabackup_checkpoints and xtrabackup_info (--extra-lsndir) for a server that logs binary logs */
const checkpoints = 'backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 18153472\nlast_lsn = 18153482\nflushed_lsn = 18153482\nredo_memory = 0\nredo_frames = 0\n';
const xtrabackupInfo = (binlogPos: string) =>
  [
    'uuid = 6d5b2c4e-b0f1-11f1-8a4e-0242ac110002',
    'name = ',
    'tool_name = xtrabackup',
    'tool_command = --defaults-file=../my.cnf --backup --stream=xbstream --target-dir=../backup-scratch --extra-lsndir=../backup-scratch --socket=mysqld.sock --user=os_backup --no-version-check',
    'tool_version = 8.0.35-31',
    'ibbackup_version = 8.0.35-31',
    'server_version = 8.0.36',
    'start_time = 2026-12-03 09:59:58',
    'end_time = 2026-12-03 10:00:00',
    'lock_time = 0',
    `binlog_pos = ${binlogPos}`,
    'innodb_from_lsn = 0',
    'innodb_to_lsn = 18153472',
    'partial = N',
    'incremental = N',
    'format = xbstream',
    'compressed = N',
    'encrypted = N',
    '',
  ].join('\n');

const refused = (code: string, message: RegExp) => (err: unknown) => isCofferError(err) && err.code === code && message.test(err.message);

describe('MySQL point in time: my.cnf', () => {
  const lines = (flavor: typeof mysqlFlavor, archived: boolean) =>
    binaryLogLines(flavor, { basename: 'coffer-binlog', archived, serverId: 123456, replication: undefined });

  it('turns MySQL\'s binary log on where it is archived, with no expiry of its own, and off otherwise', () => {
    assert.deepEqual(lines(mysqlFlavor, true), [
      'log-bin = coffer-binlog',
      'binlog_format = ROW',
      'server_id = 1',
      'sync_binlog = 1',
      'binlog_expire_logs_seconds = 0',
    ]);
    assert.deepEqual(lines(mysqlFlavor, false), ['skip-log-bin']);
    assert.ok(!mysqlFlavor.extraOptions.some((line) => /log-bin|binlog/.test(line)), 'no fixed line turns it on or off whatever the archive');
  });

  it('leaves MariaDB\'s lines as they were: its replication\'s, which hold the archive\'s', () => {
    assert.deepEqual(lines(mariadbFlavor, true), [
      'log-bin = coffer-binlog',
      'binlog_format = ROW',
      'server_id = 123456',
      'sync_binlog = 1',
      'gtid_strict_mode = ON',
      'log_slave_updates = ON',
    ]);
    assert.deepEqual(lines(mariadbFlavor, false).at(-1), `binlog_expire_logs_seconds = ${7 * 24 * 3600}`);
  });
});

describe('MySQL point in time: tools and capability', () => {
  it('finds mysqlbinlog and mysql in the server\'s installation only, never Debian\'s (MariaDB\'s) ones', async () => {
    const root = await mkdtemp(join(tmpdir(), 'coffer-mysqlbinlog-'));
    try {
      const bin = join(root, 'mysql', 'bin');
      const system = join(root, 'usr-bin');
      await mkdir(bin, { recursive: true });
      await mkdir(system);
      const install = async (dir: string, names: string[]) => {
        for (const name of names) {
          await writeFile(join(dir, name), '#!/bin/sh\n');
          await chmod(join(dir, name), 0o755);
        }
      };
      await install(bin, ['xtrabackup', 'xbstream']);
      await install(system, ['mysqlbinlog', 'mysql']);
      await assert.rejects(
        findBackupTools(mysqlFlavor, bin, [system]),
        // the installation's bin is the server's own directory here: named once
        refused('EngineError', new RegExp(`cannot archive or replay MySQL's binary log: mysqlbinlog is not installed beside the server \\(${bin}\\)\\.$`)),
      );
      await install(bin, ['mysqlbinlog', 'mysql']);
      assert.deepEqual(await findBackupTools(mysqlFlavor, bin, [system]), {
        tool: join(bin, 'xtrabackup'),
        extractor: join(bin, 'xbstream'),
        binlogReader: join(bin, 'mysqlbinlog'),
        client: join(bin, 'mysql'),
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('reports point-in-time recovery for both engines of the family', () => {
    for (const engine of [mysqlEngine, mariadbEngine]) assert.equal(engine.capabilities.pointInTimeRecovery, true, engine.manager);
  });
});

describe('MySQL point in time: what XtraBackup records', () => {
  it('takes the binary log position from xtrabackup_info, as XtraBackup 8 reads it from performance_schema.log_status', () => {
    // gtid_mode OFF (MySQL's default, which Coffer keeps): file and position only
    assert.deepEqual(backupFacts(checkpoints, xtrabackupInfo("filename 'coffer-binlog.000003', position '1568'")), {
      uuid: '6d5b2c4e-b0f1-11f1-8a4e-0242ac110002',
      'from-lsn': '0',
      'to-lsn': '18153472',
      version: '8.0.36',
      'binlog-file': 'coffer-binlog.000003',
      'binlog-position': '1568',
    });
    // gtid_mode ON: MySQL's GTID set (server UUIDs and ranges, several joined on one line), not MariaDB's domain-server-seq
    const gtids = '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-23,8a94f357-aab4-11df-86ab-c80aa9429563:1-5:11-18';
    const facts = backupFacts(checkpoints, xtrabackupInfo(`filename 'coffer-binlog.000003', position '1568', GTID of the last change '${gtids}'`));
    assert.equal(facts.gtid, gtids);
    assert.equal(facts['binlog-position'], '1568');
  });

  it('records no position where the server logged no binary log (skip-log-bin): such a backup cannot be rolled forward', () => {
    const facts = backupFacts(checkpoints, xtrabackupInfo(''));
    assert.equal(facts['binlog-file'], undefined);
    assert.throws(
      () => planReplay([], { ...facts, 'completed-at': '2026-12-03T10:00:00Z' }, new Date('2026-12-03T10:00:05Z')),
      refused('BadRequest', /does not record where its binary log begins/),
    );
  });
});

describe('MySQL point in time: mysqlbinlog\'s output', () => {
  it('reads MySQL\'s event headers: times in UTC whole seconds, its GTID events begin transactions, Xid and DDL end them', () => {
    const events = binlogEvents(mysqlbinlogOutput);
    assert.equal(events.length, 10);
    assert.deepEqual(events.filter(beginsTransaction).map((e) => e.at.toISOString()), ['2026-12-03T10:00:03.000Z', '2026-12-03T10:00:04.000Z']);
    assert.equal(events.filter(endsTransaction).at(-1)?.at.toISOString(), '2026-12-03T10:00:04.000Z');
    // gtid_mode ON prints GTID where OFF prints Anonymous_GTID
    const on = binlogEvents('#261203  9:00:03 server id 1  end_log_pos 236 CRC32 0x9a3c5d2e \tGTID\tlast_committed=0\tsequence_number=1\trbr_only=yes');
    assert.equal(on[0]?.at.toISOString(), '2026-12-03T09:00:03.000Z', "mysqlbinlog pads a one-digit hour with a space");
    assert.ok(beginsTransaction(on[0]!));
  });
});

// --- fakes of the server's SQL and of the engine user's programs ---

type Call = { file: string; args: readonly string[]; cwd?: string; env?: Record<string, string> };

/** A runner that records what it is asked to run; `outputs` answers a program by its basename. */
function fakeRunner(outputs: Record<string, string> = {}) {
  const calls: Call[] = [];
  const inputs = new Map<string, string>();
  const output = (file: string) => outputs[file.split('/').at(-1)!] ?? '';
  const runner: ProcessRunner = {
    run: async (file: string, args: readonly string[], options: RunOptions) => {
      calls.push({ file, args, cwd: options.cwd, env: options.env });
      return { stdout: output(file), stderr: '' };
    },
    stream: (file: string, args: readonly string[], options: StreamOptions): StreamingProcess => {
      calls.push({ file, args, cwd: options.cwd, env: options.env });
      const stdin = new PassThrough();
      const stdout = Readable.from([output(file)]);
      let received = '';
      stdin.on('data', (chunk: Buffer) => (received += chunk.toString()));
      const exited = Promise.all([
        new Promise<void>((resolve) => stdin.on('end', () => resolve())),
        new Promise<void>((resolve) => stdout.on('end', () => resolve())),
      ]).then(() => {
        inputs.set(`${file} ${args.join(' ')}`, received);
      });
      stdin.resume();
      return { pid: 4242, stdin, stdout, exited, kill: () => stdout.destroy(), stderrTail: () => '' };
    },
    spawnDetached: () => Promise.reject(new Error('not used')),
    handOver: async () => undefined,
    ready: async () => undefined,
  };
  return { runner, calls, inputs };
}

type Rows = Record<string, unknown>[];

/** An admin connection that records each statement and answers the queries in `answers` (by their start). */
function fakeAdmin(answers: (sql: string) => Rows | undefined) {
  const statements: string[] = [];
  const connection = {
    query: async (sql: string) => {
      statements.push(sql);
      return [answers(sql) ?? [], []];
    },
    escape: (value: string) => escape(value),
  } as unknown as Connection;
  const admin = { run: <T>(work: (connection: Connection) => Promise<T>) => work(connection) } as unknown as MysqlFamilyAdmin;
  return { admin, statements };
}

/** SHOW BINLOG EVENTS of a MySQL 8 file with one transaction in it (gtid_mode OFF) */
const mysqlEventRows: Rows = [
  { Log_name: 'coffer-binlog.000004', Pos: 4, Event_type: 'Format_desc', Server_id: 1, End_log_pos: 126, Info: 'Server ver: 8.0.36, Binlog ver: 4' },
  { Log_name: 'coffer-binlog.000004', Pos: 126, Event_type: 'Previous_gtids', Server_id: 1, End_log_pos: 157, Info: '' },
  { Log_name: 'coffer-binlog.000004', Pos: 157, Event_type: 'Anonymous_Gtid', Server_id: 1, End_log_pos: 236, Info: "SET @@SESSION.GTID_NEXT= 'ANONYMOUS'" },
  { Log_name: 'coffer-binlog.000004', Pos: 236, Event_type: 'Query', Server_id: 1, End_log_pos: 315, Info: 'BEGIN' },
  { Log_name: 'coffer-binlog.000004', Pos: 315, Event_type: 'Table_map', Server_id: 1, End_log_pos: 372, Info: 'table_id: 92 (shop.orders)' },
  { Log_name: 'coffer-binlog.000004', Pos: 372, Event_type: 'Write_rows', Server_id: 1, End_log_pos: 409, Info: 'table_id: 92 flags: STMT_END_F' },
  { Log_name: 'coffer-binlog.000004', Pos: 409, Event_type: 'Xid', Server_id: 1, End_log_pos: 440, Info: 'COMMIT /* xid=21 */' },
];
/** SHOW BINARY LOGS on MySQL 8 (8.0 and 8.4 both have Encrypted) */
const binaryLogs: Rows = [
  { Log_name: 'coffer-binlog.000003', File_size: 697, Encrypted: 'No' },
  { Log_name: 'coffer-binlog.000004', File_size: 440, Encrypted: 'No' },
];

describe('MySQL point in time: archiving the binary log', () => {
  const dataDir = '/var/lib/coffer/instances/i/data';
  const reader = '/usr/local/mysql/bin/mysqlbinlog';
  const archiveOf = (runner: ProcessRunner, admin: MysqlFamilyAdmin) =>
    new BinlogArchive({ dataDir, runner, admin, binlogTool: async () => reader, running: async () => true });

  it('ships closed files, and closes the active one once it held a transaction (MySQL\'s Anonymous_Gtid) for a minute', async (t: TestContext) => {
    let now = Date.parse('2026-12-03T10:00:00Z');
    t.mock.method(Date, 'now', () => now);
    const { runner } = fakeRunner();
    let events: Rows = mysqlEventRows.slice(0, 2);
    const { admin, statements } = fakeAdmin((sql) => (sql === 'SHOW BINARY LOGS' ? binaryLogs : sql.startsWith('SHOW BINLOG EVENTS') ? events : undefined));
    const archive = archiveOf(runner, admin);
    assert.deepEqual(await archive.pending(), ['coffer-binlog.000003']);
    now += rotateAfterMs;
    // no transaction yet: nothing to close
    assert.deepEqual(await archive.pending(), ['coffer-binlog.000003']);
    assert.ok(!statements.includes('FLUSH BINARY LOGS'));
    events = mysqlEventRows;
    assert.deepEqual(await archive.pending(), ['coffer-binlog.000003', 'coffer-binlog.000004']);
    assert.deepEqual(statements.filter((sql) => !sql.startsWith('SHOW BINARY LOGS')), [
      "SHOW BINLOG EVENTS IN 'coffer-binlog.000004' LIMIT 20",
      "SHOW BINLOG EVENTS IN 'coffer-binlog.000004' LIMIT 20",
      'FLUSH BINARY LOGS',
    ]);
    // nothing MySQL 8.4 removed (SHOW MASTER STATUS became SHOW BINARY LOG STATUS there): SHOW BINARY LOGS is in both
    assert.ok(!statements.some((sql) => /MASTER/i.test(sql)));
  });

  it('stamps a shipped file with its last commit, read by mysqlbinlog as the engine\'s user in UTC', async () => {
    const { runner, calls } = fakeRunner({ mysqlbinlog: mysqlbinlogOutput });
    const archive = archiveOf(runner, fakeAdmin(() => undefined).admin);
    assert.deepEqual(await archive.inspect('coffer-binlog.000003'), { 'last-commit': '2026-12-03T10:00:04.000Z' });
    assert.deepEqual(calls, [{ file: reader, args: ['--base64-output=decode-rows', '--', 'coffer-binlog.000003'], cwd: dataDir, env: { TZ: 'UTC' } }]);
    await assert.rejects(archive.inspect('../../etc/shadow'), refused('EngineError', /is not a binary log file of Coffer's/));
  });

  it('claims what is archived up to the second before the active file\'s first transaction, read up to its GTID event', async () => {
    const { runner, calls } = fakeRunner({ mysqlbinlog: mysqlbinlogOutput.replace('Rotate to coffer-binlog.000004', 'Rotate to coffer-binlog.000005') });
    const { admin } = fakeAdmin((sql) => (sql === 'SHOW BINARY LOGS' ? binaryLogs : sql.startsWith('SHOW BINLOG EVENTS') ? mysqlEventRows : undefined));
    const archive = archiveOf(runner, admin);
    // the first transaction's Anonymous_GTID event is stamped 10:00:03
    assert.deepEqual(await archive.archivedThrough('coffer-binlog.000003'), new Date('2026-12-03T10:00:02.999Z'));
    assert.deepEqual(calls.at(-1), { file: reader, args: ['--base64-output=decode-rows', '--stop-position=236', '--', 'coffer-binlog.000004'], cwd: dataDir, env: { TZ: 'UTC' } });
    // a file between the last shipped and the active one is not shipped yet
    assert.equal(await archive.archivedThrough('coffer-binlog.000002'), undefined);
  });

  it('takes MySQL\'s numbered files for the log and never its index (log-bin = coffer-binlog)', () => {
    assert.ok(isBinlogName('coffer-binlog.000003'));
    assert.ok(isBinlogName('coffer-binlog.1000000'));
    for (const name of ['coffer-binlog.index', 'binlog.000003', 'coffer-binlog.000003.tmp']) assert.ok(!isBinlogName(name), name);
  });

  it('purges a shipped file with PURGE BINARY LOGS TO the next one', async () => {
    const { admin, statements } = fakeAdmin(() => undefined);
    await archiveOf(fakeRunner().runner, admin).remove('coffer-binlog.000003');
    assert.deepEqual(statements, ["PURGE BINARY LOGS TO 'coffer-binlog.000004'"]);
  });
});

describe('MySQL point in time: a backup where the host archives the log', () => {
  it('grants XtraBackup what it reads the position with, and records where in the binary log a point-in-time restore begins', async () => {
    const root = await mkdtemp(join(tmpdir(), 'coffer-mysql-backup-'));
    try {
      const dataDir = join(root, 'data');
      const scratchDir = join(root, 'backup-scratch');
      const fake = fakeRunner();
      // XtraBackup leaves xtrabackup_checkpoints and xtrabackup_info in --extra-lsndir as it exits
      const runner: ProcessRunner = {
        ...fake.runner,
        stream: (file, args, options) => {
          const child = fake.runner.stream(file, args, options);
          const exited = child.exited.then(async () => {
            await writeFile(join(scratchDir, 'xtrabackup_checkpoints'), checkpoints);
            await writeFile(join(scratchDir, 'xtrabackup_info'), xtrabackupInfo("filename 'coffer-binlog.000003', position '1568'"));
          });
          return { ...child, exited };
        },
      };
      const { admin, statements } = fakeAdmin(() => undefined);
      const bin = '/usr/local/mysql/bin';
      const host: BackupHost = {
        flavor: mysqlFlavor,
        runner,
        logger: silentLogger(),
        admin,
        dataDir,
        configFile: join(root, 'my.cnf'),
        socket: join(dataDir, 'mysqld.sock'),
        scratchDir,
        versionName: async () => '8.0',
        tools: async () => ({ tool: `${bin}/xtrabackup`, extractor: `${bin}/xbstream`, binlogReader: `${bin}/mysqlbinlog`, client: `${bin}/mysql` }),
        running: async () => true,
        archivesBinlog: true,
      };
      const backup = mysqlFamilyBackup.create({ backupHost: () => host, binlogArchiveHost: () => undefined });
      const run = await backup.start({ signal: new AbortController().signal });
      run.stream.resume();
      const facts = await run.finished;
      assert.deepEqual({ ...facts, 'completed-at': undefined }, {
        uuid: '6d5b2c4e-b0f1-11f1-8a4e-0242ac110002',
        'from-lsn': '0',
        'to-lsn': '18153472',
        version: '8.0.36',
        'binlog-file': 'coffer-binlog.000003',
        'binlog-position': '1568',
        'wal-archiving': 'on',
        'wal-start': 'coffer-binlog.000003',
        'completed-at': undefined,
      });
      const password = fake.calls[0]?.env?.MYSQL_PWD ?? '';
      assert.deepEqual(fake.calls, [
        {
          file: `${bin}/xtrabackup`,
          args: ['--defaults-file=../my.cnf', '--backup', '--stream=xbstream', '--target-dir=../backup-scratch', '--extra-lsndir=../backup-scratch', '--socket=mysqld.sock', '--user=os_backup', '--no-version-check'],
          cwd: dataDir,
          env: { MYSQL_PWD: password },
        },
      ]);
      assert.match(password, /^[A-Za-z0-9_-]{32}$/);
      // the account is this server's alone: kept out of the binary log (a replica's own GTID would stop its replication)
      assert.equal(statements[0], 'SET SESSION sql_log_bin = 0');
      assert.equal(statements[1], "DROP USER IF EXISTS 'os_backup'@'localhost'");
      assert.match(statements[2]!, /^CREATE USER 'os_backup'@'localhost' IDENTIFIED WITH caching_sha2_password AS '\$A\$005\$.{63}'$/);
      // BACKUP_ADMIN and performance_schema.log_status: where XtraBackup 8 reads the binary log position
      assert.deepEqual(statements.slice(3, 5), [
        "GRANT RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT, BACKUP_ADMIN ON *.* TO 'os_backup'@'localhost'",
        "GRANT SELECT ON performance_schema.log_status TO 'os_backup'@'localhost'",
      ]);
      assert.deepEqual(statements.slice(5, 7), ['SET SESSION sql_log_bin = 0', "DROP USER IF EXISTS 'os_backup'@'localhost'"], 'the account goes when the backup ends');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('MySQL point in time: the replay', () => {
  const base = {
    uuid: '6d5b2c4e-b0f1-11f1-8a4e-0242ac110002',
    version: '8.0.36',
    'wal-archiving': 'on',
    'wal-start': 'coffer-binlog.000003',
    'binlog-file': 'coffer-binlog.000003',
    'binlog-position': '1568',
    'completed-at': '2026-12-03T10:00:00.250Z',
  };
  const file = (n: number, lastCommit: string): ArchivedLogFile => ({ name: `coffer-binlog.${String(n).padStart(6, '0')}`, facts: { 'last-commit': lastCommit } });
  const files = [file(2, '2026-12-03T09:59:00.000Z'), file(3, '2026-12-03T10:00:04.000Z'), file(4, '2026-12-03T10:00:09.000Z'), file(5, '2026-12-03T10:01:00.000Z')];

  it('plans from the backup\'s position to the end of the target\'s second, a target with an offset read as the same moment in UTC', () => {
    const plan = planReplay(files, base, new Date('2026-12-03T12:00:04.700+02:00'));
    assert.deepEqual(plan, { files: ['coffer-binlog.000003', 'coffer-binlog.000004'], startPosition: 1568, stopAt: new Date('2026-12-03T10:00:05.000Z') });
  });

  it('fetches the files as the engine\'s user, and pipes mysqlbinlog into mysql as an account of the replay\'s own', async () => {
    const fetched = new Map([
      ['coffer-binlog.000003', 'binlog three'],
      ['coffer-binlog.000004', 'binlog four'],
    ]);
    const source: PointInTimeSource = {
      list: async () => files,
      open: async (name) => Readable.from([Buffer.from(fetched.get(name)!)]),
    };
    const replayed = '/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/;\nBINLOG \'...\'/*!*/;\n';
    const { runner, calls, inputs } = fakeRunner({ mysqlbinlog: replayed });
    const { admin, statements } = fakeAdmin(() => undefined);
    const tools = { binlogTool: '/usr/local/mysql/bin/mysqlbinlog', client: '/usr/local/mysql/bin/mysql' };
    const plan = planReplay(files, base, new Date('2026-12-03T10:00:04.700Z'));
    await replayBinlog(
      { flavor: mysqlFlavor, runner, admin, tmpDir: '/var/lib/coffer/instances/i/tmp', dataDir: '/var/lib/coffer/instances/i/data', socket: 'mysqld.sock', ...tools },
      source,
      plan,
    );
    const tmpDir = '/var/lib/coffer/instances/i/tmp';
    const password = calls.find((call) => call.file === tools.client)?.env?.MYSQL_PWD ?? '';
    assert.match(password, /^[A-Za-z0-9_-]{32}$/);
    assert.deepEqual(calls, [
      { file: '/bin/mkdir', args: ['-m', '0700', '--', 'coffer-restore-binlog'], cwd: tmpDir, env: undefined },
      { file: '/bin/dd', args: ['of=coffer-restore-binlog/coffer-binlog.000003', 'bs=1M', 'status=none'], cwd: tmpDir, env: undefined },
      { file: '/bin/dd', args: ['of=coffer-restore-binlog/coffer-binlog.000004', 'bs=1M', 'status=none'], cwd: tmpDir, env: undefined },
      {
        file: tools.binlogTool,
        // the stop is read in TZ's zone: UTC, as the target
        args: ['--start-position=1568', '--stop-datetime=2026-12-03 10:00:05', '--', 'coffer-restore-binlog/coffer-binlog.000003', 'coffer-restore-binlog/coffer-binlog.000004'],
        cwd: tmpDir,
        env: { TZ: 'UTC' },
      },
      // the password in MYSQL_PWD only, the socket relative to the data directory: nothing of either in ps
      { file: tools.client, args: ['--no-defaults', '--binary-mode', '--socket=mysqld.sock', '--user=os_replay'], cwd: '/var/lib/coffer/instances/i/data', env: { MYSQL_PWD: password } },
      { file: '/bin/rm', args: ['-rf', '--', 'coffer-restore-binlog'], cwd: tmpDir, env: undefined },
    ]);
    assert.equal(inputs.get('/bin/dd of=coffer-restore-binlog/coffer-binlog.000003 bs=1M status=none'), 'binlog three');
    assert.equal(inputs.get(`${tools.client} --no-defaults --binary-mode --socket=mysqld.sock --user=os_replay`), replayed);
    // MySQL's syntax for the account, kept out of the restored server's binary log, and dropped afterwards
    assert.equal(statements.length, 6);
    assert.deepEqual(statements.slice(0, 2), ['SET SESSION sql_log_bin = 0', "DROP USER IF EXISTS 'os_replay'@'localhost'"]);
    const create = /^CREATE USER 'os_replay'@'localhost' IDENTIFIED WITH caching_sha2_password AS '(.+)'$/s.exec(statements[2]!);
    assert.ok(create, statements[2]);
    const hash = create[1]!.replace(/\\(.)/gs, '$1');
    assert.equal(cachingSha2PasswordHash(password, hash.slice(7, 27)), hash, 'the hash is of the password the client is given');
    assert.deepEqual(statements.slice(3), ["GRANT ALL PRIVILEGES ON *.* TO 'os_replay'@'localhost'", 'SET SESSION sql_log_bin = 0', "DROP USER IF EXISTS 'os_replay'@'localhost'"]);
  });
});
