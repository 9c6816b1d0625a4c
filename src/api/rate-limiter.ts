// Trove's rate limiting (reference 1.7, trove/common/limits.py): per project, one leaky bucket
// per rule, `value` requests per minute. The buckets live in this API process's memory, as in
// Trove: several API processes each allow the full rate, and a restart refills every bucket.

export interface RateLimitRule {
  verb: string;
  /** what GET /limits and the error message call the URIs it covers */
  uri: string;
  /** matched against the path below /v1.0/{tenant} */
  regex: RegExp;
  /** requests per minute */
  value: number;
}

export interface RateLimitState {
  verb: string;
  uri: string;
  regex: string;
  value: number;
  remaining: number;
  unit: 'MINUTE';
  /** when the next request is allowed, epoch seconds */
  resetTime: number;
}

export interface RateLimitDelay {
  /** seconds until the request would be allowed */
  delaySeconds: number;
  /** Trove's explanation, e.g. "Only 200 GET request(s) can be made to * every minute." */
  details: string;
}

/** Trove's DEFAULT_LIMITS, in its order, all at `perMinute`. */
export function troveRateLimitRules(perMinute: number): RateLimitRule[] {
  return [
    { verb: 'POST', uri: '*', regex: /.*/, value: perMinute },
    { verb: 'PUT', uri: '*', regex: /.*/, value: perMinute },
    { verb: 'DELETE', uri: '*', regex: /.*/, value: perMinute },
    { verb: 'GET', uri: '*', regex: /.*/, value: perMinute },
    { verb: 'POST', uri: '*/mgmt', regex: /^\/mgmt/, value: perMinute },
  ];
}

const unitSeconds = 60;

class Bucket {
  private waterLevel = 0;
  private lastRequest: number | undefined;
  private nextRequest: number | undefined;
  private remaining: number;
  private readonly capacity = unitSeconds;
  private readonly requestValue: number;

  constructor(readonly rule: RateLimitRule) {
    this.remaining = rule.value;
    this.requestValue = unitSeconds / rule.value;
  }

  matches(verb: string, path: string): boolean {
    return this.rule.verb === verb && this.rule.regex.test(path);
  }

  /** Takes one request (times in seconds); the delay when the bucket is full, else undefined. */
  take(now: number): number | undefined {
    this.waterLevel = Math.max(this.waterLevel - (now - (this.lastRequest ?? now)), 0) + this.requestValue;
    this.lastRequest = now;
    const overflow = this.waterLevel - this.capacity;
    if (overflow > 0) {
      this.waterLevel -= this.requestValue;
      this.nextRequest = now + overflow;
      return overflow;
    }
    this.remaining = Math.floor(((this.capacity - this.waterLevel) / this.capacity) * this.rule.value);
    this.nextRequest = now;
    return undefined;
  }

  state(now: number): RateLimitState {
    return {
      verb: this.rule.verb,
      uri: this.rule.uri,
      regex: this.rule.regex.source,
      value: this.rule.value,
      remaining: this.remaining,
      unit: 'MINUTE',
      resetTime: Math.floor(this.nextRequest ?? now),
    };
  }
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket[]>();

  constructor(
    private readonly rules: readonly RateLimitRule[],
    /** epoch milliseconds; tests pass their own clock */
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Counts a request of `tenantId` against every rule it matches; undefined when all allow it,
   * else the shortest wait among the rules that refuse it (as Trove's check_for_delay).
   */
  check(tenantId: string, verb: string, path: string): RateLimitDelay | undefined {
    const now = this.clock() / 1000;
    let shortest: { delay: number; rule: RateLimitRule } | undefined;
    for (const bucket of this.bucketsOf(tenantId)) {
      if (!bucket.matches(verb, path)) continue;
      const delay = bucket.take(now);
      if (delay !== undefined && (shortest === undefined || delay < shortest.delay)) shortest = { delay, rule: bucket.rule };
    }
    if (shortest === undefined) return undefined;
    const { rule } = shortest;
    return {
      delaySeconds: shortest.delay,
      details: `Only ${rule.value} ${rule.verb} request(s) can be made to ${rule.uri} every minute.`,
    };
  }

  /** every rule's state for the project, in rule order (GET /limits) */
  states(tenantId: string): RateLimitState[] {
    const now = this.clock() / 1000;
    return this.bucketsOf(tenantId).map((b) => b.state(now));
  }

  private bucketsOf(tenantId: string): Bucket[] {
    let buckets = this.buckets.get(tenantId);
    if (buckets === undefined) {
      buckets = this.rules.map((rule) => new Bucket(rule));
      this.buckets.set(tenantId, buckets);
    }
    return buckets;
  }
}
