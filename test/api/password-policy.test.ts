import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { after, before, describe, test } from 'node:test';
import {
  defaultPasswordPolicy,
  describePasswordPolicy,
  meetsPasswordPolicy,
  noPasswordPolicy,
} from '../../src/api/password-policy.js';
import { newPassword } from '../../src/common/index.js';
import { adminSession, json, memberSession, seedDatastores, seededCapabilities, startHarness, type Harness, type Session } from './api-harness.js';
import { guestInstance, type GuestInstance } from './guest-instance.js';

// Passwords a user chooses meet the configured policy, everywhere one is chosen: identity users,
// database users at create and later, root. The refusal states the policy, never the password.

const policyText =
  'Passwords must be at least 10 characters long and use at least 2 of: lower-case letters, upper-case letters, digits, other characters.';

describe('the policy', () => {
  test('length in characters, not bytes, and character classes', () => {
    for (const weak of ['short', 'x', 'alllowercaseletters', '1234567890', 'Ab1-', 'ｒｏｏｔｒｏｏｔｒ']) {
      assert.equal(meetsPasswordPolicy(weak, defaultPasswordPolicy), false, weak);
    }
    for (const strong of ['Choose-a-strong-password-1', 'correct horse battery', 'äöüßéèêàç1', 'Member-pass-1']) {
      assert.equal(meetsPasswordPolicy(strong, defaultPasswordPolicy), true, strong);
    }
    assert.equal(meetsPasswordPolicy('', noPasswordPolicy), true);
    assert.equal(describePasswordPolicy(defaultPasswordPolicy), policyText);
    assert.equal(describePasswordPolicy(noPasswordPolicy), 'Any password is accepted.');
  });

  test('a regex, described in words when a description is given (Keystone\'s password_regex)', () => {
    const digits = { minLength: 0, minClasses: 0, regex: '^(?=.*\\d).{7,}$' };
    assert.equal(meetsPasswordPolicy('abcdef1', digits), true);
    assert.equal(meetsPasswordPolicy('abcdefg', digits), false);
    assert.equal(describePasswordPolicy(digits), 'Passwords must match the regular expression ^(?=.*\\d).{7,}$.');
    assert.equal(describePasswordPolicy({ ...digits, regexDescription: 'At least 7 characters, one a digit.' }), 'At least 7 characters, one a digit.');
  });

  test('generated passwords meet the default policy, and a strict one', () => {
    const strict = { minLength: 30, minClasses: 3 };
    for (let i = 0; i < 2000; i++) {
      const password = newPassword();
      assert.ok(meetsPasswordPolicy(password, defaultPasswordPolicy) && meetsPasswordPolicy(password, strict), password);
    }
  });
});

describe('the API applies it', () => {
  let h: Harness;
  let admin: Session;
  let alice: Session;
  let pg: GuestInstance;

  before(async () => {
    h = await startHarness({ passwordPolicy: defaultPasswordPolicy });
    admin = await adminSession(h.app);
    alice = await memberSession(h, 'alice');
    await seedDatastores(h.store);
    pg = await guestInstance(h, alice, { capabilities: seededCapabilities.postgresql });
  });
  after(async () => {
    await pg.close();
    await h.close();
  });

  function send(s: Session, method: 'POST' | 'PUT' | 'PATCH', url: string, payload: object) {
    return h.app.inject({ method, url, headers: { 'x-auth-token': s.token }, payload });
  }

  function assertRefused(res: LightMyRequestResponse, fault: 'error' | 'badRequest', whose: string, password: string) {
    assert.equal(res.statusCode, 400, res.body);
    const body = json(res);
    const message: string = fault === 'error' ? body.error.message : body.badRequest.message;
    assert.equal(message, `Password validation error: the password of ${whose} does not meet the requirements: ${policyText}`);
    assert.ok(!res.body.includes(password));
  }

  test('identity: user create, update and a user\'s own change', async () => {
    assertRefused(await send(admin, 'POST', '/identity/v3/users', { user: { name: 'weakling', password: 'short' } }), 'error', 'user weakling', 'short');
    const created = await send(admin, 'POST', '/identity/v3/users', { user: { name: 'strong', password: 'Strong-pass-1' } });
    assert.equal(created.statusCode, 201, created.body);
    const id = json(created).user.id;
    assertRefused(await send(admin, 'PATCH', `/identity/v3/users/${id}`, { user: { password: 'hunter' } }), 'error', 'user strong', 'hunter');
    const own = await h.app.inject({ method: 'POST', url: `/identity/v3/users/${id}/password`, payload: { user: { original_password: 'Strong-pass-1', password: 'x' } } });
    assertRefused(own, 'error', 'user strong', '"x"');
  });

  test('Trove: users in a create, new users, changed passwords and root', async () => {
    const create = await send(alice, 'POST', `/v1.0/${alice.projectId}/instances`, {
      instance: { name: 'weak', flavorRef: '2', volume: { size: 1 }, datastore: { type: 'postgresql' }, users: [{ name: 'app', password: 'app:short' }] },
    });
    assertRefused(create, 'badRequest', "user 'app'", 'app:short');
    const base = `/v1.0/${alice.projectId}/instances/${pg.id}`;
    assertRefused(await send(alice, 'POST', `${base}/users`, { users: [{ name: 'app', password: 'short' }] }), 'badRequest', "user 'app'", 'short');
    assertRefused(await send(alice, 'PUT', `${base}/users`, { users: [{ name: 'app', password: 'lowercaseonly' }] }), 'badRequest', "user 'app'", 'lowercaseonly');
    assertRefused(await send(alice, 'PUT', `${base}/users/app`, { user: { password: 'lowercaseonly' } }), 'badRequest', "user 'app'", 'lowercaseonly');
    assertRefused(await send(alice, 'POST', `${base}/root`, { password: 'r00t' }), 'badRequest', 'root', 'r00t');
    assert.deepEqual(pg.engine.calls, []);
    const accepted = await send(alice, 'POST', `${base}/users`, { users: [{ name: 'app', password: 'App-user-pass-1234' }] });
    assert.equal(accepted.statusCode, 202, accepted.body);
  });
});
