import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateDatabases, validateUsers } from '../../src/api/trove/database-user-rules.js';
import { CofferError } from '../../src/common/errors.js';

function rejects(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof CofferError && err.code === code && message.test(err.message));
}

test("database names follow Trove's MySQL rules for every engine", () => {
  for (const name of ['ab', 'my_db', 'a-b', 'with space', 'x?y', 'A1']) {
    assert.deepEqual(validateDatabases([{ name }], 'postgresql', 'postgresql'), [{ name }]);
  }
  for (const name of ['a', '_', 'bad/name', "quo'te", 'semi;colon', 'back\\slash', 'tab\tname']) {
    rejects(() => validateDatabases([{ name }], 'mysql', 'mysql'), 'BadRequest', /not a valid schema name/);
  }
  rejects(() => validateDatabases([{ name: '' }], 'mysql', 'mysql'), 'BadRequest', /^Schema name empty\.$/);
});

test('reserved names depend on the engine', () => {
  rejects(() => validateDatabases([{ name: 'mysql' }], 'mariadb', 'mariadb'), 'BadRequest', /reserved list: \['mysql', /);
  assert.equal(validateDatabases([{ name: 'mysql' }], 'postgresql', 'postgresql').length, 1);
  rejects(() => validateUsers([{ name: 'postgres', password: 'p' }], [], 'postgresql', 'postgresql'), 'BadRequest', /reserved/);
  assert.equal(validateUsers([{ name: 'postgres', password: 'p' }], [], 'mysql', 'mysql').length, 1);
});

test('MySQL character sets and collations are checked against the MySQL table', () => {
  assert.deepEqual(validateDatabases([{ name: 'db1', character_set: 'utf8mb4', collate: 'utf8mb4_unicode_ci' }], 'mysql', 'mysql'), [
    { name: 'db1', characterSet: 'utf8mb4', collate: 'utf8mb4_unicode_ci' },
  ]);
  assert.equal(validateDatabases([{ name: 'db1', collate: 'latin1_bin' }], 'mysql', 'mysql').length, 1);
  rejects(() => validateDatabases([{ name: 'db1', character_set: 'latin1', collate: 'utf8_bin' }], 'mysql', 'mysql'), 'BadRequest', /^utf8_bin not a valid collation for charset latin1\.$/);
  rejects(() => validateDatabases([{ name: 'db1', collate: 'nope_ci' }], 'mysql', 'mysql'), 'BadRequest', /'nope_ci' not a valid collation/);
  // Other engines get their values passed through, only checked to be plain words.
  assert.deepEqual(validateDatabases([{ name: 'db1', character_set: 'UTF8', collate: 'en_US.UTF-8' }], 'postgresql', 'postgresql'), [
    { name: 'db1', characterSet: 'UTF8', collate: 'en_US.UTF-8' },
  ]);
  rejects(() => validateDatabases([{ name: 'db1', collate: "x'; drop" }], 'postgresql', 'postgresql'), 'BadRequest', /collation/);
});

test('user hosts: %, addresses and networks, with % wildcards', () => {
  for (const host of ['%', '10.0.0.1', '192.168.%.%', '10.0.0.0/8', '::1', null, undefined]) {
    const [user] = validateUsers([{ name: 'app', password: 'p', host }], [], 'mysql', 'mysql');
    assert.equal(user?.host, host ?? '%');
  }
  for (const host of ['example.com', '10.0.0.0/33', '1.2.3', '10.0.0.1/8/8']) {
    rejects(() => validateUsers([{ name: 'app', password: 'p', host }], [], 'mysql', 'mysql'), 'BadRequest', /not a valid hostname/);
  }
});

test('user names and passwords: length, forbidden characters; a bad password is never quoted back', () => {
  rejects(() => validateUsers([{ name: ' lead', password: 'p' }], [], 'mysql', 'mysql'), 'BadRequest', /not a valid user name/);
  rejects(() => validateUsers([{ name: '', password: 'p' }], [], 'mysql', 'mysql'), 'BadRequest', /^User name empty\.$/);
  assert.throws(
    () => validateUsers([{ name: 'app', password: 'sec"ret' }], [], 'mysql', 'mysql'),
    (err: unknown) => err instanceof CofferError && /password/.test(err.message) && !err.message.includes('sec"ret'),
  );
});

test('same name on different hosts is two users; their databases are de-duplicated', () => {
  const users = validateUsers(
    [
      { name: 'app', password: 'p', host: '%', databases: [{ name: 'db1' }, { name: 'db1' }] },
      { name: 'app', password: 'p', host: '10.0.0.1' },
    ],
    [{ name: 'db1' }],
    'mysql',
    'mysql',
  );
  assert.equal(users.length, 2);
  assert.deepEqual(users[0]?.databases, [{ name: 'db1' }]);
});

test('engines without databases and users refuse them with 501', () => {
  rejects(() => validateDatabases([{ name: 'db1' }], 'redis', 'redis'), 'NotImplemented', /'create database' operation is not supported for the 'redis' datastore/);
  rejects(() => validateUsers([{ name: 'u1', password: 'p' }], [], 'redis', 'redis'), 'NotImplemented', /create user/);
  assert.deepEqual(validateDatabases([], 'redis', 'redis'), []);
});
