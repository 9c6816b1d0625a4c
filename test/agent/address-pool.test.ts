import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AddressPool } from '../../src/agent/index.js';

const isCode = (code: string) => (err: Error & { code?: string }) => err.code === code;

describe('AddressPool', () => {
  it('hands out the lowest free address, skipping .0, .1 and .255 of every /24', () => {
    const pool = new AddressPool('127.88.0.0/23');
    const first = pool.allocateNow('a');
    assert.equal(first, '127.88.0.2');
    for (let i = 0; i < 252; i++) pool.allocateNow(`fill-${i}`);
    assert.equal(pool.addressOf('fill-251'), '127.88.0.254');
    assert.equal(pool.allocateNow('next'), '127.88.1.2');
  });

  it('gives an instance the address it already has', async () => {
    const pool = new AddressPool('127.88.0.0/24');
    const address = await pool.allocate('a');
    assert.equal(await pool.allocate('a'), address);
    assert.equal(pool.allocateNow('a'), address);
  });

  it('never gives one address to two concurrent allocations', async () => {
    const pool = new AddressPool('127.88.0.0/24');
    const slowProbe = () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 5));
    const addresses = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.allocate(`i${i}`, slowProbe)));
    assert.equal(new Set(addresses).size, 20);
  });

  it('frees an address on release, for the next allocation', () => {
    const pool = new AddressPool('127.88.0.0/24');
    pool.allocateNow('a');
    const b = pool.allocateNow('b');
    pool.allocateNow('c');
    pool.release('b');
    assert.equal(pool.isAllocated(b), false);
    assert.equal(pool.allocateNow('d'), b);
  });

  it('skips addresses something else uses, and gives up when a whole run of them is busy', async () => {
    const pool = new AddressPool('127.88.0.0/24');
    assert.equal(await pool.allocate('a', async (address) => address !== '127.88.0.2'), '127.88.0.3');
    await assert.rejects(pool.allocate('b', async () => false), isCode('NoHostAvailable'));
    assert.equal(pool.addressOf('b'), undefined);
  });

  it('reserves the addresses of re-adopted instances and refuses a duplicate', () => {
    const pool = new AddressPool('127.88.0.0/24');
    pool.reserve('a', '127.88.0.2');
    pool.reserve('outside', '127.99.0.9');
    assert.equal(pool.allocateNow('b'), '127.88.0.3');
    assert.throws(() => pool.reserve('c', '127.88.0.2'), isCode('Conflict'));
  });

  it('reports an exhausted pool', () => {
    const pool = new AddressPool('127.88.0.0/30');
    assert.equal(pool.allocateNow('a'), '127.88.0.2');
    assert.equal(pool.allocateNow('b'), '127.88.0.3');
    assert.throws(() => pool.allocateNow('c'), isCode('NoHostAvailable'));
  });

  it('accepts only pools inside 127.0.0.0/8', () => {
    for (const bad of ['10.0.0.0/24', '127.0.0.0/7', '127.1.2.3', 'x/24', '127.300.0.0/16', '127.0.0.0/31']) {
      assert.throws(() => new AddressPool(bad), isCode('BadRequest'), bad);
    }
    assert.equal(new AddressPool('127.77.3.9/16').cidr, '127.77.0.0/16');
  });
});
