import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import pLimit from 'p-limit';
import { CofferError, sleep } from '../../common/index.js';

// Passwords are stored as `scrypt$N$r$p$salt$hash` (base64url salt and hash), so the cost can be
// raised later without invalidating stored hashes: each hash carries its own parameters.

// OWASP's minimum for scrypt is N=2^17, r=8, p=1 (128 MiB per hash); N=2^14, r=8, p=5 costs the
// same CPU time with 16 MiB, so concurrent logins cannot exhaust memory. About 0.2 s per check,
// close to Keystone's bcrypt at 12 rounds.
const cost = { N: 16384, r: 8, p: 5 };
const keyLength = 32;

// scrypt runs on libuv's thread pool (4 threads by default), which the same process also needs
// for file I/O, DNS and the agent's work: 16 parallel bad logins once made a PostgreSQL create
// take 40 s instead of 1 s. One hash at a time leaves three threads to everything else, and
// while others wait, a hash keeps its turn for as long again as it took, so that a queue that
// never empties uses half of one core, not all of it. The gate is per process, as the pool is.
const hashes = pLimit(1);
/** logins waiting beyond this are refused without a hash: a flood costs a queue, not the process */
export const maxWaitingLogins = 8;
/**
 * A refused login is answered after this long, on a timer: a client that sends its next guess
 * when it has its answer (as floods do) then sends one a second, not as fast as refusals go.
 */
export const busyRefusalDelayMs = 1000;

export class HashQueueFull extends CofferError {
  constructor() {
    super('Unauthorized', 'Too many logins are being checked at once; try again in a few seconds.');
  }
}

function derive(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  // The caller gets its key as soon as it is ready; only the turn is held for the pause.
  return new Promise((resolve, reject) => {
    hashes(async () => {
      const started = performance.now();
      resolve(await scryptOnce(password, salt, options));
      if (hashes.pendingCount > 0) await sleep(performance.now() - started);
    }).catch(reject);
  });
}

function scryptOnce(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
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

/** Throws HashQueueFull (after busyRefusalDelayMs) when the queue of password checks is full. */
export async function refuseWhenBusy(): Promise<void> {
  if (hashes.pendingCount < maxWaitingLogins) return;
  await sleep(busyRefusalDelayMs);
  throw new HashQueueFull();
}

/**
 * `refuseWhenBusy`: a login (as opposed to an admin's or a user's own change) is refused with
 * HashQueueFull rather than queued when `maxWaitingLogins` checks already wait.
 */
export async function verifyPassword(
  password: string,
  stored: string | undefined,
  options: { refuseWhenBusy?: boolean } = {},
): Promise<boolean> {
  if (options.refuseWhenBusy === true) await refuseWhenBusy();
  const parsed = parse(stored);
  const [, n, r, p, salt, hash] = (parsed ?? parse(decoy)) as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64url');
  const actual = await derive(password, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p) });
  return parsed !== undefined && actual.length === expected.length && timingSafeEqual(actual, expected);
}
