import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

// Passwords are stored as `scrypt$N$r$p$salt$hash` (base64url salt and hash), so the cost can be
// raised later without invalidating stored hashes: each hash carries its own parameters.

// OWASP's minimum for scrypt is N=2^17, r=8, p=1 (128 MiB per hash); N=2^14, r=8, p=5 costs the
// same CPU time with 16 MiB, so concurrent logins cannot exhaust memory. About 0.2 s per check,
// close to Keystone's bcrypt at 12 rounds.
const cost = { N: 16384, r: 8, p: 5 };
const keyLength = 32;

function derive(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // 256 MiB leaves room for raised parameters while refusing absurd ones from a tampered row.
    scrypt(password, salt, keyLength, { ...options, maxmem: 256 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, cost);
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

// A fixed hash checked when there is nothing to check against (no such user, or a user without a
// password), so those cost as much time as a wrong password and response times do not reveal them.
const decoy = `scrypt$${cost.N}$${cost.r}$${cost.p}$${Buffer.alloc(16).toString('base64url')}$${Buffer.alloc(keyLength).toString('base64url')}`;

function parse(stored: string | undefined): string[] | undefined {
  const parts = stored?.split('$');
  return parts?.length === 6 && parts[0] === 'scrypt' ? parts : undefined;
}

export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const parsed = parse(stored);
  const [, n, r, p, salt, hash] = (parsed ?? parse(decoy)) as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64url');
  const actual = await derive(password, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p) });
  return parsed !== undefined && actual.length === expected.length && timingSafeEqual(actual, expected);
}
