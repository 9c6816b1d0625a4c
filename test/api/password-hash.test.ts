import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { test } from 'node:test';
import { hashPassword, verifyPassword } from '../../src/api/identity/password-hash.js';

test("new hashes cost at least OWASP's minimum for scrypt (N=2^17, r=8, p=1 or an equivalent)", async () => {
  const [scheme, n, r, p, salt, key] = (await hashPassword('pw')).split('$');
  assert.equal(scheme, 'scrypt');
  assert.ok(Number(r) >= 8, `r=${r}`);
  // The settings OWASP's cheat sheet lists as equivalent at r=8, trading memory (N) for passes (p).
  const owasp = [[2 ** 17, 1], [2 ** 16, 2], [2 ** 15, 3], [2 ** 14, 5], [2 ** 13, 10]];
  assert.ok(owasp.some(([minN, minP]) => Number(n) >= minN! && Number(p) >= minP!), `N=${n} p=${p}`);
  assert.equal(Buffer.from(salt!, 'base64url').length, 16);
  assert.equal(Buffer.from(key!, 'base64url').length, 32);
});

test('a hash verifies its password only; two hashes of one password differ', async () => {
  const a = await hashPassword('correct horse');
  assert.notEqual(a, await hashPassword('correct horse'));
  assert.equal(await verifyPassword('correct horse', a), true);
  assert.equal(await verifyPassword('correct hors', a), false);
});

test('a hash stored with other parameters still verifies, since each hash carries its own', async () => {
  const salt = randomBytes(16);
  const key = scryptSync('old', salt, 32, { N: 1024, r: 8, p: 1 });
  const stored = ['scrypt', 1024, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
  assert.equal(await verifyPassword('old', stored), true);
  assert.equal(await verifyPassword('new', stored), false);
});

test('no user, a user without a password or a malformed hash never verifies', async () => {
  for (const stored of [undefined, '', 'scrypt$1$2', 'bcrypt$x$y$z$a$b']) {
    assert.equal(await verifyPassword('', stored), false, String(stored));
    assert.equal(await verifyPassword('anything', stored), false, String(stored));
  }
});
