import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { maxBodyBytes } from '../../src/api/json-body.js';
import { adminSession, json, startHarness, type Harness, type Session } from './api-harness.js';

// Every request body has a size limit, whatever its content type: the JSON ones Fastify reads,
// and those of other types that the API drains and ignores. Over it: 413 in the API's shapes.

let h: Harness;
let admin: Session;

before(async () => {
  h = await startHarness();
  admin = await adminSession(h.app);
});
after(() => h.close());

const big = 'x'.repeat(maxBodyBytes + 1);
const types = [
  'application/json',
  'application/vnd.openstack.trove+json;version=1.0',
  'text/plain',
  'application/octet-stream',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
];

for (const type of types) {
  test(`a body over ${maxBodyBytes} bytes as ${type} gets 413 in Trove's shape and Keystone's`, async () => {
    const trove = await h.app.inject({
      method: 'POST',
      url: `/v1.0/${admin.projectId}/instances`,
      headers: { 'x-auth-token': admin.token, 'content-type': type },
      payload: big,
    });
    assert.equal(trove.statusCode, 413, trove.body);
    assert.equal(json(trove).overLimit.code, 413);
    assert.match(json(trove).overLimit.message, /too large/i);
    const identity = await h.app.inject({ method: 'POST', url: '/identity/v3/auth/tokens', headers: { 'content-type': type }, payload: big });
    assert.equal(identity.statusCode, 413, identity.body);
    assert.equal(json(identity).error.code, 413);
  });
}

test('a body without a content type is limited too', async () => {
  const res = await h.app.inject({ method: 'POST', url: `/v1.0/${admin.projectId}/instances`, headers: { 'x-auth-token': admin.token }, payload: Buffer.from(big) });
  assert.equal(res.statusCode, 413, res.body);
});

test('a body of other type under the limit is still ignored, as before', async () => {
  const res = await h.app.inject({
    method: 'POST',
    url: `/v1.0/${admin.projectId}/instances`,
    headers: { 'x-auth-token': admin.token, 'content-type': 'text/plain' },
    payload: 'x'.repeat(1000),
  });
  assert.equal(res.statusCode, 400, res.body);
});
