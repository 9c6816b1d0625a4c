// test-lane: parallel (its own Keystone and coffer serve on free ports, a loopback range and a data directory of its own)
// test-long (minutes: a Keystone, coffer serve and many openstack commands)
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort, startRole, type RoleProcess } from '../support/coffer-process.js';
import { startKeystone, type KeystoneServer } from '../support/keystone-server.js';
import { describeRun, lastJson, openstack, troveCli, type ClientResult, type Credentials } from '../support/openstack-clients.js';
import { makeDataDir } from '../support/temp-dir.js';
import { eventually } from '../support/wait.js';

// Coffer behind a real Keystone (Debian's keystone, started by this test) instead of its own
// identity, driven by Debian's `openstack` and `trove` clients that know only Keystone's URL:
// they find Coffer in Keystone's catalog, Coffer validates their tokens with Keystone and takes
// the project and roles from it.

const servicePassword = 'Coffer-service-pass-1234';
const alicePassword = 'Alice-member-pass-1234';
const bobPassword = 'Bob-member-pass-1234';
const instanceName = 'ks-pg';
/** short, so that the revocation step need not wait long; production keeps the default 300 */
const tokenCacheSeconds = 3;
const waitMs = 120_000;
/** a guard against a hung step, not a measure: client commands take seconds each on a busy machine */
const stepMs = 600_000;

let keystone: KeystoneServer;
let serve: RoleProcess | undefined;
let dataDir: { path: string; remove: () => Promise<void> };
let baseUrl = '';
let admin: Credentials;
let alice: Credentials;
let bob: Credentials;
let alphaId = '';
let instanceId = '';

before(async () => {
  keystone = await startKeystone();
  await keystone.addUser('service', 'coffer', servicePassword, 'admin');
  ({ projectId: alphaId } = await keystone.addUser('alpha', 'alice', alicePassword, 'member'));
  await keystone.addUser('beta', 'bob', bobPassword, 'member');
  const authUrl = `${keystone.url}/v3`;
  admin = { authUrl, user: 'admin', password: keystone.adminPassword, project: 'admin' };
  alice = { authUrl, user: 'alice', password: alicePassword, project: 'alpha' };
  bob = { authUrl, user: 'bob', password: bobPassword, project: 'beta' };

  dataDir = await makeDataDir('coffer-e2e-ks');
  const passwordFile = join(dataDir.path, 'keystone-password');
  await writeFile(passwordFile, `${servicePassword}\n`, { mode: 0o600 });
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  serve = startRole([
    'serve', '--port', String(port), '--data-dir', dataDir.path,
    '--address-pool', '127.89.0.0/24', '--warm-pool-size', '1',
    '--keystone-url', authUrl, '--keystone-user', 'coffer', '--keystone-password-file', passwordFile,
    '--keystone-token-cache-time', String(tokenCacheSeconds),
  ]);
  await serve.waitFor(/serving the Trove API/, 120_000);
});

after(async () => {
  await serve?.stop();
  await dataDir?.remove();
  await keystone?.stop();
});

async function os(c: Credentials, args: string[]): Promise<ClientResult> {
  const r = await openstack(c, args);
  assert.equal(r.code, 0, describeRun(['openstack', ...args], r));
  return r;
}

async function osJson<T = any>(c: Credentials, args: string[]): Promise<T> {
  return lastJson<T>((await os(c, [...args, '-f', 'json'])).stdout);
}

