import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RateLimiter, troveRateLimitRules } from '../../src/api/rate-limiter.js';
import { json, memberSession, startHarness, type Harness, type Session } from './api-harness.js';

// Trove's leaky buckets (reference 1.7): the limiter on a clock the test moves, then the API
// with a small limit.

function clock(startMs = Date.UTC(2026, 0, 1)) {
  let now = startMs;
  return { now: () => now, advance: (seconds: number) => (now += seconds * 1000) };
}

describe('RateLimiter', () => {
  test('value requests a minute pass, the next waits until a slot has leaked out', () => {
    const time = clock();
    const limiter = new RateLimiter(troveRateLimitRules(3), time.now);
    const remaining = () => limiter.states('p').find((s) => s.verb === 'GET')?.remaining;
    assert.equal(remaining(), 3);
    for (const left of [2, 1, 0]) {
      assert.equal(limiter.check('p', 'GET', '/instances'), undefined);
      assert.equal(remaining(), left);
    }
    assert.deepEqual(limiter.check('p', 'GET', '/flavors'), {
      delaySeconds: 20,
      details: 'Only 3 GET request(s) can be made to * every minute.',
    });
    time.advance(19);
    assert.equal(limiter.check('p', 'GET', '/instances')?.delaySeconds, 1, 'a refused request does not fill the bucket');
    time.advance(1);
    assert.equal(limiter.check('p', 'GET', '/instances'), undefined);
  });

  test('each verb and each project has its own buckets', () => {
    const limiter = new RateLimiter(troveRateLimitRules(1), clock().now);
    assert.equal(limiter.check('p', 'GET', '/x'), undefined);
    assert.ok(limiter.check('p', 'GET', '/x'));
    assert.equal(limiter.check('p', 'POST', '/x'), undefined);
    assert.equal(limiter.check('p', 'DELETE', '/x'), undefined);
    assert.equal(limiter.check('q', 'GET', '/x'), undefined);
    assert.equal(limiter.check('p', 'PATCH', '/x'), undefined, 'no rule covers PATCH');
  });

  test('POST under /mgmt counts against both POST rules; the shortest wait is reported', () => {
    const time = clock();
    const limiter = new RateLimiter(
      [
        { verb: 'POST', uri: '*', regex: /.*/, value: 10 },
        { verb: 'POST', uri: '*/mgmt', regex: /^\/mgmt/, value: 2 },
      ],
      time.now,
    );
    assert.equal(limiter.check('p', 'POST', '/mgmt/instances/x/action'), undefined);
    assert.equal(limiter.check('p', 'POST', '/mgmt/instances/x/action'), undefined);
    const refused = limiter.check('p', 'POST', '/mgmt/quotas/x');
    assert.equal(refused?.details, 'Only 2 POST request(s) can be made to */mgmt every minute.');
    assert.equal(refused?.delaySeconds, 30);
    assert.equal(limiter.check('p', 'POST', '/instances'), undefined);
    const [post, mgmt] = limiter.states('p');
    assert.equal(post?.remaining, 6, 'every POST, the refused one too, went through the POST * bucket');
    assert.equal(mgmt?.remaining, 0);
  });

  test('states: Trove rule order, and resetTime is when the next request may come (epoch seconds)', () => {
    const time = clock(Date.UTC(2026, 0, 1, 12, 0, 0));
    const limiter = new RateLimiter(troveRateLimitRules(2), time.now);
    limiter.check('p', 'PUT', '/instances/x');
    limiter.check('p', 'PUT', '/instances/x');
    limiter.check('p', 'PUT', '/instances/x');
    const states = limiter.states('p');
    assert.deepEqual(states.map((s) => [s.verb, s.uri, s.regex]), [
      ['POST', '*', '.*'],
      ['PUT', '*', '.*'],
      ['DELETE', '*', '.*'],
      ['GET', '*', '.*'],
      ['POST', '*/mgmt', '^\\/mgmt'],
    ]);
    assert.equal(states[1]?.resetTime, Date.UTC(2026, 0, 1, 12, 0, 30) / 1000);
    assert.equal(states[0]?.resetTime, Date.UTC(2026, 0, 1, 12, 0, 0) / 1000);
  });
});

describe('rate limiting in the API', () => {
  let h: Harness;
  let alice: Session;
  let bob: Session;
  before(async () => {
    h = await startHarness({ rateLimitPerMinute: 3 });
    alice = await memberSession(h, 'alice');
    bob = await memberSession(h, 'bob');
  });
  after(() => h.close());

  const get = (s: Session, path: string, token = s.token) =>
    h.app.inject({ method: 'GET', url: `/v1.0/${s.projectId}${path}`, headers: { 'x-auth-token': token } });

  test('GET /limits lists each rule after ABSOLUTE, counting the request that asks', async () => {
    const res = await get(alice, '/limits');
    assert.equal(res.statusCode, 200);
    const [absolute, ...rates] = json(res).limits;
    assert.equal(absolute.verb, 'ABSOLUTE');
    assert.deepEqual(
      rates.map((r: Record<string, unknown>) => [r.verb, r.uri, r.regex, r.value, r.remaining, r.unit]),
      [
        ['POST', '*', '.*', 3, 3, 'MINUTE'],
        ['PUT', '*', '.*', 3, 3, 'MINUTE'],
        ['DELETE', '*', '.*', 3, 3, 'MINUTE'],
        ['GET', '*', '.*', 3, 2, 'MINUTE'],
        ['POST', '*/mgmt', '^\\/mgmt', 3, 3, 'MINUTE'],
      ],
    );
    for (const r of rates) assert.match(r.nextAvailable, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  test("the request over the limit gets Trove's 413 overLimit with details and Retry-After", async () => {
    // alice has made one GET in the previous test.
    assert.equal((await get(alice, '/flavors')).statusCode, 200);
    assert.equal((await get(alice, '/datastores')).statusCode, 200);
    const res = await get(alice, '/flavors');
    assert.equal(res.statusCode, 413);
    const body = json(res);
    assert.deepEqual(Object.keys(body.overLimit).sort(), ['code', 'details', 'message', 'retryAfter']);
    assert.equal(body.overLimit.code, 413);
    assert.equal(body.overLimit.message, 'This request was rate-limited.');
    assert.equal(body.overLimit.details, 'Only 3 GET request(s) can be made to * every minute.');
    assert.equal(res.headers['retry-after'], body.overLimit.retryAfter);
    const seconds = Number(body.overLimit.retryAfter);
    assert.ok(Number.isInteger(seconds) && seconds >= 1 && seconds <= 20, body.overLimit.retryAfter);
    assert.match(String(res.headers['content-type']), /^application\/json/);
  });

  test('other verbs and other projects are unaffected; failed authentication is not counted', async () => {
    assert.equal((await get(bob, '/flavors')).statusCode, 200);
    const put = await h.app.inject({
      method: 'PUT',
      url: `/v1.0/${alice.projectId}/mgmt/quotas/${alice.projectId}`,
      headers: { 'x-auth-token': alice.token },
      payload: { quotas: {} },
    });
    assert.equal(put.statusCode, 401, 'PUT still reaches the route (and its admin check)');
    for (let n = 0; n < 5; n += 1) assert.equal((await get(bob, '/flavors', 'not-a-token')).statusCode, 401);
    assert.equal((await get(bob, '/flavors')).statusCode, 200);
  });
});
