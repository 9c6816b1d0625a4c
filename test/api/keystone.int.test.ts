// test-lane: parallel (its own Keystone on a free port)
// test-long (over a minute: its own Keystone)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { registerEndpoints } from '../../src/api/keystone/endpoint-registration.js';
import { KeystoneCallers } from '../../src/api/keystone/keystone-callers.js';
import { KeystoneClient, type KeystoneClientOptions } from '../../src/api/keystone/keystone-client.js';
import { silentLogger } from '../../src/common/logger.js';
import { startKeystone, type KeystoneServer } from '../support/keystone-server.js';

// Coffer's side of an external Keystone against Debian's real keystone: the catalog entry is
// registered once however often Coffer starts (and follows a changed URL), and tokens are
// validated as keystonemiddleware does, with the cache deciding how long a revoked one lasts.

const servicePassword = 'Coffer-service-pass-1234';
const alicePassword = 'Alice-member-pass-1234';

let keystone: KeystoneServer;
let options: KeystoneClientOptions;
let adminToken = '';
let aliceProjectId = '';
let aliceUserId = '';

before(async () => {
  keystone = await startKeystone();
  await keystone.addUser('service', 'coffer', servicePassword, 'admin');
  ({ projectId: aliceProjectId, userId: aliceUserId } = await keystone.addUser('alpha', 'alice', alicePassword, 'member'));
  adminToken = (await keystone.issueToken('admin', keystone.adminPassword, 'admin')).token;
  options = {
    url: `${keystone.url}/v3/`,
    username: 'coffer',
    password: servicePassword,
    userDomainId: 'default',
    projectName: 'service',
    projectDomainId: 'default',
    region: 'RegionOne',
    interface: 'internal',
  };
});

after(async () => {
  await keystone?.stop();
});

async function databaseEndpoints(): Promise<Array<{ id: string; interface: string; url: string; region_id: string }>> {
  const services = (await keystone.call('GET', '/v3/services?type=database', { token: adminToken })).body.services;
  assert.equal(services.length, 1, `one database service: ${JSON.stringify(services)}`);
  assert.equal(services[0].name, 'trove');
  const reply = await keystone.call('GET', `/v3/endpoints?service_id=${services[0].id}`, { token: adminToken });
  return reply.body.endpoints;
}

