import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Caller, CallerValidator } from '../../src/api/auth-context.js';
import { CofferError } from '../../src/common/index.js';
import { json, startHarness, type Harness } from './api-harness.js';

// The API with an external Keystone in place of its identity, in process. Keystone itself runs
// in keystone.int.test.ts and the e2e test; here a table of tokens stands in for its answers, to
// check what the API does with them: Keystone's project ids in URLs and quotas, `admin` as
// Coffer's admin, /identity switched off, and a Keystone that cannot be reached.

const keystoneUrl = 'http://keystone.test:5000';
const alphaId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const betaId = 'f0e1d2c3b4a5968778695a4b3c2d1e0f';
const callers: Record<string, Caller> = {
  'token-alice': { userId: 'u-alice', projectId: alphaId, roles: ['member', 'reader'] },
  'token-admin': { userId: 'u-admin', projectId: betaId, roles: ['reader', 'Admin', 'member'] },
};
const tokenTable: CallerValidator = { validate: async (token) => (token === undefined ? undefined : callers[token]) };

let h: Harness;
let unreachable: Harness;

before(async () => {
  h = await startHarness({ externalIdentity: { callers: tokenTable, url: keystoneUrl } });
  const down: CallerValidator = {
    validate: async () => {
      throw new CofferError('IdentityUnavailable', `Keystone at ${keystoneUrl} cannot be reached: connect ECONNREFUSED`);
    },
  };
  unreachable = await startHarness({ externalIdentity: { callers: down, url: keystoneUrl } });
});

after(async () => {
  await h?.close();
  await unreachable?.close();
});

const get = (harness: Harness, url: string, token?: string) =>
  harness.app.inject({ method: 'GET', url, headers: token === undefined ? {} : { 'x-auth-token': token } });

describe('the API behind an external Keystone', () => {
  test('/identity answers 404 in Keystone\'s shape and names the Keystone to use', async () => {
    for (const [method, url] of [['GET', '/identity/v3'], ['POST', '/identity/v3/auth/tokens'], ['GET', '/identity'], ['GET', '/identity/v3/projects']] as const) {
      const res = await h.app.inject({ method, url });
      assert.equal(res.statusCode, 404, `${method} ${url}`);
      const body = json(res);
      assert.equal(body.error.code, 404);
      assert.equal(body.error.title, 'Not Found');
      assert.match(body.error.message, /uses the Keystone at http:\/\/keystone\.test:5000.*OS_AUTH_URL=http:\/\/keystone\.test:5000\/v3/);
    }
  });

  test('a token Keystone does not know is 401, pointing at Keystone', async () => {
    for (const token of [undefined, 'token-unknown']) {
      const res = await get(h, `/v1.0/${alphaId}/instances`, token);
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers['www-authenticate'], `Keystone uri="${keystoneUrl}"`);
      assert.equal(json(res).error.message, 'The request you have made requires authentication.');
    }
  });

  test('the Keystone project is the tenant: its own URL works, another project\'s is 403', async () => {
    assert.equal((await get(h, `/v1.0/${alphaId}/instances`, 'token-alice')).statusCode, 200);
    const other = await get(h, `/v1.0/${betaId}/instances`, 'token-alice');
    assert.equal(other.statusCode, 403);
    assert.equal(json(other).forbidden.message, `User with tenant id ${alphaId} cannot access this resource.`);
  });

  test('the admin role (any case) is Coffer\'s admin; a member is refused mgmt calls with 401', async () => {
    const refused = await h.app.inject({
      method: 'PUT',
      url: `/v1.0/${alphaId}/mgmt/quotas/${alphaId}`,
      headers: { 'x-auth-token': 'token-alice' },
      payload: { quotas: { instances: 3 } },
    });
    assert.equal(refused.statusCode, 401);

    const set = await h.app.inject({
      method: 'PUT',
      url: `/v1.0/${betaId}/mgmt/quotas/${alphaId}`,
      headers: { 'x-auth-token': 'token-admin' },
      payload: { quotas: { instances: 3 } },
    });
    assert.equal(set.statusCode, 200, set.body);
    const shown = await get(h, `/v1.0/${alphaId}/mgmt/quotas/${alphaId}`, 'token-alice');
    assert.equal(shown.statusCode, 200);
    assert.equal(json(shown).quotas.find((q: any) => q.resource === 'instances').limit, 3);
    assert.equal((await get(h, `/v1.0/${betaId}/mgmt/instances?project_id=${alphaId}`, 'token-admin')).statusCode, 200);
  });

  test('a Keystone that cannot be reached is 503 in Trove\'s shape, not 401', async () => {
    const res = await get(unreachable, `/v1.0/${alphaId}/instances`, 'token-alice');
    assert.equal(res.statusCode, 503);
    assert.match(json(res).serviceUnavailable.message, /cannot be reached/);
  });
});
