import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  validateDatabaseName,
  validateDatabases,
  validatePassword,
  validateUserHost,
  validateUserName,
  validateUsers,
} from '../../src/api/trove/database-user-rules.js';
import { CofferError } from '../../src/common/errors.js';
import { noEngineCapabilities } from '../../src/common/index.js';

// What each engine can do here: MySQL everything, PostgreSQL no host patterns, Redis nothing.
const everything = { ...noEngineCapabilities, databases: true, users: true, userHosts: true, userAccess: true, characterSets: true };
const mysql = { manager: 'mysql', datastore: 'mysql', capabilities: everything };
const mariadb = { manager: 'mariadb', datastore: 'mariadb', capabilities: everything };
const postgresql = { manager: 'postgresql', datastore: 'postgresql', capabilities: { ...everything, userHosts: false } };
const redis = { manager: 'redis', datastore: 'redis', capabilities: noEngineCapabilities };

function rejects(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof CofferError && err.code === code && message.test(err.message));
}

test("database names follow Trove's MySQL rules for every engine", () => {
  for (const name of ['ab', 'my_db', 'a-b', 'with space', 'x?y', 'A1']) {
    assert.deepEqual(validateDatabases([{ name }], postgresql), [{ name }]);
  }
  for (const name of ['a', '_', 'bad/name', "quo'te", 'semi;colon', 'back\\slash', 'tab\tname']) {
    rejects(() => validateDatabases([{ name }], mysql), 'BadRequest', /not a valid schema name/);
  }
  rejects(() => validateDatabases([{ name: '' }], mysql), 'BadRequest', /^Schema name empty\.$/);
});

test('reserved user names are matched by what they look like: NFKC, case, invisible characters, confusable letters', () => {
  const aclUsers = { ...redis, capabilities: { ...noEngineCapabilities, users: true } };
  const lookAlikes: [string, typeof mysql][] = [
    ['\uff52\uff4f\uff4f\uff54', mysql], // fullwidth ｒｏｏｔ
    ['r\u043e\u043et', mysql], // Cyrillic o's
    ['\u0433oot', postgresql], // Cyrillic ghe for r
    ['ROOT', mysql],
    ['Root', postgresql],
    ['ro\u200bot', mysql], // zero-width space
    ['r\u00adoot', mysql], // soft hyphen
    ['p\u03bfstgres', postgresql], // Greek omicron
    ['\u1d0fs_admin', postgresql], // small capital O
    ['os\uff3fadmin', mysql], // fullwidth low line
    ['mysq1.sys', mysql], // digit one for l
    ['mysql\u2024sys', mysql], // one dot leader
    ['d\u0435fault', aclUsers], // Cyrillic e
    ['DEFAULT', aclUsers],
  ];
  for (const [name, target] of lookAlikes) {
    rejects(() => validateUsers([{ name, password: 'p' }], target, []), 'BadRequest', /reserved list/);
  }
  // names that only share letters with a reserved one are still fine
  for (const name of ['rooted', 'r00t', 'app', 'm\u00fcller', '\u0440\u0443\u0442']) {
    assert.equal(validateUsers([{ name, password: 'p' }], mysql, []).length, 1, name);
  }
});

