import assert from 'node:assert/strict';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { newTestCa } from '../support/test-ca.js';
import { startHarness, type Harness } from './api-harness.js';

// The API over HTTPS from a certificate and key (as --tls-cert-file/--tls-key-file give them),
// reached by a real TLS client that verifies the certificate; the links it answers say https.

let h: Harness;
let ca: string;
let port: number;

before(async () => {
  const authority = await newTestCa();
  const material = await authority.issue({ address: '127.0.0.1', validityDays: 1 });
  ca = material.caCertificate;
  h = await startHarness({ https: { cert: material.certificate, key: material.privateKey }, publicUrl: 'https://127.0.0.1:8779' });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  port = (h.app.server.address() as AddressInfo).port;
});

after(async () => {
  await h?.close();
});

function get(path: string, trusted: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca: trusted, rejectUnauthorized: true }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('serves the identity discovery over verified HTTPS, with https links', async () => {
  const res = await get('/identity/v3', ca);
  assert.equal(res.status, 200);
  const links = JSON.stringify(JSON.parse(res.body));
  assert.match(links, /"https:\/\/127\.0\.0\.1:8779\/identity\/v3\/?"/);
  assert.doesNotMatch(links, /http:\/\//);
});

test('is refused by a client that does not trust its CA, and speaks no plain HTTP', async () => {
  const stranger = await newTestCa();
  await assert.rejects(get('/identity/v3', stranger.certificate), /certificate/);
  const plain = await fetch(`http://127.0.0.1:${port}/identity/v3`).then(
    (res) => res.status,
    () => 'refused',
  );
  assert.notEqual(plain, 200);
});
