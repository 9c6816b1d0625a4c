import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashToken } from '../../src/api/identity/token-service.js';
import { adminPassword, adminSession, json, login, memberSession, passwordAuth, startHarness, type Harness, type Session } from './api-harness.js';

let h: Harness;
let admin: Session;

before(async () => {
  h = await startHarness({ publicUrl: 'http://127.0.0.1:8779/', region: 'RegionTwo' });
  admin = await adminSession(h.app);
});
after(() => h.close());

const auth = (s: Session) => ({ 'x-auth-token': s.token });

describe('discovery', () => {
  test('the v3 document has a self link ending /identity/v3/', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/identity/v3' });
    assert.equal(res.statusCode, 200);
    const { version } = json(res);
    assert.equal(version.id, 'v3.14');
    assert.equal(version.status, 'stable');
    assert.equal(version.links[0].href, 'http://127.0.0.1:8779/identity/v3/');
  });

  test('the unversioned root lists v3 with 300 Multiple Choices, as Keystone does', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/identity' });
    assert.equal(res.statusCode, 300);
    assert.equal(json(res).versions.values[0].id, 'v3.14');
  });
});

describe('tokens', () => {
  test('password auth scoped by project name gives 201, X-Subject-Token and a catalog', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/identity/v3/auth/tokens', payload: passwordAuth('admin', adminPassword, 'admin') });
    assert.equal(res.statusCode, 201);
    const token = String(res.headers['x-subject-token']);
    assert.ok(token.length >= 40);
    const body = json(res).token;
    assert.deepEqual(body.methods, ['password']);
    assert.equal(body.user.name, 'admin');
    assert.deepEqual(body.user.domain, { id: 'default', name: 'Default' });
    assert.equal(body.project.name, 'admin');
    assert.match(body.project.id, /^[0-9a-f]{32}$/);
    assert.match(body.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.ok(Date.parse(body.expires_at) > Date.now() + 3600_000);
    assert.deepEqual(body.roles.map((r: { name: string }) => r.name), ['admin']);
    const database = body.catalog.find((s: { type: string }) => s.type === 'database');
    assert.deepEqual(
      database.endpoints.map((e: { interface: string }) => e.interface).sort(),
      ['admin', 'internal', 'public'],
    );
    for (const e of database.endpoints) {
      assert.equal(e.url, `http://127.0.0.1:8779/v1.0/${body.project.id}`);
      assert.equal(e.region, 'RegionTwo');
      assert.equal(e.region_id, 'RegionTwo');
    }
    const identity = body.catalog.find((s: { type: string }) => s.type === 'identity');
    assert.equal(identity.endpoints[0].url, 'http://127.0.0.1:8779/identity/v3');
    // Only the hash is stored.
    assert.ok(await h.store.tokens.get(hashToken(token)));
    assert.equal(await h.store.tokens.get(token), undefined);
  });

  test('user id and project id work as well as names', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/identity/v3/auth/tokens',
      payload: {
        auth: {
          identity: { methods: ['password'], password: { user: { id: admin.userId, password: adminPassword } } },
          scope: { project: { id: admin.projectId } },
        },
      },
    });
    assert.equal(res.statusCode, 201);
  });

  test('a wrong password, an unknown user or an unknown project is 401 in Keystone shape', async () => {
    for (const payload of [
      passwordAuth('admin', 'wrong', 'admin'),
      passwordAuth('nobody', adminPassword, 'admin'),
      passwordAuth('admin', adminPassword, 'no-such-project'),
    ]) {
      const res = await h.app.inject({ method: 'POST', url: '/identity/v3/auth/tokens', payload });
      assert.equal(res.statusCode, 401);
      assert.match(String(res.headers['www-authenticate']), /^Keystone uri=/);
      assert.deepEqual(Object.keys(json(res).error).sort(), ['code', 'message', 'title']);
      assert.equal(json(res).error.title, 'Unauthorized');
    }
  });

  test('without a scope the token is scoped to the default project; domain scope is refused', async () => {
    const unscoped = await h.app.inject({ method: 'POST', url: '/identity/v3/auth/tokens', payload: passwordAuth('admin', adminPassword) });
    assert.equal(unscoped.statusCode, 201);
    assert.equal(json(unscoped).token.project.id, admin.projectId);
    const domain = passwordAuth('admin', adminPassword) as { auth: Record<string, unknown> };
    domain.auth.scope = { domain: { id: 'default' } };
    const res = await h.app.inject({ method: 'POST', url: '/identity/v3/auth/tokens', payload: domain });
    assert.equal(res.statusCode, 401);
    assert.match(json(res).error.message, /project-scoped/);
  });

  test('a malformed body is 400 in Keystone shape', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/identity/v3/auth/tokens',
      headers: { 'content-type': 'application/json' },
      payload: '{"auth":',
    });
    assert.equal(res.statusCode, 400);
    assert.equal(json(res).error.code, 400);
    const missing = await h.app.inject({ method: 'POST', url: '/identity/v3/auth/tokens', payload: { auth: {} } });
    assert.equal(missing.statusCode, 400);
    assert.match(json(missing).error.message, /identity/);
  });

  test('token auth issues a new token that expires no later than the original', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/identity/v3/auth/tokens',
      payload: { auth: { identity: { methods: ['token'], token: { id: admin.token } } } },
    });
    assert.equal(res.statusCode, 201);
    const body = json(res).token;
    assert.equal(body.project.id, admin.projectId);
    assert.deepEqual(body.methods.sort(), ['password', 'token']);
    const original = await h.store.tokens.get(hashToken(admin.token));
    assert.ok(Date.parse(body.expires_at) <= original!.expiresAt.getTime());
  });

  test('GET validates a subject token; HEAD answers 200 without a body; ?nocatalog drops the catalog', async () => {
    const get = await h.app.inject({
      method: 'GET',
      url: '/identity/v3/auth/tokens',
      headers: { ...auth(admin), 'x-subject-token': admin.token },
    });
    assert.equal(get.statusCode, 200);
    assert.equal(get.headers['x-subject-token'], admin.token);
    assert.equal(json(get).token.project.id, admin.projectId);
    assert.ok(Array.isArray(json(get).token.catalog));
    const head = await h.app.inject({
      method: 'HEAD',
      url: '/identity/v3/auth/tokens',
      headers: { ...auth(admin), 'x-subject-token': admin.token },
    });
    assert.equal(head.statusCode, 200);
    assert.equal(head.body, '');
    const noCatalog = await h.app.inject({
      method: 'GET',
      url: '/identity/v3/auth/tokens?nocatalog',
      headers: { ...auth(admin), 'x-subject-token': admin.token },
    });
    assert.equal(json(noCatalog).token.catalog, undefined);
    const bogus = await h.app.inject({
      method: 'GET',
      url: '/identity/v3/auth/tokens',
      headers: { ...auth(admin), 'x-subject-token': 'nope' },
    });
    assert.equal(bogus.statusCode, 404);
    const noAuth = await h.app.inject({ method: 'GET', url: '/identity/v3/auth/tokens', headers: { 'x-subject-token': admin.token } });
    assert.equal(noAuth.statusCode, 401);
  });

  test('a non-admin may validate its own token only', async () => {
    const member = await memberSession(h);
    const own = await h.app.inject({
      method: 'GET',
      url: '/identity/v3/auth/tokens',
      headers: { ...auth(member), 'x-subject-token': member.token },
    });
    assert.equal(own.statusCode, 200);
    const other = await h.app.inject({
      method: 'GET',
      url: '/identity/v3/auth/tokens',
      headers: { ...auth(member), 'x-subject-token': admin.token },
    });
    assert.equal(other.statusCode, 403);
    assert.deepEqual(Object.keys(json(other).error).sort(), ['code', 'message', 'title']);
  });

  test('an expired token is 401 everywhere', async () => {
    const token = 'expired-token-for-test';
    await h.store.tokens.create({
      tokenHash: hashToken(token),
      userId: admin.userId,
      projectId: admin.projectId,
      methods: ['password'],
      auditId: 'a',
      issuedAt: new Date(Date.now() - 7200_000),
      expiresAt: new Date(Date.now() - 1000),
    });
    const trove = await h.app.inject({ method: 'GET', url: `/v1.0/${admin.projectId}/flavors`, headers: { 'x-auth-token': token } });
    assert.equal(trove.statusCode, 401);
    const identity = await h.app.inject({ method: 'GET', url: '/identity/v3/users', headers: { 'x-auth-token': token } });
    assert.equal(identity.statusCode, 401);
  });

  test('DELETE revokes a token', async () => {
    const victim = await login(h.app, 'admin', adminPassword, 'admin');
    const del = await h.app.inject({
      method: 'DELETE',
      url: '/identity/v3/auth/tokens',
      headers: { ...auth(admin), 'x-subject-token': victim.token },
    });
    assert.equal(del.statusCode, 204);
    const after = await h.app.inject({ method: 'GET', url: `/v1.0/${admin.projectId}/flavors`, headers: auth(victim) });
    assert.equal(after.statusCode, 401);
  });
});