describe('OpenStack clients against Coffer behind a real Keystone', { concurrency: 1 }, () => {
  test('Coffer registered itself in the catalog; its own /identity points at Keystone', { timeout: stepMs }, async () => {
    assert.match(serve!.output(), new RegExp(`identity: ${keystone.url}/v3`));
    assert.doesNotMatch(serve!.output(), /Created user "admin"/, 'no built-in admin is made');
    const endpoints = await osJson(admin, ['endpoint', 'list', '--service', 'database']);
    assert.deepEqual(endpoints.map((e: any) => e.Interface).sort(), ['admin', 'internal', 'public']);
    for (const e of endpoints) {
      assert.equal(e.URL, `${baseUrl}/v1.0/$(tenant_id)s`);
      assert.equal(e['Service Name'], 'trove');
      assert.equal(e.Region, 'RegionOne');
    }
    const ownIdentity = await fetch(`${baseUrl}/identity/v3/auth/tokens`, { method: 'POST' });
    assert.equal(ownIdentity.status, 404);
    const body = (await ownIdentity.json()) as any;
    assert.equal(body.error.code, 404);
    assert.match(body.error.message, new RegExp(`Keystone at ${keystone.url}`));
  });

  test('a member of project alpha: openstack database instance create, until ACTIVE', { timeout: stepMs }, async () => {
    const versions = await osJson(alice, ['datastore', 'version', 'list', 'postgresql']);
    const created = await osJson(alice, [
      'database', 'instance', 'create', instanceName,
      '--flavor', 'm1.small', '--size', '1', '--datastore', 'postgresql', '--datastore-version', versions[0].Name,
    ]);
    assert.equal(created.status, 'BUILD');
    instanceId = created.id;
    const view = await eventually(
      'the instance to be ACTIVE',
      () => osJson(alice, ['database', 'instance', 'show', instanceId]),
      (v: any) => {
        assert.notEqual(v.status, 'ERROR', JSON.stringify(v));
        return v.status === 'ACTIVE';
      },
      waitMs,
    );
    assert.equal(view.name, instanceName);
  });

  test('alice lists it with openstack and trove; bob of project beta sees nothing of it', { timeout: stepMs }, async () => {
    const listed = await osJson(alice, ['database', 'instance', 'list']);
    assert.deepEqual(listed.map((i: any) => i.ID), [instanceId]);
    const legacy = await troveCli(alice, ['list']);
    assert.equal(legacy.code, 0, describeRun(['trove', 'list'], legacy));
    assert.deepEqual(lastJson(legacy.stdout).map((i: any) => [i.id, i.name, i.status]), [[instanceId, instanceName, 'ACTIVE']]);

    assert.deepEqual(await osJson(bob, ['database', 'instance', 'list']), []);
    const shown = await openstack(bob, ['database', 'instance', 'show', instanceId]);
    assert.notEqual(shown.code, 0, 'bob cannot show alice\'s instance');
    assert.match(shown.stderr, new RegExp(`No instance with a name or ID of '${instanceId}' exists`));
  });

  test('a mgmt call: refused to the member, done by the admin with Keystone\'s project id', { timeout: stepMs }, async () => {
    const refused = await openstack(alice, ['database', 'quota', 'update', alphaId, 'instances', '5']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /HTTP 401/);
    assert.deepEqual(await osJson(admin, ['database', 'quota', 'update', alphaId, 'instances', '5']), { instances: 5 });
    const quotas = await osJson(alice, ['database', 'quota', 'show', alphaId]);
    const instances = quotas.find((q: any) => q.Resource === 'instances');
    assert.equal(instances.Limit, 5);
    assert.equal(instances['In Use'], 1);
  });

  test('a token revoked in Keystone stops working within the cache time', { timeout: stepMs }, async () => {
    const issued = await osJson(alice, ['token', 'issue']);
    const token: string = issued.id;
    const list = () => fetch(`${baseUrl}/v1.0/${alphaId}/instances`, { headers: { 'x-auth-token': token } });
    assert.equal((await list()).status, 200);
    await os(alice, ['token', 'revoke', token]);
    // Coffer validated the token before the revocation and may trust that answer for the cache
    // time; once that has passed, the very next request must be refused.
    await new Promise((resolve) => setTimeout(resolve, (tokenCacheSeconds + 1) * 1000));
    const refused = await list();
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('www-authenticate'), `Keystone uri="${keystone.url}"`);
  });

  test('alice deletes it with openstack database instance delete, until it is gone', { timeout: stepMs }, async () => {
    await os(alice, ['database', 'instance', 'delete', instanceId]);
    await eventually('the instance to be gone', () => osJson(alice, ['database', 'instance', 'list']), (l: any[]) => l.length === 0, waitMs);
  });
});
