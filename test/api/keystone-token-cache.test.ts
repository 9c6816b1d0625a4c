import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TokenCache } from '../../src/api/keystone/token-cache.js';

// The cache in front of Keystone's token validation: how long an answer is trusted (so how long
// a revoked token can still work) and how many are kept.

const t0 = new Date('2026-01-01T00:00:00Z');
const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);

describe('TokenCache', () => {
  test('an answer is kept for the cache time and no longer', () => {
    const cache = new TokenCache<{ user: string }>(300_000, 10);
    cache.set('token-a', { user: 'alice' }, t0);
    assert.deepEqual(cache.get('token-a', at(299)), { user: 'alice' });
    assert.equal(cache.get('token-a', at(300)), undefined);
    assert.equal(cache.size, 0, 'the stale entry is dropped');
  });

  test('a token that expires before the cache time is forgotten when it expires', () => {
    const cache = new TokenCache<{ user: string }>(300_000, 10);
    cache.set('token-a', { user: 'alice' }, t0, at(60));
    assert.deepEqual(cache.get('token-a', at(59)), { user: 'alice' });
    assert.equal(cache.get('token-a', at(60)), undefined);
    cache.set('token-b', { user: 'bob' }, t0, at(-1));
    assert.equal(cache.get('token-b', t0), undefined, 'an already expired token is not kept');
  });

  test('a cache time of 0 keeps nothing', () => {
    const cache = new TokenCache<{ user: string }>(0, 10);
    cache.set('token-a', { user: 'alice' }, t0);
    assert.equal(cache.get('token-a', t0), undefined);
    assert.equal(cache.size, 0);
  });

  test('the size is bounded: the least recently used entry makes room', () => {
    const cache = new TokenCache<{ n: number }>(300_000, 3);
    cache.set('t1', { n: 1 }, t0);
    cache.set('t2', { n: 2 }, t0);
    cache.set('t3', { n: 3 }, t0);
    assert.deepEqual(cache.get('t1', at(1)), { n: 1 }, 't1 is now the most recently used');
    cache.set('t4', { n: 4 }, at(2));
    assert.equal(cache.size, 3);
    assert.equal(cache.get('t2', at(3)), undefined, 't2 was the least recently used');
    assert.deepEqual([cache.get('t1', at(3)), cache.get('t3', at(3)), cache.get('t4', at(3))], [{ n: 1 }, { n: 3 }, { n: 4 }]);
  });

  test('setting a token again replaces its answer and its time', () => {
    const cache = new TokenCache<{ valid: boolean }>(10_000, 3);
    cache.set('t1', { valid: true }, t0);
    cache.set('t1', { valid: false }, at(5));
    assert.equal(cache.size, 1);
    assert.deepEqual(cache.get('t1', at(14)), { valid: false });
  });

  test('entries are keyed by the token\'s sha256, not the token', () => {
    assert.match(TokenCache.key('gAAAAAB-secret'), /^[0-9a-f]{64}$/);
    assert.notEqual(TokenCache.key('a'), TokenCache.key('b'));
  });
});
