import { createHash, randomInt } from 'node:crypto';

// Password hashes computed here, so that a plaintext password never reaches the server (where
// the general log or a slow statement could record it) and an account can be re-created with
// the same password when the access rules change, long after the plaintext is gone.

/** mysql_native_password: `*` and SHA1(SHA1(password)) in upper-case hex. */
export function nativePasswordHash(password: string): string {
  const sha1 = (data: Buffer) => createHash('sha1').update(data).digest();
  return `*${sha1(sha1(Buffer.from(password, 'utf8'))).toString('hex').toUpperCase()}`;
}

const itoa64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function encode24(b2: number, b1: number, b0: number, count: number): string {
  let word = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < count; i++) {
    out += itoa64[word & 0x3f];
    word >>>= 6;
  }
  return out;
}

// the byte order of SHA-crypt's final encoding (Drepper's specification)
const order: [number, number, number][] = [
  [0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14],
  [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29],
];

function repeated(source: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = source[i % source.length]!;
  return out;
}

/**
 * SHA-256 crypt (glibc's `$5$`) digest, 43 characters, without the salt length limit of 16
 * that glibc applies: MySQL's caching_sha2_password uses a 20-byte salt.
 */
export function sha256CryptDigest(password: string, salt: string, rounds: number): string {
  const key = Buffer.from(password, 'utf8');
  const saltBytes = Buffer.from(salt, 'utf8');
  const sha = () => createHash('sha256');
  const alternate = sha().update(key).update(saltBytes).update(key).digest();
  const first = sha().update(key).update(saltBytes);
  for (let left = key.length; left > 0; left -= 32) first.update(alternate.subarray(0, Math.min(32, left)));
  for (let bits = key.length; bits > 0; bits >>= 1) first.update(bits & 1 ? alternate : key);
  const a = first.digest();
  const dp = sha();
  for (let i = 0; i < key.length; i++) dp.update(key);
  const p = repeated(dp.digest(), key.length);
  const ds = sha();
  for (let i = 0; i < 16 + a[0]!; i++) ds.update(saltBytes);
  const s = repeated(ds.digest(), saltBytes.length);
  let c = a;
  for (let i = 0; i < rounds; i++) {
    const round = sha().update(i & 1 ? p : c);
    if (i % 3 !== 0) round.update(s);
    if (i % 7 !== 0) round.update(p);
    round.update(i & 1 ? c : p);
    c = round.digest();
  }
  return order.map(([x, y, z]) => encode24(c[x]!, c[y]!, c[z]!, 4)).join('') + encode24(0, c[31]!, c[30]!, 3);
}

const saltAlphabet = itoa64;

/** caching_sha2_password as MySQL stores it: `$A$005$`, a 20-character salt, the digest of 5000 rounds. */
export function cachingSha2PasswordHash(password: string, salt?: string): string {
  const chosen = salt ?? Array.from({ length: 20 }, () => saltAlphabet[randomInt(saltAlphabet.length)]).join('');
  return `$A$005$${chosen}${sha256CryptDigest(password, chosen, 5000)}`;
}
