import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  alterRolePasswordStatement,
  checkPrepareNames,
  createDatabaseStatement,
  createRoleStatement,
  grantDatabaseStatement,
  grantPublicSchemaStatement,
} from '../../src/guest/engines/postgresql/admin.js';
import { parsePostgresVersion } from '../../src/guest/engines/postgresql/binaries.js';
import {
  changedSettings,
  configString,
  configValue,
  effectivePostgresqlSettings,
  renderPgHba,
  renderPostgresqlConf,
  tuneMemory,
  type ServerConfigInput,
} from '../../src/guest/engines/postgresql/config.js';
import { scramVerifier } from '../../src/guest/engines/postgresql/scram-verifier.js';

const isCode = (code: string) => (err: Error & { code?: string }) => err.code === code;

describe('postgresql memory settings', () => {
  it('scales with the flavor RAM', () => {
    assert.deepEqual(tuneMemory(512), {
      sharedBuffersMb: 128,
      effectiveCacheSizeMb: 384,
      maxConnections: 50,
      workMemKb: 2621,
      maintenanceWorkMemMb: 32,
    });
    const big = tuneMemory(16 * 1024);
    assert.equal(big.sharedBuffersMb, 4096);
    assert.equal(big.effectiveCacheSizeMb, 12288);
    assert.equal(big.maxConnections, 500);
    assert.equal(big.maintenanceWorkMemMb, 1024);
    assert.ok(big.workMemKb > tuneMemory(512).workMemKb);
  });

  it('stays within sane bounds on tiny flavors', () => {
    const tiny = tuneMemory(64);
    assert.equal(tiny.sharedBuffersMb, 16);
    assert.equal(tiny.maxConnections, 20);
    assert.equal(tiny.workMemKb, 1024);
    assert.equal(tiny.maintenanceWorkMemMb, 16);
  });
});

describe('postgresql.conf', () => {
  const conf = renderPostgresqlConf({
    memoryMb: 1024,
    address: '127.77.0.5',
    port: 5432,
    socketDir: "/var/lib/co'ffer/i/data",
    hbaFile: "/var/lib/co'ffer/i/pg_hba.conf",
  });

  it('listens on the instance address only, with its socket and pg_hba.conf where it is told', () => {
    assert.match(conf, /^listen_addresses = '127\.77\.0\.5'$/m);
    assert.match(conf, /^port = 5432$/m);
    assert.match(conf, /^unix_socket_directories = '\/var\/lib\/co''ffer\/i\/data'$/m);
    assert.match(conf, /^hba_file = '\/var\/lib\/co''ffer\/i\/pg_hba\.conf'$/m);
    assert.match(conf, /^password_encryption = 'scram-sha-256'$/m);
  });

  it('carries the memory settings', () => {
    assert.match(conf, /^shared_buffers = '256MB'$/m);
    assert.match(conf, /^effective_cache_size = '768MB'$/m);
    assert.match(conf, /^max_connections = 100$/m);
    assert.match(conf, /^work_mem = '2621kB'$/m);
  });

  it('quotes string values the way the config parser reads them', () => {
    assert.equal(configString("it's"), "'it''s'");
    assert.equal(configString('a\\b'), "'a\\\\b'");
    assert.throws(() => configString('a\nlisten_addresses = *'), isCode('BadRequest'));
  });
});

/**
 * The value of `name` as PostgreSQL's configuration lexer reads the file: the last line setting
 * it, a quoted string decoded ('' and backslash escapes), anything else up to a comment.
 */
function readSetting(conf: string, name: string): string | undefined {
  let value: string | undefined;
  for (const line of conf.split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const match = /^\s*(\w+)\s*=?\s*('(?:[^'\\\n]|\\.|'')*'|[^\s#']+)\s*(#.*)?$/.exec(line);
    assert.ok(match, `a line PostgreSQL would not parse as one setting: ${line}`);
    if (match[1]!.toLowerCase() !== name.toLowerCase()) continue;
    const raw = match[2]!;
    value = raw.startsWith("'") ? raw.slice(1, -1).replace(/''/g, "'").replace(/\\(.)/g, '$1') : raw;
  }
  return value;
}

