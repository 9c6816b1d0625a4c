import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeErrorReply, keystoneErrorReply, troveErrorReply } from '../../src/api/error-replies.js';
import { errorStatus } from '../../src/api/error-status.js';
import { CofferError, errorCodes } from '../../src/common/errors.js';

const ctx = { requestId: 'req-1', identityUri: 'http://h/identity' };

test('every error code in the catalogue has an HTTP status and a Trove fault name', () => {
  for (const code of errorCodes) {
    const entry = errorStatus[code];
    assert.ok(entry, `no entry for ${code}`);
    assert.ok(entry.status >= 400 && entry.status < 600, `${code} status ${entry.status}`);
    assert.match(entry.fault, /^[a-z][A-Za-z]+$/);
  }
  assert.deepEqual(Object.keys(errorStatus).sort(), [...errorCodes].sort());
});

test("Trove's surprising statuses are kept (reference 1.4)", () => {
  assert.equal(errorStatus.DatastoreVersionNotFound.status, 400);
  assert.equal(errorStatus.FlavorNotFound.status, 400);
  assert.equal(errorStatus.AdminRequired.status, 401);
  assert.equal(errorStatus.PolicyNotAuthorized.status, 403);
  assert.equal(errorStatus.OverLimit.fault, 'overLimit');
  assert.equal(errorStatus.UnprocessableEntity.status, 422);
});

test('a Trove error body is {"<fault>":{"code","message"}}', () => {
  const out = troveErrorReply(new CofferError('UnprocessableEntity', 'not now'), ctx);
  assert.equal(out.status, 422);
  assert.deepEqual(out.body, { unprocessableEntity: { code: 422, message: 'not now' } });
});

test('an unexpected error is a 500 instanceFault that reveals nothing but the request id', () => {
  const out = troveErrorReply(new Error('password=hunter2 at /srv/db.sqlite'), ctx);
  assert.equal(out.status, 500);
  assert.equal(out.internal, true);
  assert.doesNotMatch(JSON.stringify(out.body), /hunter2|sqlite/);
  assert.match(JSON.stringify(out.body), /instanceFault.*req-1/);
  const internal = troveErrorReply(new CofferError('Internal', 'secret detail'), ctx);
  assert.doesNotMatch(JSON.stringify(internal.body), /secret/);
});

test('a token failure is answered in Keystone shape with WWW-Authenticate, even under /v1.0', () => {
  const out = troveErrorReply(new CofferError('Unauthorized', 'whatever'), ctx);
  assert.equal(out.status, 401);
  assert.equal(out.headers['www-authenticate'], 'Keystone uri="http://h/identity"');
  assert.deepEqual(out.body, {
    error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
  });
});

test('Keystone errors carry code, title and message', () => {
  const out = keystoneErrorReply(new CofferError('Conflict', 'dup'), ctx);
  assert.deepEqual(out.body, { error: { code: 409, title: 'Conflict', message: 'dup' } });
  const crash = keystoneErrorReply(new TypeError('x is undefined'), ctx);
  assert.equal(crash.status, 500);
  assert.doesNotMatch(JSON.stringify(crash.body), /undefined/);
});

test('over HTTP, a failure of the state store is a 500 instanceFault naming only the request id', async () => {
  const { adminSession, json, startHarness } = await import('./api-harness.js');
  const h = await startHarness();
  const admin = await adminSession(h.app);
  await h.store.close();
  try {
    const res = await h.app.inject({ method: 'GET', url: `/v1.0/${admin.projectId}/flavors`, headers: { 'x-auth-token': admin.token } });
    assert.equal(res.statusCode, 500);
    const requestId = String(res.headers['x-openstack-request-id']);
    assert.deepEqual(json(res), {
      instanceFault: {
        code: 500,
        message: `Internal Server Error. Please keep this ID to help us figure out what went wrong: (${requestId}).`,
      },
    });
  } finally {
    await h.app.close();
    await h.transport.close();
  }
});

test("Nova's error bodies: computeFault for its own failures and a 406, Trove's fault names otherwise", () => {
  const failed = computeErrorReply(new Error('password=hunter2 at /srv/db.sqlite'), ctx);
  assert.equal(failed.status, 500);
  assert.equal(failed.internal, true);
  assert.deepEqual(Object.keys(failed.body as object), ['computeFault']);
  assert.doesNotMatch(JSON.stringify(failed.body), /hunter2|sqlite/);
  assert.match(JSON.stringify(failed.body), /req-1/);
  const unavailable = computeErrorReply(new CofferError('BusUnavailable', 'bus down'), ctx);
  assert.deepEqual(unavailable.body, { serviceUnavailable: { code: 503, message: 'bus down' } });
  const tooNew = computeErrorReply(Object.assign(new Error('Version 2.99 is not supported by the API.'), { statusCode: 406 }), ctx);
  assert.deepEqual([tooNew.status, tooNew.body], [406, { computeFault: { code: 406, message: 'Version 2.99 is not supported by the API.' } }]);
  assert.deepEqual(computeErrorReply(new CofferError('NotFound', 'Instance x could not be found.'), ctx).body, {
    itemNotFound: { code: 404, message: 'Instance x could not be found.' },
  });
  assert.equal(computeErrorReply(new CofferError('Unauthorized', 'x'), ctx).headers['www-authenticate'], 'Keystone uri="http://h/identity"');
});
