import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStateStore } from '../../src/db/index.js';
import { redactUrl } from '../../src/common/logger.js';
import { parseDatabaseUrl } from '../../src/db/database-url.js';
import { rejectsWithCode } from '../support/coffer-errors.js';

describe('parseDatabaseUrl', () => {
  it('reads the SQLite forms: relative, absolute, sqlite:// and in-memory', () => {
    assert.deepEqual(parseDatabaseUrl('sqlite:data/coffer.db'), { engine: 'sqlite', path: 'data/coffer.db' });
    assert.deepEqual(parseDatabaseUrl('sqlite:/var/lib/coffer/state.db'), { engine: 'sqlite', path: '/var/lib/coffer/state.db' });
    assert.deepEqual(parseDatabaseUrl('sqlite:///var/lib/coffer/state.db'), { engine: 'sqlite', path: '/var/lib/coffer/state.db' });
    assert.deepEqual(parseDatabaseUrl('sqlite::memory:'), { engine: 'sqlite', path: ':memory:' });
  });

  it('reads MySQL and MariaDB URLs, with the default port and a decoded password', () => {
    assert.deepEqual(parseDatabaseUrl('mysql://root@127.0.0.1/coffer'), {
      engine: 'mysql',
      host: '127.0.0.1',
      port: 3306,
      user: 'root',
      password: undefined,
      database: 'coffer',
    });
    assert.deepEqual(parseDatabaseUrl('mariadb://coffer:p%40ss%2Fw@db.example:3307/state'), {
      engine: 'mysql',
      host: 'db.example',
      port: 3307,
      user: 'coffer',
      password: 'p@ss/w',
      database: 'state',
    });
    assert.equal((parseDatabaseUrl('mysql://root@[::1]:3306/coffer') as { host: string }).host, '::1');
  });

  it('keeps PostgreSQL URLs whole for pg, and knows the database name', () => {
    const url = 'postgresql://coffer:secret@127.0.0.1:5432/coffer_state?sslmode=disable';
    assert.deepEqual(parseDatabaseUrl(url), { engine: 'postgres', url, database: 'coffer_state' });
    assert.equal(parseDatabaseUrl('postgres://postgres@127.0.0.1/coffer').engine, 'postgres');
  });

  it('refuses unknown schemes naming the ones that work, and URLs without a database', () => {
    assert.throws(
      () => parseDatabaseUrl('redis://127.0.0.1/0'),
      (err: Error & { code?: string }) =>
        err.code === 'BadRequest' && /sqlite:/.test(err.message) && /mysql:\/\//.test(err.message) && /postgres:\/\//.test(err.message),
    );
    assert.throws(() => parseDatabaseUrl('coffer.db'), { code: 'BadRequest' });
    assert.throws(() => parseDatabaseUrl('mysql://root@127.0.0.1'), { code: 'BadRequest' });
    assert.throws(() => parseDatabaseUrl('postgres://127.0.0.1/'), { code: 'BadRequest' });
    assert.throws(() => parseDatabaseUrl('sqlite:'), { code: 'BadRequest' });
  });

  it('never shows a password in what it reports', () => {
    assert.equal(redactUrl('mysql://root:hunter2@127.0.0.1/coffer'), 'mysql://root:***@127.0.0.1/coffer');
    assert.equal(redactUrl('postgres://127.0.0.1/coffer'), 'postgres://127.0.0.1/coffer');
    assert.throws(
      () => parseDatabaseUrl('oracle://scott:tiger@db/coffer'),
      (err: Error) => !err.message.includes('tiger'),
    );
  });
});

describe('openStateStore URL handling', () => {
  it('answers BadRequest for an unknown scheme before connecting anywhere', async () => {
    await rejectsWithCode(openStateStore('mongodb://127.0.0.1/coffer'), 'BadRequest');
  });
});
