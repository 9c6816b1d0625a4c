import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LoginLimiter } from '../../src/api/identity/login-limiter.js';
import { maxWaitingLogins } from '../../src/api/identity/password-hash.js';
import { silentLogger } from '../../src/common/logger.js';
import { adminPassword, json, memberSession, passwordAuth, startHarness, type Harness } from './api-harness.js';

// Failed logins lock a user (Keystone's lockout) and a source address, counted in the state
// store; a flood of logins waits in a bounded queue for the one hash at a time, and what does
// not fit is refused at once.

const tokens = '/identity/v3/auth/tokens';

function attempt(h: Harness, user: string, password: string, project: string, remoteAddress = '127.0.0.1') {
  return h.app.inject({ method: 'POST', url: tokens, payload: passwordAuth(user, password, project), remoteAddress });
}

/** a member whose name and project are known: memberSession logs in with 'pw-member' */
async function member(h: Harness): Promise<{ user: string; project: string }> {
  const s = await memberSession(h);
  const user = (await h.store.users.get(s.userId))!;
  const project = (await h.store.projects.get(s.projectId))!;
  return { user: user.name, project: project.name };
}

describe('user lockout', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ loginLimits: { lockoutAttempts: 3, lockoutSeconds: 3600, addressAttempts: 0, addressSeconds: 1 } });
  });
  after(() => h.close());

  test('after 3 failures in a row the right password is refused too, with Keystone\'s 401; others still log in', async () => {
    const m = await member(h);
    for (let i = 0; i < 3; i++) assert.equal((await attempt(h, m.user, 'wrong-password', m.project)).statusCode, 401);
    const locked = await attempt(h, m.user, 'pw-member', m.project);
    assert.equal(locked.statusCode, 401);
    assert.deepEqual(json(locked), { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
    assert.equal((await attempt(h, 'admin', adminPassword, 'admin')).statusCode, 201);
  });

  test('an admin setting enabled: true unlocks a locked user at once', async () => {
    const s = await memberSession(h);
    const m = { user: (await h.store.users.get(s.userId))!.name, project: (await h.store.projects.get(s.projectId))!.name };
    for (let i = 0; i < 3; i++) await attempt(h, m.user, 'wrong-password', m.project);
    assert.equal((await attempt(h, m.user, 'pw-member', m.project)).statusCode, 401);
    const admin = await attempt(h, 'admin', adminPassword, 'admin');
    const unlock = await h.app.inject({
      method: 'PATCH',
      url: `/identity/v3/users/${s.userId}`,
      headers: { 'x-auth-token': String(admin.headers['x-subject-token']) },
      payload: { user: { enabled: true } },
    });
    assert.equal(unlock.statusCode, 200, unlock.body);
    assert.equal((await attempt(h, m.user, 'pw-member', m.project)).statusCode, 201);
  });

  test('a success resets the count', async () => {
    const m = await member(h);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2; i++) assert.equal((await attempt(h, m.user, 'wrong-password', m.project)).statusCode, 401);
      assert.equal((await attempt(h, m.user, 'pw-member', m.project)).statusCode, 201);
    }
  });

  test('a locked user cannot change its password either, and the failures there count', async () => {
    const s = await memberSession(h);
    const change = (original: string) =>
      h.app.inject({ method: 'POST', url: `/identity/v3/users/${s.userId}/password`, payload: { user: { original_password: original, password: 'Another-pass-1' } } });
    for (let i = 0; i < 3; i++) assert.equal((await change('wrong-password')).statusCode, 401);
    assert.equal((await change('pw-member')).statusCode, 401);
  });
});

describe('lockout ends after its duration', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  // The limiter itself, with the clock given: a real wait would race the hashes of a loaded machine.
  test('locked for lockoutSeconds after the last failure, then counting starts again from one', async () => {
    const limiter = new LoginLimiter(h.store, { lockoutAttempts: 2, lockoutSeconds: 60, addressAttempts: 0, addressSeconds: 1 }, silentLogger());
    const user = (await h.store.users.getByName('admin', 'default'))!;
    const t0 = new Date('2031-01-01T00:00:00Z');
    const at = (s: number) => new Date(t0.getTime() + s * 1000);
    await limiter.failed('192.0.2.1', user, at(0));
    await limiter.check('192.0.2.1', user, at(1));
    await limiter.failed('192.0.2.1', user, at(2));
    await assert.rejects(limiter.check('192.0.2.1', user, at(3)), { code: 'Unauthorized' });
    await assert.rejects(limiter.check('192.0.2.1', user, at(61)), { code: 'Unauthorized' });
    await limiter.check('192.0.2.1', user, at(62));
    await limiter.failed('192.0.2.1', user, at(63));
    assert.equal((await h.store.loginFailures.get(`user:${user.id}`))?.failures, 1);
    await limiter.check('192.0.2.1', user, at(64));
    await limiter.succeeded(user);
    assert.equal(await h.store.loginFailures.get(`user:${user.id}`), undefined);
  });
});

describe('source address limit', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ loginLimits: { lockoutAttempts: 0, lockoutSeconds: 1, addressAttempts: 4, addressSeconds: 3600 } });
  });
  after(() => h.close());

  test('guessing over many user names from one address stops it; another address still logs in', async () => {
    for (let i = 0; i < 4; i++) assert.equal((await attempt(h, `nobody-${i}`, 'guess-1234', 'admin', '192.0.2.7')).statusCode, 401);
    assert.equal((await attempt(h, 'admin', adminPassword, 'admin', '192.0.2.7')).statusCode, 401);
    assert.equal((await attempt(h, 'admin', adminPassword, 'admin', '192.0.2.8')).statusCode, 201);
    assert.equal((await h.store.loginFailures.get('address:192.0.2.7'))?.failures, 4);
  });
});

describe('hashing queue', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test(`a flood of logins is answered, those beyond ${maxWaitingLogins} waiting at once with a quick 401`, async () => {
    const flood = await Promise.all(Array.from({ length: 40 }, (_, i) => attempt(h, 'admin', `wrong-${i}`, 'admin')));
    assert.ok(flood.every((r) => r.statusCode === 401));
    const busy = flood.filter((r) => /Too many logins are being checked at once/.test(json(r).error.message));
    assert.ok(busy.length > 0, 'some logins were refused without a hash');
    assert.ok(busy.length <= 40 - maxWaitingLogins, `${busy.length} refused`);
    // once the flood is through, logins work again
    assert.equal((await attempt(h, 'admin', adminPassword, 'admin')).statusCode, 201);
  });
});