describe('postgresql.conf with a configuration group', () => {
  const base: ServerConfigInput = { memoryMb: 1024, address: '127.77.0.5', port: 5432, socketDir: '/i/data', hbaFile: '/i/pg_hba.conf' };
  const render = (overrides: ServerConfigInput['overrides']) => renderPostgresqlConf({ ...base, overrides });

  it("replaces Coffer's own value of the same name, once, and leaves the rest following the memory", () => {
    const conf = render({ shared_buffers: '1GB', MAX_CONNECTIONS: 42, work_mem: '8MB' });
    assert.equal(readSetting(conf, 'shared_buffers'), '1GB');
    assert.equal(readSetting(conf, 'max_connections'), '42');
    assert.equal(conf.match(/^shared_buffers = /gm)?.length, 1);
    assert.equal(conf.match(/^max_connections = /gim)?.length, 1, 'under its published name only');
    assert.equal(readSetting(conf, 'effective_cache_size'), '768MB', 'still from the flavor');
    assert.equal(readSetting(conf, 'maintenance_work_mem'), '64MB');
    assert.equal(readSetting(render({}), 'shared_buffers'), '256MB');
  });

  it('writes booleans as on/off, numbers as they are, strings quoted', () => {
    const conf = render({ autovacuum: false, log_connections: true, random_page_cost: 1.1, statement_timeout: 30_000, log_statement: 'ddl' });
    assert.match(conf, /^autovacuum = off$/m);
    assert.match(conf, /^log_connections = on$/m);
    assert.match(conf, /^random_page_cost = 1\.1$/m);
    assert.match(conf, /^statement_timeout = 30000$/m);
    assert.match(conf, /^log_statement = 'ddl'$/m);
    assert.equal(configValue(0.000001), '0.000001');
    assert.throws(() => configValue(Number.NaN), isCode('BadRequest'));
  });

  it('keeps a hostile string one quoted value of its own parameter', () => {
    const lines = render({ timezone: 'UTC' }).split('\n').length;
    for (const hostile of ["UTC' listen_addresses = '*", "UTC\\' ssl = 'off", 'UTC\\', "x # ' archive_command = 'rm -rf /", "''''"]) {
      const conf = render({ timezone: hostile });
      assert.equal(readSetting(conf, 'timezone'), hostile, hostile);
      assert.equal(readSetting(conf, 'listen_addresses'), '127.77.0.5', hostile);
      assert.equal(readSetting(conf, 'ssl'), 'off', hostile);
      assert.equal(readSetting(conf, 'archive_command'), undefined, hostile);
      assert.equal(conf.split('\n').length, lines, hostile);
    }
  });

  it('refuses what no published parameter allows, whoever asks', () => {
    assert.throws(() => render({ archive_command: 'rm -rf /' }), isCode('UnprocessableEntity'));
    assert.throws(() => render({ listen_addresses: '*' }), isCode('UnprocessableEntity'));
    assert.throws(() => render({ timezone: 'UTC\nlisten_addresses = *' }), isCode('UnprocessableEntity'));
    assert.throws(() => render({ max_connections: '42' }), isCode('UnprocessableEntity'));
    assert.throws(() => render({ max_connections: 0 }), isCode('UnprocessableEntity'));
  });

  it('names the settings two renderings differ in, as a failed start reports them', () => {
    const before = render({ work_mem: '8MB', jit: true });
    assert.deepEqual(changedSettings(before, render({ work_mem: '8MB', jit: true })), []);
    assert.deepEqual(changedSettings(before, render({ work_mem: '16MB', shared_buffers: '4TB' })).sort(), ['jit', 'shared_buffers', 'work_mem']);
    assert.deepEqual(changedSettings(before, renderPostgresqlConf({ ...base, memoryMb: 2048, overrides: { work_mem: '8MB', jit: true } })).sort(), [
      'effective_cache_size',
      'maintenance_work_mem',
      'max_connections',
      'shared_buffers',
    ]);
  });

  it('reports the effective settings typed, overrides included, without the host paths', () => {
    const effective = effectivePostgresqlSettings({ ...base, overrides: { work_mem: '8MB', jit: false } });
    assert.equal(effective.work_mem, '8MB');
    assert.equal(effective.jit, false);
    assert.equal(effective.max_connections, 100);
    assert.equal(effective.port, 5432);
    assert.equal(effective.shared_buffers, '256MB');
    assert.equal(effective.ssl, false);
    for (const path of ['hba_file', 'unix_socket_directories']) assert.equal(effective[path], undefined, path);
  });
});

