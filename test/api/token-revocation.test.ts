import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { adminSession, json, login, startHarness, type Harness, type Session } from './api-harness.js';

// As Keystone: disabling a user or a project, or removing a role assignment, revokes the tokens
// it concerns, and enabling or granting again does not bring them back.

let h: Harness;
let admin: Session;

before(async () => {
  h = await startHarness();
  admin = await adminSession(h.app);
});
after(() => h.close());

const asAdmin = { 'x-auth-token': '' };
async function call(method: 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: object) {
  asAdmin['x-auth-token'] = admin.token;
  const res = await h.app.inject({ method, url: `/identity/v3${url}`, headers: asAdmin, ...(payload === undefined ? {} : { payload }) });
  assert.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.body}`);
  return res.body === '' ? undefined : json(res);
}

/** a project with a member user and its first token; the member role's id */
async function setUp(tag: string) {
  const { project } = await call('POST', '/projects', { project: { name: `rev-${tag}` } });
  const { user } = await call('POST', '/users', { user: { name: `rev-${tag}`, password: 'Member-pass-1', default_project_id: project.id } });
  const member = (await h.store.roles.getByName('member'))!;
  await call('PUT', `/projects/${project.id}/users/${user.id}/roles/${member.id}`);
  const session = await login(h.app, `rev-${tag}`, 'Member-pass-1', `rev-${tag}`);
  assert.equal(await works(session), true);
  return { projectId: project.id as string, userId: user.id as string, roleId: member.id, session };
}

/** the token still opens the Trove API and still validates */
async function works(s: Session): Promise<boolean> {
  const trove = await h.app.inject({ method: 'GET', url: `/v1.0/${s.projectId}/instances`, headers: { 'x-auth-token': s.token } });
  const validate = await h.app.inject({ method: 'GET', url: '/identity/v3/auth/tokens', headers: { 'x-auth-token': admin.token, 'x-subject-token': s.token } });
  assert.equal(trove.statusCode === 200, validate.statusCode === 200, `${trove.statusCode} / ${validate.statusCode}`);
  if (trove.statusCode !== 200) assert.equal(trove.statusCode, 401);
  return trove.statusCode === 200;
}

test('disabling a user revokes its tokens; enabling it again does not revive them', async () => {
  const t = await setUp('user');
  await call('PATCH', `/users/${t.userId}`, { user: { enabled: false } });
  assert.equal(await works(t.session), false);
  await call('PATCH', `/users/${t.userId}`, { user: { enabled: true } });
  assert.equal(await works(t.session), false);
  assert.equal(await works(await login(h.app, 'rev-user', 'Member-pass-1', 'rev-user')), true);
});

test('disabling a project revokes the tokens scoped to it; enabling it again does not revive them', async () => {
  const t = await setUp('project');
  await call('PATCH', `/projects/${t.projectId}`, { project: { enabled: false } });
  assert.equal(await works(t.session), false);
  await call('PATCH', `/projects/${t.projectId}`, { project: { enabled: true } });
  assert.equal(await works(t.session), false);
  assert.equal(await works(await login(h.app, 'rev-project', 'Member-pass-1', 'rev-project')), true);
  // the admin's own token, on another project, is untouched
  assert.equal(await works(admin), true);
});

test('removing a role assignment revokes the user\'s tokens on that project; granting it again does not revive them', async () => {
  const t = await setUp('role');
  const admin2 = await login(h.app, 'admin', 'admin-secret-pw', 'admin');
  await call('DELETE', `/projects/${t.projectId}/users/${t.userId}/roles/${t.roleId}`);
  assert.equal(await works(t.session), false);
  await call('PUT', `/projects/${t.projectId}/users/${t.userId}/roles/${t.roleId}`);
  assert.equal(await works(t.session), false);
  assert.equal(await works(await login(h.app, 'rev-role', 'Member-pass-1', 'rev-role')), true);
  assert.equal(await works(admin2), true);
});
