import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startupWarnings } from '../../src/main/startup-warnings.js';

test("the broker's default guest account is named at start, with or without its password in the URL", () => {
  for (const busUrl of ['amqp://guest:guest@127.0.0.1', 'amqp://127.0.0.1', 'amqps://guest@rabbit.example:5671/coffer']) {
    const warnings = startupWarnings({ busUrl });
    assert.equal(warnings.length, 1, busUrl);
    assert.match(warnings[0]!, /default 'guest' account/);
    assert.match(warnings[0]!, /own user and vhost/);
  }
  assert.deepEqual(startupWarnings({ busUrl: 'amqp://coffer:S3cret@127.0.0.1/coffer' }), []);
});

test('a state database URL without a password is named at start, wherever the database is', () => {
  for (const databaseUrl of ['mysql://root@127.0.0.1/coffer', 'postgres://coffer@db.example/coffer', 'mariadb://coffer@10.0.0.5/c']) {
    const warnings = startupWarnings({ databaseUrl });
    assert.equal(warnings.length, 1, databaseUrl);
    assert.match(warnings[0]!, /no password: on a shared host/);
  }
  assert.deepEqual(startupWarnings({ databaseUrl: 'mysql://coffer:S3cret@127.0.0.1/coffer' }), []);
  assert.deepEqual(startupWarnings({ databaseUrl: 'postgres://coffer@127.0.0.1/coffer?password=S3cret' }), []);
  assert.deepEqual(startupWarnings({ databaseUrl: 'sqlite:/var/lib/coffer/coffer.sqlite' }), []);
});

test('both at once, as in the old README example', () => {
  const warnings = startupWarnings({ busUrl: 'amqp://guest:guest@127.0.0.1', databaseUrl: 'mysql://root@127.0.0.1/coffer' });
  assert.equal(warnings.length, 2);
});
