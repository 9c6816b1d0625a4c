import { createHash } from 'node:crypto';

// What Keystone said about a token, kept for a short while (keystonemiddleware's
// token_cache_time, default 300 s) so that each request does not cost a round trip to Keystone.
// An entry lives until the cache time has passed or the token expires, whichever is first; the
// least recently used entries make room when the cache is full. Keys are the tokens' sha256, so
// the cache holds no usable credentials. A token revoked in Keystone is therefore still accepted
// for at most the cache time by an API process that validated it before the revocation, exactly
// as with keystonemiddleware; a cache time of 0 asks Keystone every time.
// A Map keeps insertion order, so moving an entry to the end on each hit makes its first key the
// least recently used one. (lru-cache would do the same, but the lint's import resolver cannot
// resolve its export map.)

interface Entry<T> {
  value: T;
  until: number;
}

export class TokenCache<T extends object> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly cacheMs: number,
    private readonly maxEntries: number,
  ) {}

  static key(token: string): string {
    return createHash('sha256').update(token).digest('hex');
  }

  /** The cached answer for `token`, if it is still fresh at `now`. */
  get(token: string, now: Date): T | undefined {
    const key = TokenCache.key(token);
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (entry.until <= now.getTime()) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Keeps `value` until the cache time has passed, or until `expiresAt` when that comes first. */
  set(token: string, value: T, now: Date, expiresAt?: Date): void {
    const until = Math.min(now.getTime() + this.cacheMs, expiresAt?.getTime() ?? Number.POSITIVE_INFINITY);
    if (until <= now.getTime() || this.maxEntries < 1) return;
    const key = TokenCache.key(token);
    this.entries.delete(key);
    this.entries.set(key, { value, until });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
