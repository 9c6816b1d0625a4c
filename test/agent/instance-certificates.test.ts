import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { firstCertificateUseMs, instanceCertificates } from '../../src/agent/instance-certificates.js';
import type { TlsMaterial } from '../../src/guest/index.js';

// A new instance's certificate is signed beside its create, and its guest's first issue takes it;
// every other issue, and a first one past the hour (a prepare resent late), is signed then.

function material(name: string): TlsMaterial {
  return { certificate: `cert ${name}`, privateKey: `key ${name}`, caCertificate: 'ca' };
}

function fakeCa() {
  const asked: { address: string; validityDays: number }[] = [];
  return {
    asked,
    ca: {
      certificate: 'ca',
      issue: async (request: { address: string; validityDays: number }) => {
        asked.push(request);
        return material(`signed ${asked.length}`);
      },
    },
  };
}

describe('instance certificates', () => {
  it("gives the first issue the certificate signed at the create, and signs every later one then, for the instance's address", async () => {
    const { ca, asked } = fakeCa();
    const issuer = instanceCertificates({ ca, address: '127.77.0.9', validityDays: 90, first: Promise.resolve(material('early')) });
    assert.equal((await issuer.issue()).certificate, 'cert early');
    assert.deepEqual(asked, []);
    assert.equal((await issuer.issue()).certificate, 'cert signed 1');
    assert.equal((await issuer.issue()).certificate, 'cert signed 2');
    assert.deepEqual(asked, [
      { address: '127.77.0.9', validityDays: 90 },
      { address: '127.77.0.9', validityDays: 90 },
    ]);
    assert.equal(issuer.caCertificate, 'ca');
    assert.equal(issuer.renewBeforeMs, 30 * 86_400_000);
  });

  it('does not hand out the early certificate past the hour: the first issue then is signed then', async () => {
    const { ca, asked } = fakeCa();
    let clock = 1_000_000;
    const issuer = instanceCertificates({ ca, address: '127.77.0.9', validityDays: 90, first: Promise.resolve(material('early')), now: () => clock });
    clock += firstCertificateUseMs;
    assert.equal((await issuer.issue()).certificate, 'cert signed 1');
    assert.equal(asked.length, 1);
  });

  it('an early certificate whose signing failed fails the first issue only (the prepare reports it); the next is signed anew', async () => {
    const { ca } = fakeCa();
    const failed = Promise.reject(new Error('signing failed'));
    failed.catch(() => undefined);
    const issuer = instanceCertificates({ ca, address: '127.77.0.9', validityDays: 90, first: failed });
    await assert.rejects(issuer.issue(), /signing failed/);
    assert.equal((await issuer.issue()).certificate, 'cert signed 1');
  });

  it('without an early one (an adopted instance), every issue is signed then', async () => {
    const { ca, asked } = fakeCa();
    const issuer = instanceCertificates({ ca, address: '127.77.0.9', validityDays: 30 });
    assert.equal((await issuer.issue()).certificate, 'cert signed 1');
    assert.deepEqual(asked, [{ address: '127.77.0.9', validityDays: 30 }]);
    assert.equal(issuer.renewBeforeMs, 10 * 86_400_000);
  });
});
