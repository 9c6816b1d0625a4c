import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCofferError } from '../../src/common/index.js';
import {
  checkName,
  disableRootStatement,
  dropDatabaseStatement,
  dropOwnedStatement,
  dropRoleStatement,
  enableRootStatement,
  passwordSql,
  reassignOwnedStatement,
  renameRoleStatement,
  reservedDatabases,
  reservedRoles,
  revokeDatabaseStatement,
  revokePublicConnectStatement,
  revokePublicSchemaStatement,
} from '../../src/guest/engines/postgresql/admin.js';
import { pgErrorCode } from '../../src/guest/engines/postgresql/sql-states.js';

// The statements behind databases, users and root: every name a quoted identifier (a double
// quote doubled), every password a quoted literal, whatever the API user sent.

const badRequest = (err: unknown) => isCofferError(err) && err.code === 'BadRequest';

describe('postgresql admin statements', () => {
  it('quotes hostile database names as one identifier', () => {
    assert.equal(dropDatabaseStatement('x"; DROP DATABASE "y'), 'DROP DATABASE "x""; DROP DATABASE ""y" WITH (FORCE)');
    assert.equal(dropDatabaseStatement("it's `so` ☃"), 'DROP DATABASE "it\'s `so` ☃" WITH (FORCE)');
    assert.equal(dropDatabaseStatement('old"', false), 'DROP DATABASE "old"""');
    assert.equal(revokePublicConnectStatement('a"b'), 'REVOKE CONNECT, TEMPORARY ON DATABASE "a""b" FROM PUBLIC');
    assert.equal(revokeDatabaseStatement('u"', 'd;--'), 'REVOKE ALL PRIVILEGES ON DATABASE "d;--" FROM "u"""');
  });

  it('quotes hostile role names as one identifier', () => {
    assert.equal(renameRoleStatement('a"b', 'c"; DROP ROLE x; --'), 'ALTER ROLE "a""b" RENAME TO "c""; DROP ROLE x; --"');
    assert.equal(revokePublicSchemaStatement('"'), 'REVOKE ALL ON SCHEMA public FROM """"');
    assert.equal(reassignOwnedStatement('u "1"'), 'REASSIGN OWNED BY "u ""1""" TO "os_admin"');
    assert.equal(dropOwnedStatement('ünï`'), 'DROP OWNED BY "ünï`"');
    assert.equal(dropRoleStatement("o'k"), 'DROP ROLE "o\'k"');
  });

  it('creates or alters root as a superuser with a quoted password', () => {
    assert.equal(enableRootStatement(false, "p'w"), `CREATE ROLE "root" WITH SUPERUSER LOGIN PASSWORD 'p''w'`);
    assert.equal(enableRootStatement(true, 'p\\w'), `ALTER ROLE "root" WITH SUPERUSER LOGIN PASSWORD  E'p\\\\w'`);
    assert.equal(disableRootStatement("x'; ALTER ROLE y"), `ALTER ROLE "root" WITH NOLOGIN PASSWORD 'x''; ALTER ROLE y'`);
  });

  it('passes printable ASCII passwords as SCRAM verifiers and refuses a NUL', async () => {
    assert.match(await passwordSql("p'w; --"), /^SCRAM-SHA-256\$4096:/);
    assert.equal(await passwordSql('pässwörd ☃'), 'pässwörd ☃', 'SASLprep is the server\'s: sent for it to hash');
    await assert.rejects(passwordSql('a\0b'), badRequest);
  });
});

describe('postgresql names', () => {
  it('accepts hostile names that fit, refuses what PostgreSQL would truncate or reserve', () => {
    for (const name of ["it's", 'say "hi"', 'x; DROP DATABASE victim; --', 'ünïcødé ☃ 名前', 'a'.repeat(63)]) {
      checkName('database', name, reservedDatabases);
      checkName('user', name, reservedRoles);
    }
    // 63 bytes is PostgreSQL's limit, in bytes: 32 two-byte characters are over
    assert.throws(() => checkName('database', 'ü'.repeat(32), reservedDatabases), badRequest);
    assert.throws(() => checkName('user', '', reservedRoles), badRequest);
    assert.throws(() => checkName('user', 'a\0b', reservedRoles), badRequest);
    for (const name of ['os_admin', 'postgres', 'root', 'pg_monitor']) assert.throws(() => checkName('user', name, reservedRoles), badRequest);
    for (const name of ['template0', 'template1', 'postgres', 'os_admin']) {
      assert.throws(() => checkName('database', name, reservedDatabases), badRequest);
    }
  });

  it('reads the SQLSTATE of server errors only', () => {
    assert.equal(pgErrorCode(Object.assign(new Error('x'), { code: '3D000' })), '3D000');
    assert.equal(pgErrorCode(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), undefined);
    assert.equal(pgErrorCode(undefined), undefined);
  });
});