test('reserved names depend on the engine', () => {
  rejects(() => validateDatabases([{ name: 'mysql' }], mariadb), 'BadRequest', /reserved list: \['mysql', /);
  assert.equal(validateDatabases([{ name: 'mysql' }], postgresql).length, 1);
  rejects(() => validateUsers([{ name: 'postgres', password: 'p' }], postgresql, []), 'BadRequest', /reserved/);
  assert.equal(validateUsers([{ name: 'postgres', password: 'p' }], mysql, []).length, 1);
});

test('MySQL character sets and collations are checked against the MySQL table', () => {
  assert.deepEqual(validateDatabases([{ name: 'db1', character_set: 'utf8mb4', collate: 'utf8mb4_unicode_ci' }], mysql), [
    { name: 'db1', characterSet: 'utf8mb4', collate: 'utf8mb4_unicode_ci' },
  ]);
  assert.equal(validateDatabases([{ name: 'db1', collate: 'latin1_bin' }], mysql).length, 1);
  rejects(() => validateDatabases([{ name: 'db1', character_set: 'latin1', collate: 'utf8_bin' }], mysql), 'BadRequest', /^utf8_bin not a valid collation for charset latin1\.$/);
  rejects(() => validateDatabases([{ name: 'db1', collate: 'nope_ci' }], mysql), 'BadRequest', /'nope_ci' not a valid collation/);
  // Other engines get their values passed through, only checked to be plain words.
  assert.deepEqual(validateDatabases([{ name: 'db1', character_set: 'UTF8', collate: 'en_US.UTF-8' }], postgresql), [
    { name: 'db1', characterSet: 'UTF8', collate: 'en_US.UTF-8' },
  ]);
  rejects(() => validateDatabases([{ name: 'db1', collate: "x'; drop" }], postgresql), 'BadRequest', /collation/);
});

test('user hosts: %, addresses and networks, with % wildcards', () => {
  for (const host of ['%', '10.0.0.1', '192.168.%.%', '10.0.0.0/8', '::1', null, undefined]) {
    const [user] = validateUsers([{ name: 'app', password: 'p', host }], mysql, []);
    assert.equal(user?.host, host ?? '%');
  }
  for (const host of ['example.com', '10.0.0.0/33', '1.2.3', '10.0.0.1/8/8']) {
    rejects(() => validateUsers([{ name: 'app', password: 'p', host }], mysql, []), 'BadRequest', /not a valid hostname/);
  }
});

test('user names and passwords: length, forbidden characters; a bad password is never quoted back', () => {
  rejects(() => validateUsers([{ name: ' lead', password: 'p' }], mysql, []), 'BadRequest', /not a valid user name/);
  rejects(() => validateUsers([{ name: '', password: 'p' }], mysql, []), 'BadRequest', /^User name empty\.$/);
  assert.throws(
    () => validateUsers([{ name: 'app', password: 'sec"ret' }], mysql, []),
    (err: unknown) => err instanceof CofferError && /password/.test(err.message) && !err.message.includes('sec"ret'),
  );
});

test('same name on different hosts is two users; their databases are de-duplicated', () => {
  const users = validateUsers(
    [
      { name: 'app', password: 'p', host: '%', databases: [{ name: 'db1' }, { name: 'db1' }] },
      { name: 'app', password: 'p', host: '10.0.0.1' },
    ],
    mysql,
    [{ name: 'db1' }],
  );
  assert.equal(users.length, 2);
  assert.deepEqual(users[0]?.databases, [{ name: 'db1' }]);
});

test('engines without databases or users refuse them with 422 and say what to leave out', () => {
  rejects(() => validateDatabases([{ name: 'db1' }], redis), 'OperationNotSupported', /'create database' operation is not supported for the 'redis' datastore: leave out 'databases'/);
  rejects(() => validateUsers([{ name: 'u1', password: 'p' }], redis), 'OperationNotSupported', /'create user' .* leave out 'users'/);
  assert.deepEqual(validateDatabases([], redis), []);
  assert.deepEqual(validateUsers([], redis), []);
});

test('users without database access (Redis ACL users) refuse databases with 400', () => {
  const aclUsers = { ...redis, capabilities: { ...noEngineCapabilities, users: true } };
  assert.deepEqual(validateUsers([{ name: 'cache', password: 'p' }], aclUsers), [{ name: 'cache', password: 'p', host: '%', databases: [] }]);
  rejects(
    () => validateUsers([{ name: 'cache', password: 'p', databases: [{ name: 'db1' }] }], aclUsers),
    'BadRequest',
    /^Users of the 'redis' datastore cannot be given databases: leave out 'databases' for user 'cache'\.$/,
  );
});

test('engines without host patterns take % or no host; without character sets no charset or collation', () => {
  assert.equal(validateUsers([{ name: 'app', password: 'p', host: '%' }], postgresql)[0]?.host, '%');
  rejects(() => validateUsers([{ name: 'app', password: 'p', host: '10.0.0.1' }], postgresql), 'BadRequest', /no host patterns: leave out 'host' for user 'app'/);
  const plain = { ...postgresql, capabilities: { ...postgresql.capabilities, characterSets: false } };
  rejects(() => validateDatabases([{ name: 'db1', character_set: 'UTF8' }], plain), 'BadRequest', /take no character set or collation/);
  assert.deepEqual(validateDatabases([{ name: 'db1', character_set: '' }], plain), [{ name: 'db1' }]);
});

test('without an initial list a user may be given any valid, unreserved database; names and passwords check alone', () => {
  assert.deepEqual(validateUsers([{ name: 'app', password: 'p', databases: [{ name: 'later' }] }], mysql)[0]?.databases, [{ name: 'later' }]);
  rejects(() => validateUsers([{ name: 'app', password: 'p', databases: [{ name: 'mysql' }] }], mysql), 'BadRequest', /reserved list/);
  assert.equal(validateDatabaseName('orders', postgresql), 'orders');
  rejects(() => validateDatabaseName('template1', postgresql), 'BadRequest', /reserved list/);
  rejects(() => validateDatabaseName('a;b', postgresql), 'BadRequest', /not a valid schema name/);
  assert.equal(validateUserName('app', mysql), 'app');
  rejects(() => validateUserName('os_admin', postgresql), 'BadRequest', /reserved list/);
  assert.equal(validateUserHost(undefined, 'app', mysql), '%');
  assert.throws(() => validatePassword("it's", 'app'), (err: unknown) => err instanceof CofferError && !err.message.includes("it's"));
});