describe('admin CRUD as openstack project/user/role commands drive it', () => {
  test('project create, find by name, show, update, and 409 on a duplicate', async () => {
    const create = await h.app.inject({
      method: 'POST',
      url: '/identity/v3/projects',
      headers: auth(admin),
      payload: { project: { name: 'team-a', description: 'A team', enabled: true } },
    });
    assert.equal(create.statusCode, 201);
    const project = json(create).project;
    assert.equal(project.name, 'team-a');
    assert.equal(project.domain_id, 'default');
    assert.equal(project.links.self, `http://127.0.0.1:8779/identity/v3/projects/${project.id}`);
    const dup = await h.app.inject({ method: 'POST', url: '/identity/v3/projects', headers: auth(admin), payload: { project: { name: 'team-a' } } });
    assert.equal(dup.statusCode, 409);
    assert.equal(json(dup).error.title, 'Conflict');
    // osc-lib's find_resource: GET by id (404), then list by name.
    const byId = await h.app.inject({ method: 'GET', url: '/identity/v3/projects/team-a', headers: auth(admin) });
    assert.equal(byId.statusCode, 404);
    assert.equal(json(byId).error.message, 'Could not find project: team-a.');
    const byName = await h.app.inject({ method: 'GET', url: '/identity/v3/projects?name=team-a', headers: auth(admin) });
    assert.deepEqual(json(byName).projects.map((p: { id: string }) => p.id), [project.id]);
    assert.ok('links' in json(byName));
    const patch = await h.app.inject({
      method: 'PATCH',
      url: `/identity/v3/projects/${project.id}`,
      headers: auth(admin),
      payload: { project: { description: 'renamed' } },
    });
    assert.equal(json(patch).project.description, 'renamed');
  });

  test('user create --project --password, role add, and the new user can log in to that project', async () => {
    const project = json(
      await h.app.inject({ method: 'POST', url: '/identity/v3/projects', headers: auth(admin), payload: { project: { name: 'team-b' } } }),
    ).project;
    const create = await h.app.inject({
      method: 'POST',
      url: '/identity/v3/users',
      headers: auth(admin),
      payload: { user: { name: 'alice', password: 'alice-pw', default_project_id: project.id, enabled: true } },
    });
    assert.equal(create.statusCode, 201);
    const user = json(create).user;
    assert.equal(user.default_project_id, project.id);
    assert.equal(user.password, undefined);
    assert.doesNotMatch(create.body, /alice-pw/);
    // No role yet: no token.
    const early = await h.app.inject({ method: 'POST', url: '/identity/v3/auth/tokens', payload: passwordAuth('alice', 'alice-pw', 'team-b') });
    assert.equal(early.statusCode, 401);

    const roles = json(await h.app.inject({ method: 'GET', url: '/identity/v3/roles?name=member', headers: auth(admin) })).roles;
    assert.equal(roles.length, 1);
    const roleUrl = `/identity/v3/projects/${project.id}/users/${user.id}/roles/${roles[0].id}`;
    assert.equal((await h.app.inject({ method: 'HEAD', url: roleUrl, headers: auth(admin) })).statusCode, 404);
    assert.equal((await h.app.inject({ method: 'PUT', url: roleUrl, headers: auth(admin) })).statusCode, 204);
    assert.equal((await h.app.inject({ method: 'HEAD', url: roleUrl, headers: auth(admin) })).statusCode, 204);

    const alice = await login(h.app, 'alice', 'alice-pw', 'team-b');
    assert.equal(alice.projectId, project.id);

    const listed = json(
      await h.app.inject({
        method: 'GET',
        url: `/identity/v3/role_assignments?user.id=${user.id}&scope.project.id=${project.id}&include_names`,
        headers: auth(admin),
      }),
    ).role_assignments;
    assert.equal(listed.length, 1);
    assert.equal(listed[0].role.name, 'member');
    assert.equal(listed[0].scope.project.id, project.id);
    const granted = json(
      await h.app.inject({ method: 'GET', url: `/identity/v3/projects/${project.id}/users/${user.id}/roles`, headers: auth(admin) }),
    ).roles;
    assert.deepEqual(granted.map((r: { name: string }) => r.name), ['member']);

    // Removing the last role invalidates the user's tokens.
    assert.equal((await h.app.inject({ method: 'DELETE', url: roleUrl, headers: auth(admin) })).statusCode, 204);
    const gone = await h.app.inject({ method: 'GET', url: `/v1.0/${alice.projectId}/flavors`, headers: auth(alice) });
    assert.equal(gone.statusCode, 401);
    assert.equal((await h.app.inject({ method: 'DELETE', url: roleUrl, headers: auth(admin) })).statusCode, 404);
  });

  test('user list by name, show, update password, duplicate name 409, delete', async () => {
    const created = json(
      await h.app.inject({ method: 'POST', url: '/identity/v3/users', headers: auth(admin), payload: { user: { name: 'bob', password: 'one' } } }),
    ).user;
    const dup = await h.app.inject({ method: 'POST', url: '/identity/v3/users', headers: auth(admin), payload: { user: { name: 'bob' } } });
    assert.equal(dup.statusCode, 409);
    const byName = json(await h.app.inject({ method: 'GET', url: '/identity/v3/users?name=bob', headers: auth(admin) })).users;
    assert.deepEqual(byName.map((u: { id: string }) => u.id), [created.id]);
    const show = await h.app.inject({ method: 'GET', url: `/identity/v3/users/${created.id}`, headers: auth(admin) });
    assert.equal(json(show).user.name, 'bob');
    const patch = await h.app.inject({
      method: 'PATCH',
      url: `/identity/v3/users/${created.id}`,
      headers: auth(admin),
      payload: { user: { password: 'two', email: 'bob@example.org' } },
    });
    assert.equal(patch.statusCode, 200);
    assert.equal(json(patch).user.email, 'bob@example.org');
    // The column holds 255 characters: a longer email is the client's error, not the store's.
    const long = await h.app.inject({
      method: 'PATCH',
      url: `/identity/v3/users/${created.id}`,
      headers: auth(admin),
      payload: { user: { email: `${'b'.repeat(250)}@example.org` } },
    });
    assert.equal(long.statusCode, 400);
    assert.equal(json(long).error.code, 400);
    const row = await h.store.users.get(created.id);
    assert.match(row!.passwordHash, /^scrypt\$/);
    assert.doesNotMatch(row!.passwordHash, /two/);
    assert.equal((await h.app.inject({ method: 'DELETE', url: `/identity/v3/users/${created.id}`, headers: auth(admin) })).statusCode, 204);
    assert.equal((await h.app.inject({ method: 'GET', url: `/identity/v3/users/${created.id}`, headers: auth(admin) })).statusCode, 404);
  });

  test('a new password ends the sessions opened with the old one', async () => {
    const member = await memberSession(h, 'pwchange');
    const flavors = () => h.app.inject({ method: 'GET', url: `/v1.0/${member.projectId}/flavors`, headers: auth(member) });
    assert.equal((await flavors()).statusCode, 200);
    const patch = await h.app.inject({
      method: 'PATCH',
      url: `/identity/v3/users/${member.userId}`,
      headers: auth(admin),
      payload: { user: { password: 'a-brand-new-password' } },
    });
    assert.equal(patch.statusCode, 200);
    assert.equal((await flavors()).statusCode, 401);
    const adminStill = await h.app.inject({ method: 'GET', url: '/identity/v3/users', headers: auth(admin) });
    assert.equal(adminStill.statusCode, 200, "other users' sessions are untouched");
  });

  test('a user changes its own password with the original one (openstack user password set)', async () => {
    const member = await memberSession(h, 'selfpw');
    const project = json(await h.app.inject({ method: 'GET', url: `/identity/v3/projects/${member.projectId}`, headers: auth(member) })).project;
    const name = json(await h.app.inject({ method: 'GET', url: `/identity/v3/users/${member.userId}`, headers: auth(member) })).user.name;
    const change = (original: string, password: string, userId = member.userId) =>
      h.app.inject({
        method: 'POST',
        url: `/identity/v3/users/${userId}/password`,
        headers: auth(member),
        payload: { user: { original_password: original, password } },
      });

    const wrong = await change('not-the-password', 'Self-chosen-pw-1');
    assert.equal(wrong.statusCode, 401);
    assert.equal(json(wrong).error.title, 'Unauthorized');
    const unknown = await change('pw-member', 'Self-chosen-pw-1', '0'.repeat(32));
    assert.equal(unknown.statusCode, 401, 'an unknown user is answered as a wrong password');

    const ok = await change('pw-member', 'Self-chosen-pw-1');
    assert.equal(ok.statusCode, 204, ok.body);
    const flavors = await h.app.inject({ method: 'GET', url: `/v1.0/${member.projectId}/flavors`, headers: auth(member) });
    assert.equal(flavors.statusCode, 401, 'the sessions of the old password end');
    await assert.rejects(login(h.app, name, 'pw-member', project.name));
    const again = await login(h.app, name, 'Self-chosen-pw-1', project.name);
    assert.equal(again.userId, member.userId);
    const row = await h.store.users.get(member.userId);
    assert.doesNotMatch(row!.passwordHash, /Self-chosen/);
  });

  test('domains: default by id, by name, unknown 404', async () => {
    const byId = await h.app.inject({ method: 'GET', url: '/identity/v3/domains/default', headers: auth(admin) });
    assert.equal(json(byId).domain.name, 'Default');
    const byName = await h.app.inject({ method: 'GET', url: '/identity/v3/domains?name=Default', headers: auth(admin) });
    assert.equal(json(byName).domains.length, 1);
    const other = await h.app.inject({ method: 'GET', url: '/identity/v3/domains/elsewhere', headers: auth(admin) });
    assert.equal(other.statusCode, 404);
  });

  test('a non-admin gets a Keystone 403 on every admin call', async () => {
    const member = await memberSession(h);
    const calls: [string, string, object?][] = [
      ['POST', '/identity/v3/projects', { project: { name: 'x' } }],
      ['GET', '/identity/v3/projects'],
      ['POST', '/identity/v3/users', { user: { name: 'x' } }],
      ['GET', '/identity/v3/users'],
      ['GET', '/identity/v3/roles'],
      ['GET', '/identity/v3/role_assignments'],
      ['PUT', `/identity/v3/projects/${member.projectId}/users/${member.userId}/roles/x`],
      ['DELETE', `/identity/v3/users/${admin.userId}`],
    ];
    for (const [method, url, payload] of calls) {
      const res = await h.app.inject({ method: method as 'GET', url, headers: auth(member), ...(payload ? { payload } : {}) });
      assert.equal(res.statusCode, 403, `${method} ${url}`);
      const { error } = json(res);
      assert.equal(error.code, 403);
      assert.equal(error.title, 'Forbidden');
      assert.match(error.message, /^You are not authorized to perform the requested action: identity:/);
    }
    // ...but may read its own user and project.
    assert.equal((await h.app.inject({ method: 'GET', url: `/identity/v3/users/${member.userId}`, headers: auth(member) })).statusCode, 200);
    assert.equal((await h.app.inject({ method: 'GET', url: `/identity/v3/projects/${member.projectId}`, headers: auth(member) })).statusCode, 200);
  });

  test('without a token, admin calls are 401', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/identity/v3/users' });
    assert.equal(res.statusCode, 401);
    assert.ok(res.headers['www-authenticate']);
  });
});

describe('bootstrap', () => {
  test('bootstrapIdentity is idempotent and never changes an existing password', async () => {
    const { bootstrapIdentity } = await import('../../src/api/index.js');
    assert.deepEqual(await bootstrapIdentity(h.store, 'another-password'), { created: false });
    await login(h.app, 'admin', adminPassword, 'admin');
    const bad = await h.app.inject({ method: 'POST', url: '/identity/v3/auth/tokens', payload: passwordAuth('admin', 'another-password', 'admin') });
    assert.equal(bad.statusCode, 401);
    assert.equal((await h.store.projects.list({ name: 'admin' })).length, 1);
    assert.deepEqual((await h.store.roles.list()).map((r) => r.name).sort(), ['admin', 'member']);
  });
});
