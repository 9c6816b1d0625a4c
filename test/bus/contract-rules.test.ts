import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { servesVersion } from '../../src/bus/index.js';
import { unknownFields } from '../../src/bus/unknown-fields.js';
import { CofferError, isTransientError } from '../../src/common/errors.js';

// The rules the rpc layer applies at the receiving edge; the transport suite checks them over
// both transports, these pin their edges.

describe('servesVersion', () => {
  it('serves its own and older minor versions of its major version only', () => {
    assert.equal(servesVersion('1.3', '1.0'), true);
    assert.equal(servesVersion('1.3', '1.3'), true);
    assert.equal(servesVersion('1.3', '1.4'), false);
    assert.equal(servesVersion('1.10', '1.9'), true, 'minor versions compare as numbers');
    assert.equal(servesVersion('2.0', '1.0'), false);
    assert.equal(servesVersion('1.0', '2.0'), false);
    assert.equal(servesVersion('1.0', '1'), false);
    assert.equal(servesVersion('1.0', '1.0.1'), false);
  });
});

describe('unknownFields', () => {
  it('names what the schema did not keep, and nothing a default added', () => {
    assert.deepEqual(unknownFields({ a: 1, b: { c: [{ d: 1, e: 2 }] } }, { a: 1, b: { c: [{ d: 1 }] }, added: true }), ['b.c[0].e']);
    assert.deepEqual(unknownFields({ a: null }, { a: null }), []);
    assert.deepEqual(unknownFields([{ x: 1 }], [{}]), ['[0].x']);
  });
});

describe('isTransientError', () => {
  it('takes bus and guest timeouts and unreachable services, through causes, and nothing else', () => {
    assert.equal(isTransientError(new CofferError('BusTimeout', 'late')), true);
    assert.equal(isTransientError(new CofferError('GuestTimeout', 'late')), true);
    assert.equal(isTransientError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), true);
    const wrapped = new CofferError('Internal', 'state store', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) });
    assert.equal(isTransientError(wrapped), true);
    assert.equal(isTransientError(new CofferError('EngineError', 'initdb failed')), false);
    assert.equal(isTransientError(new CofferError('BadRequest', 'no')), false);
    assert.equal(isTransientError(new Error('plain')), false);
    assert.equal(isTransientError('text'), false);
  });
});