describe('postgresql.conf of a synchronous source', () => {
  const base = { memoryMb: 512, address: '127.0.0.5', port: 5432, socketDir: '/srv/i/data', hbaFile: '/srv/i/pg_hba.conf' };

  it('waits for any one of the replicas, named by their slots as they connect', () => {
    const conf = renderPostgresqlConf({ ...base, synchronousStandbys: ['coffer_r1', 'coffer_r2'] });
    assert.match(conf, /^synchronous_standby_names = 'ANY 1 \("coffer_r1", "coffer_r2"\)'$/m);
    assert.match(conf, /^synchronous_commit = on$/m);
    assert.doesNotMatch(renderPostgresqlConf(base), /synchronous_standby_names/);
  });

  it('still waits with no replica left, for a name no replica has', () => {
    assert.match(renderPostgresqlConf({ ...base, synchronousStandbys: [] }), /^synchronous_standby_names = 'ANY 1 \("coffer-none"\)'$/m);
  });

  it('refuses a name that is not a slot', () => {
    assert.throws(() => renderPostgresqlConf({ ...base, synchronousStandbys: ['x", "y'] }), isCode('Internal'));
  });
});

describe('pg_hba.conf', () => {
  it('allows password logins only: the admin over the socket (replication too), users over TCP from the given ranges', () => {
    const hba = renderPgHba('os_admin', ['127.0.0.0/8', 'fd00::/8']);
    const rules = hba.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    assert.deepEqual(rules, [
      'local all os_admin scram-sha-256',
      'local replication os_admin scram-sha-256',
      'host all os_admin 0.0.0.0/0 reject',
      'host all os_admin ::/0 reject',
      'host all all 127.0.0.0/8 scram-sha-256',
      'host all all fd00::/8 scram-sha-256',
    ]);
    assert.doesNotMatch(hba, /trust|peer|password$/m);
  });

  it('refuses anything but a CIDR', () => {
    for (const bad of ['0.0.0.0/0 trust', '10.0.0.0', '10.0.0.0/33', 'all', '::1/129']) {
      assert.throws(() => renderPgHba('os_admin', [bad]), isCode('BadRequest'), bad);
    }
  });
});

describe('postgresql statements', () => {
  it('quotes identifiers and literals from user input', () => {
    assert.equal(createDatabaseStatement({ name: 'we"ird; DROP DATABASE x' }), 'CREATE DATABASE "we""ird; DROP DATABASE x"');
    assert.equal(
      createDatabaseStatement({ name: 'd', characterSet: "UTF8'", collate: 'C' }),
      `CREATE DATABASE "d" ENCODING 'UTF8''' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`,
    );
    assert.equal(createRoleStatement('Bob "x"', "p'w\\"), `CREATE ROLE "Bob ""x""" WITH LOGIN PASSWORD  E'p''w\\\\'`);
    assert.equal(alterRolePasswordStatement('u', 'pw'), `ALTER ROLE "u" WITH LOGIN PASSWORD 'pw'`);
    assert.equal(grantDatabaseStatement('u', 'd"b'), 'GRANT ALL PRIVILEGES ON DATABASE "d""b" TO "u"');
    assert.equal(grantPublicSchemaStatement('u'), 'GRANT ALL ON SCHEMA public TO "u"');
  });

  it('refuses reserved and over-long names', () => {
    const user = (name: string) => ({ users: [{ name, password: 'x', databases: [] }], databases: [] });
    const database = (name: string) => ({ users: [], databases: [{ name }] });
    for (const name of ['os_admin', 'postgres', 'pg_monitor', '', 'x'.repeat(64), 'é'.repeat(32)]) {
      assert.throws(() => checkPrepareNames(user(name)), isCode('BadRequest'), name);
    }
    for (const name of ['postgres', 'template0', 'template1', 'os_admin']) {
      assert.throws(() => checkPrepareNames(database(name)), isCode('BadRequest'), name);
    }
    checkPrepareNames(user('x'.repeat(63)));
  });
});

describe('SCRAM verifier', () => {
  it('is what PostgreSQL stores for the password', async () => {
    const verifier = await scramVerifier('s3cret pass');
    const match = /^SCRAM-SHA-256\$4096:([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(verifier ?? '');
    assert.ok(match, verifier);
    const salted = pbkdf2Sync('s3cret pass', Buffer.from(match[1]!, 'base64'), 4096, 32, 'sha256');
    const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest();
    assert.equal(match[2], storedKey.toString('base64'));
    assert.notEqual(await scramVerifier('s3cret pass'), verifier, 'salted afresh each time');
  });

  it('leaves passwords that need SASLprep to the server', async () => {
    assert.equal(await scramVerifier('pässword'), undefined);
  });
});

describe('postgres --version', () => {
  it('gives the major version as the name and the full version', () => {
    assert.deepEqual(parsePostgresVersion('postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n'), {
      versionName: '15',
      version: '15.20',
    });
    assert.deepEqual(parsePostgresVersion('postgres (PostgreSQL) 9.6.24'), { versionName: '9.6', version: '9.6.24' });
    assert.equal(parsePostgresVersion('something else'), undefined);
  });
});