describe('catalog registration', { concurrency: 1 }, () => {
  test('the first start creates the database service and its three endpoints; a restart changes nothing', async () => {
    const first = await registerEndpoints(new KeystoneClient(options, silentLogger()), { publicUrl: 'http://127.0.0.1:8779/', region: 'RegionOne' }, silentLogger());
    assert.ok(first.changes.some((c) => c.startsWith('created service')), first.changes.join('; '));
    const endpoints = await databaseEndpoints();
    assert.deepEqual(endpoints.map((e) => e.interface).sort(), ['admin', 'internal', 'public']);
    for (const e of endpoints) {
      assert.equal(e.url, 'http://127.0.0.1:8779/v1.0/$(tenant_id)s');
      assert.equal(e.region_id, 'RegionOne');
    }

    // a new process, a new service token: what is there is found, not created again
    const again = await registerEndpoints(new KeystoneClient(options, silentLogger()), { publicUrl: 'http://127.0.0.1:8779', region: 'RegionOne' }, silentLogger());
    assert.deepEqual(again.changes, []);
    assert.equal(again.serviceId, first.serviceId);
    assert.deepEqual(again.endpoints, first.endpoints);
    assert.deepEqual((await databaseEndpoints()).map((e) => e.id).sort(), endpoints.map((e) => e.id).sort());
  });

  test('a changed public URL updates the endpoints in place, and a duplicate left by a racing start is removed', async () => {
    const before = await databaseEndpoints();
    const publicOne = before.find((e) => e.interface === 'public')!;
    const service = (await keystone.call('GET', '/v3/services?type=database', { token: adminToken })).body.services[0];
    const extra = await keystone.call('POST', '/v3/endpoints', {
      token: adminToken,
      body: { endpoint: { service_id: service.id, interface: 'public', region_id: 'RegionOne', url: 'http://elsewhere/v1.0/$(tenant_id)s' } },
    });
    assert.equal(extra.status, 201);

    const moved = await registerEndpoints(new KeystoneClient(options, silentLogger()), { publicUrl: 'https://db.example.test', region: 'RegionOne' }, silentLogger());
    const after = await databaseEndpoints();
    assert.equal(after.length, 3, JSON.stringify(after));
    for (const e of after) assert.equal(e.url, 'https://db.example.test/v1.0/$(tenant_id)s');
    const keptPublic = [publicOne.id, extra.body.endpoint.id].sort()[0];
    assert.equal(moved.endpoints.public, keptPublic);
    assert.ok(after.some((e) => e.id === keptPublic));
    assert.ok(moved.changes.some((c) => c.startsWith('deleted duplicate public endpoint')), moved.changes.join('; '));
  });

  test('a service user without the admin role cannot register, and says what it needs', async () => {
    await keystone.addUser('service', 'coffer-reader', servicePassword, 'member');
    const client = new KeystoneClient({ ...options, username: 'coffer-reader' }, silentLogger());
    await assert.rejects(
      registerEndpoints(client, { publicUrl: 'http://127.0.0.1:8779', region: 'RegionOne' }, silentLogger()),
      (err: any) => err.code === 'IdentityUnavailable' && /403/.test(err.message) && /needs the admin role/.test(err.message),
    );
  });

  test('a wrong service password fails the sign-in with IdentityUnavailable', async () => {
    const client = new KeystoneClient({ ...options, password: 'not-the-password' }, silentLogger());
    await assert.rejects(client.signIn(), (err: any) => err.code === 'IdentityUnavailable' && /refused Coffer's service user "coffer"/.test(err.message));
  });
});

describe('token validation', { concurrency: 1 }, () => {
  test('a project-scoped token gives its user, project and roles; a made-up one gives nothing', async () => {
    const callers = new KeystoneCallers(new KeystoneClient(options, silentLogger()), { cacheSeconds: 300, cacheSize: 100 }, silentLogger());
    const { token } = await keystone.issueToken('alice', alicePassword, 'alpha');
    const caller = await callers.validate(token, new Date());
    assert.equal(caller?.userId, aliceUserId);
    assert.equal(caller?.projectId, aliceProjectId);
    // Keystone adds the roles `member` implies
    assert.deepEqual([...caller!.roles].sort(), ['member', 'reader']);
    assert.equal(await callers.validate('gAAAAABmadeup', new Date()), undefined);
    assert.equal(await callers.validate('two words', new Date()), undefined);
    assert.equal(await callers.validate(undefined, new Date()), undefined);
  });

  test('a revoked token is still taken from the cache until the cache time has passed, then refused', async () => {
    const cacheSeconds = 30;
    const callers = new KeystoneCallers(new KeystoneClient(options, silentLogger()), { cacheSeconds, cacheSize: 100 }, silentLogger());
    const { token } = await keystone.issueToken('alice', alicePassword, 'alpha');
    const start = new Date();
    assert.equal((await callers.validate(token, start))?.userId, aliceUserId);

    const revoked = await keystone.call('DELETE', '/v3/auth/tokens', { token: adminToken, headers: { 'x-subject-token': token } });
    assert.equal(revoked.status, 204);
    const direct = await keystone.call('GET', '/v3/auth/tokens', { token: adminToken, headers: { 'x-subject-token': token } });
    assert.equal(direct.status, 404, 'Keystone itself refuses it at once');

    const withinCacheTime = new Date(start.getTime() + (cacheSeconds - 1) * 1000);
    assert.equal((await callers.validate(token, withinCacheTime))?.userId, aliceUserId, 'still cached');
    const afterCacheTime = new Date(start.getTime() + (cacheSeconds + 1) * 1000);
    assert.equal(await callers.validate(token, afterCacheTime), undefined, 'asked again, and refused');
  });

  test('with a cache time of 0 every request asks Keystone, so a revocation counts at once', async () => {
    const callers = new KeystoneCallers(new KeystoneClient(options, silentLogger()), { cacheSeconds: 0, cacheSize: 100 }, silentLogger());
    const { token } = await keystone.issueToken('alice', alicePassword, 'alpha');
    assert.equal((await callers.validate(token, new Date()))?.projectId, aliceProjectId);
    await keystone.call('DELETE', '/v3/auth/tokens', { token: adminToken, headers: { 'x-subject-token': token } });
    assert.equal(await callers.validate(token, new Date()), undefined);
  });

  test('when Keystone revokes the service token, Coffer signs in again and the validation still answers', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const callers = new KeystoneCallers(new KeystoneClient(options, logger), { cacheSeconds: 0, cacheSize: 100 }, logger);
    const { token } = await keystone.issueToken('alice', alicePassword, 'alpha');
    assert.equal((await callers.validate(token, new Date()))?.userId, aliceUserId, 'the service user is signed in');

    // Disabling a user revokes its tokens (a Keystone revocation event); enabling it again lets
    // new ones work. Revocation events count whole seconds: one is waited out.
    const coffer = (await keystone.call('GET', '/v3/users?name=coffer', { token: adminToken })).body.users[0];
    for (const enabled of [false, true]) {
      const patched = await keystone.call('PATCH', `/v3/users/${coffer.id}`, { token: adminToken, body: { user: { enabled } } });
      assert.equal(patched.status, 200);
    }
    await new Promise((resolve) => setTimeout(resolve, 1100));

    assert.equal((await callers.validate(token, new Date()))?.userId, aliceUserId, 'validated with a new service token');
    assert.equal(lines.filter((l) => l.includes('Keystone refused the service token; authenticating again')).length, 1, lines.join(''));
  });

  test('a Keystone that cannot be reached is IdentityUnavailable (503), not a refused token', async () => {
    const client = new KeystoneClient({ ...options, url: 'http://127.0.0.1:9/v3' }, silentLogger());
    const callers = new KeystoneCallers(client, { cacheSeconds: 300, cacheSize: 100 }, silentLogger());
    await assert.rejects(callers.validate('gAAAAABanytoken', new Date()), (err: any) => err.code === 'IdentityUnavailable' && /cannot be reached/.test(err.message));
  });
});
