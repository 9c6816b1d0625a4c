import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { adminPassword, adminSession, json, passwordAuth, startHarness, type Harness, type Session } from './api-harness.js';

// Identity names are compared exactly as stored (test/db/state-store.suite.ts checks the same on
// SQLite, MariaDB and PostgreSQL): a look-alike of `admin` is another user, never the admin.

let h: Harness;
let admin: Session;

before(async () => {
  h = await startHarness();
  admin = await adminSession(h.app);
});
after(() => h.close());

const lookAlikes = ['admin ', ' admin', 'Admin', 'ADMIN', '\uff41\uff44\uff4d\uff49\uff4e', 'adm\u0456n', 'admin\u200b'];

test('logging in as a look-alike of admin with the admin\'s password fails', async () => {
  for (const name of lookAlikes) {
    const res = await h.app.inject({ method: 'POST', url: '/identity/v3/auth/tokens', payload: passwordAuth(name, adminPassword, 'admin') });
    assert.equal(res.statusCode, 401, JSON.stringify(name));
  }
});

test('a look-alike of admin is created as a user of its own and found only by its own name', async () => {
  for (const name of lookAlikes) {
    const res = await h.app.inject({
      method: 'POST',
      url: '/identity/v3/users',
      headers: { 'x-auth-token': admin.token },
      payload: { user: { name, password: 'Lookalike-pass-1' } },
    });
    assert.equal(res.statusCode, 201, `${JSON.stringify(name)}: ${res.body}`);
    assert.equal(json(res).user.name, name);
    const found = await h.app.inject({ method: 'GET', url: `/identity/v3/users?name=${encodeURIComponent(name)}`, headers: { 'x-auth-token': admin.token } });
    assert.deepEqual(json(found).users.map((u: { name: string }) => u.name), [name]);
  }
  const admins = await h.app.inject({ method: 'GET', url: '/identity/v3/users?name=admin', headers: { 'x-auth-token': admin.token } });
  assert.deepEqual(json(admins).users.map((u: { name: string }) => u.name), ['admin']);
});
