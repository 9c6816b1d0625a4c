import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultByStatus } from '../../src/api/error-status.js';
import { hashPassword } from '../../src/api/identity/password-hash.js';
import { newKeystoneId, newUuid } from '../../src/common/index.js';
import { adminSession, json, login, memberSession, passwordAuth, seedDatastores, seededCapabilities, startHarness, type Harness, type Session } from './api-harness.js';
import { guestInstance, type GuestInstance } from './guest-instance.js';
import { registeredRoutes } from './route-table.js';
import { LocalDirectoryStorage } from '../../src/backup/index.js';
import { makeDataDir } from '../support/temp-dir.js';

// Who may call what (reference 1.2, 8.1, 8.3, 2.14, 2.15), for every route the API registers:
// the route table is read from Fastify, so a route added without a row here fails the test.
// Each call runs against objects of its own (a fresh instance, user, project), so that one
// caller's successful DELETE does not decide what the next caller sees.
//
// Callers: `admin` (the admin project, through its own tenant path), `owner` (member of the
// project owning the objects), `other` (member of another project, through its own tenant path:
// the first project's objects are 404), `mismatch` (that member with the owner's tenant id in
// the URL: 403 TenantMismatch, even before the body is read) and `anon` (no token: 401).

type Actor = 'admin' | 'owner' | 'other' | 'mismatch' | 'anon';
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What the URL's placeholders stand for in one call. */
interface Objects {
  tenantId: string;
  instanceId: string;
  name: string;
  user: string;
  database: string;
  projectId: string;
  userId: string;
  roleId: string;
  datastore: string;
  version: string;
  versionId: string;
  flavorId: string;
  volumeType: string;
  domainId: string;
  configurationId: string;
  backupId: string;
  webhookId: string;
  serverId: string;
}

interface Row {
  method: Method;
  path: string;
  /** a query string (without `?`) sent with the path */
  query?: string;
  body?: (o: Objects) => unknown;
  /** headers beyond the caller's token */
  headers?: (o: Objects) => Promise<Record<string, string>>;
  /** placeholders that must name a fresh object of their own in each call */
  fresh?: (o: Objects) => Promise<Partial<Objects>>;
  /** more to check of a caller's successful answer */
  check?: (actor: Actor, body: string) => Promise<void>;
  /** the status each caller gets; identity routes have no tenant in the URL, hence no `mismatch` */
  expect: Partial<Record<Actor, number>>;
  label?: string;
}

let h: Harness;
let admin: Session;
let owner: Session;
let other: Session;
let ownerName: string;
let memberRoleId: string;
let versionId: string;
let originalPasswordHash: string;
const guests: GuestInstance[] = [];
let backupDir: Awaited<ReturnType<typeof makeDataDir>>;

before(async () => {
  backupDir = await makeDataDir('coffer-matrix-backups');
  h = await startHarness({ backupStorage: new LocalDirectoryStorage(backupDir.path) });
  admin = await adminSession(h.app);
  owner = await memberSession(h, 'owner');
  other = await memberSession(h, 'other');
  ownerName = (await h.store.users.get(owner.userId))!.name;
  originalPasswordHash = await hashPassword('original-pw');
  memberRoleId = (await h.store.roles.ensure('member', newKeystoneId())).id;
  const seeded = await seedDatastores(h.store);
  versionId = seeded.activeVersionId;
  const version = (await h.store.datastores.getVersion(versionId))!;
  await h.store.datastores.upsertVersion({
    ...version,
    capabilities: { ...version.capabilities, configurationGroups: true, backup: true, replication: true },
    parameters: [{ name: 'max_connections', type: 'integer', restartRequired: true, min: 10, max: 1000 }],
  });
});
after(async () => {
  for (const g of guests) await g.close();
  await h.close();
  await backupDir.remove();
});

/** An instance of the owner's project with a running guest holding database `orders`, user `app` and root history. */
async function freshInstance(): Promise<string> {
  const g = await guestInstance(h, owner, { capabilities: { ...seededCapabilities.postgresql, backup: true, replication: true } });
  guests.push(g);
  g.engine.databases.set('orders', { name: 'orders' });
  g.engine.users.set('app@%', { name: 'app', host: '%', password: 'pw', databases: new Set(['orders']) });
  await h.store.rootHistory.record({ instanceId: g.id, userId: owner.userId, createdAt: new Date() });
  return g.id;
}

/** An instance of the owner's project whose engine has configuration groups, and its guest. */
async function freshConfigurableInstance(): Promise<string> {
  const g = await guestInstance(h, owner, {
    capabilities: { ...seededCapabilities.postgresql, configurationGroups: true },
    handlers: { getConfiguration: async () => ({ values: { max_connections: 100 } }) },
  });
  guests.push(g);
  return g.id;
}

/** A configuration group of the owner's project on the seeded PostgreSQL 15. */
async function freshGroup(): Promise<string> {
  const id = newUuid();
  const now = new Date();
  await h.store.configurations.create({
    id,
    tenantId: owner.projectId,
    name: 'matrix-group',
    description: null,
    datastoreVersionId: versionId,
    values: { max_connections: 100 },
    createdAt: now,
    updatedAt: now,
  });
  return id;
}

/** A completed backup of a fresh instance of the owner's project, as the conductor records one. */
async function freshBackup(): Promise<string> {
  const instanceId = await freshInstance();
  const id = newUuid();
  const now = new Date();
  await h.store.backups.create({
    id,
    tenantId: owner.projectId,
    name: 'matrix-backup',
    description: null,
    instanceId,
    parentId: null,
    datastoreVersionId: versionId,
    backupType: 'full',
    state: 'COMPLETED',
    container: 'database_backups',
    objectName: `${id}.postgresql.zst.enc`,
    createdAt: now,
    updatedAt: now,
  });
  await h.store.backups.update(id, { sizeBytes: 1024, sha256: 'c'.repeat(64), facts: {} });
  return id;
}

/** Backup lists hold the caller's project's backups (an admin's own too, without all_projects). */
async function ownBackupsOnly(actor: Actor, body: string): Promise<void> {
  const owners = await h.store.backups.list({ tenantId: owner.projectId, limit: 1000, offset: 0 });
  assert.ok(owners.length > 0);
  const seen = owners.filter((b) => body.includes(b.id));
  if (actor === 'owner') assert.ok(seen.length > 0, 'the owner does not see its backups');
  else assert.equal(seen.length, 0, `${actor} sees the owner's backups`);
}

/** Configuration group lists hold the caller's project's groups; an admin's every project's. */
async function ownGroupsOnly(actor: Actor, body: string): Promise<void> {
  const owners = (await h.store.configurations.list({ tenantId: owner.projectId, limit: 20 })).items;
  assert.ok(owners.length > 0);
  const seen = owners.filter((c) => body.includes(c.id));
  if (actor === 'other') assert.equal(seen.length, 0, `${actor} sees the owner's groups`);
  else assert.ok(seen.length > 0, `${actor} does not see the owner's groups`);
}

/** A Keystone user of the owner's project, written to the store without a password. */
async function freshUser(passwordHash = ''): Promise<string> {
  const id = newKeystoneId();
  await h.store.users.create({
    id,
    name: `m-${id.slice(0, 10)}`,
    domainId: 'default',
    passwordHash,
    defaultProjectId: owner.projectId,
    email: null,
    description: '',
    enabled: true,
    createdAt: new Date(),
  });
  return id;
}

async function freshProject(): Promise<string> {
  const id = newKeystoneId();
  await h.store.projects.create({ id, name: `p-${id.slice(0, 10)}`, domainId: 'default', description: '', enabled: true, createdAt: new Date() });
  return id;
}

const anyone = { admin: 200, owner: 200, other: 200, mismatch: 403, anon: 401 };
const adminOnly = (ok: number) => ({ admin: ok, owner: 401, other: 401, mismatch: 403, anon: 401 });
const ownerOrAdmin = (ok: number) => ({ admin: ok, owner: ok, other: 404, mismatch: 403, anon: 401 });
const keystoneAdmin = (ok: number) => ({ admin: ok, owner: 403, other: 403, anon: 401 });
const everyone = (ok: number) => ({ admin: ok, owner: ok, other: ok, anon: ok });

/** Instance lists hold the caller's project only, even for admins (reference 2.2). */
async function ownProjectOnly(actor: Actor, body: string): Promise<void> {
  const owners = await h.store.instances.listAll({ tenantId: owner.projectId });
  assert.ok(owners.length > 0);
  const seen = owners.filter((i) => body.includes(i.id));
  assert.equal(actor === 'owner' ? seen.length > 0 : seen.length, actor === 'owner' ? true : 0, `${actor} sees the owner's instances: ${seen.length}`);
}

const instance = async () => ({ instanceId: await freshInstance() });
const parameter = async () => ({ name: 'max_connections' });
const group = async () => ({ configurationId: await freshGroup() });
const backup = async () => ({ backupId: await freshBackup() });
/** A fresh instance with a backup schedule. */
const scheduled = async () => {
  const instanceId = await freshInstance();
  await h.store.backupSchedules.set(
    { tenantId: owner.projectId, instanceId, name: null, pattern: '0 3 * * *', incremental: false, retainCount: 3, retainDays: null, nextRunAt: new Date('2099-01-01T03:00:00Z'), verify: false },
    new Date(),
  );
  return { instanceId };
};
/** A webhook of the owner's project. */
const hook = async () => {
  const webhookId = newUuid();
  await h.store.webhooks.create({ id: webhookId, tenantId: owner.projectId, url: 'http://192.0.2.10/hook', secret: 'matrix-secret-0123456789', events: null, createdAt: new Date() });
  return { webhookId };
};
const v1 = (rest: string) => `/v1.0/:tenantId${rest}`;
const createBody = () => ({
  instance: { name: 'matrix-db', flavorRef: '2', volume: { size: 1 }, datastore: { type: 'postgresql', version: '15' } },
});

const rows: Row[] = [
  // Public: version documents and the token request itself.
  { method: 'GET', path: '/', expect: everyone(200) },
  // Probes for load balancers and orchestrators: no token, nothing about any project.
  { method: 'GET', path: '/healthz', expect: everyone(200) },
  { method: 'GET', path: '/readyz', expect: everyone(200) },
  { method: 'GET', path: '/identity', expect: everyone(300) },
  { method: 'GET', path: '/identity/v3', expect: everyone(200) },
  { method: 'POST', path: '/identity/v3/auth/tokens', body: () => passwordAuth(ownerName, 'pw-member', undefined), expect: everyone(201) },
  // A token's own holder or an admin may validate and revoke it.
  ...(['GET', 'DELETE'] as const).map((method): Row => ({
    method,
    path: '/identity/v3/auth/tokens',
    headers: async () => ({ 'x-subject-token': (await login(h.app, ownerName, 'pw-member', (await h.store.projects.get(owner.projectId))!.name)).token }),
    expect: { admin: method === 'GET' ? 200 : 204, owner: method === 'GET' ? 200 : 204, other: 403, anon: 401 },
  })),
  // the dashboard's files: no token needed (the page logs in)
  { method: 'GET', path: '/dashboard', expect: everyone(200) },
  { method: 'GET', path: '/dashboard/static/:name', fresh: async () => ({ name: 'style.css' }), expect: everyone(200) },
  { method: 'GET', path: '/dashboard/js/:name', fresh: async () => ({ name: 'app.js' }), expect: everyone(200) },
  { method: 'GET', path: '/dashboard/js/pages/:name', fresh: async () => ({ name: 'login.js' }), expect: everyone(200) },
  // the projects a token's user may scope a token to (the dashboard's picker): everyone's own
  { method: 'GET', path: '/identity/v3/auth/projects', expect: { admin: 200, owner: 200, other: 200, anon: 401 } },
  { method: 'POST', path: '/identity/v3/users', body: () => ({ user: { name: `new-${newUuid().slice(0, 8)}` } }), expect: keystoneAdmin(201) },
  { method: 'GET', path: '/identity/v3/users', expect: keystoneAdmin(200) },
  { method: 'GET', path: '/identity/v3/users/:userId', expect: { admin: 200, owner: 200, other: 403, anon: 401 }, label: 'self' },
  { method: 'PATCH', path: '/identity/v3/users/:userId', body: () => ({ user: { description: 'x' } }), fresh: async () => ({ userId: await freshUser() }), expect: keystoneAdmin(200) },
  { method: 'DELETE', path: '/identity/v3/users/:userId', fresh: async () => ({ userId: await freshUser() }), expect: keystoneAdmin(204) },
  // A user changes its own password with the original one and no token (an expired password gets none).
  {
    method: 'POST',
    path: '/identity/v3/users/:userId/password',
    body: () => ({ user: { original_password: 'original-pw', password: 'changed-pw' } }),
    fresh: async () => ({ userId: await freshUser(originalPasswordHash) }),
    expect: everyone(204),
  },
  { method: 'POST', path: '/identity/v3/projects', body: () => ({ project: { name: `new-${newUuid().slice(0, 8)}` } }), expect: keystoneAdmin(201) },
  { method: 'GET', path: '/identity/v3/projects', expect: keystoneAdmin(200) },
  { method: 'GET', path: '/identity/v3/projects/:projectId', expect: { admin: 200, owner: 200, other: 403, anon: 401 }, label: 'own project' },
  { method: 'PATCH', path: '/identity/v3/projects/:projectId', body: () => ({ project: { description: 'x' } }), fresh: async () => ({ projectId: await freshProject() }), expect: keystoneAdmin(200) },
  { method: 'DELETE', path: '/identity/v3/projects/:projectId', fresh: async () => ({ projectId: await freshProject() }), expect: keystoneAdmin(204) },
  { method: 'GET', path: '/identity/v3/projects/:projectId/users/:userId/roles', expect: keystoneAdmin(200) },
  { method: 'PUT', path: '/identity/v3/projects/:projectId/users/:userId/roles/:roleId', fresh: async () => ({ userId: await freshUser() }), expect: keystoneAdmin(204) },
  { method: 'GET', path: '/identity/v3/projects/:projectId/users/:userId/roles/:roleId', expect: keystoneAdmin(204) },
  {
    method: 'DELETE',
    path: '/identity/v3/projects/:projectId/users/:userId/roles/:roleId',
    fresh: async (o) => {
      const userId = await freshUser();
      await h.store.roleAssignments.grant({ userId, projectId: o.projectId, roleId: o.roleId });
      return { userId };
    },
    expect: keystoneAdmin(204),
  },
  { method: 'GET', path: '/identity/v3/roles', expect: keystoneAdmin(200) },
  { method: 'GET', path: '/identity/v3/roles/:roleId', expect: keystoneAdmin(200) },
  { method: 'GET', path: '/identity/v3/role_assignments', expect: keystoneAdmin(200) },
  { method: 'GET', path: '/identity/v3/domains', expect: { admin: 200, owner: 200, other: 200, anon: 401 } },
  { method: 'GET', path: '/identity/v3/domains/:domainId', expect: { admin: 200, owner: 200, other: 200, anon: 401 } },

  // Catalog: anyone authenticated, through their own tenant (policy "").
  { method: 'GET', path: v1('/flavors'), expect: anyone },
  { method: 'GET', path: v1('/flavors/:flavorId'), expect: anyone },
  { method: 'GET', path: v1('/datastores'), expect: anyone },
  { method: 'GET', path: v1('/datastores/versions/:versionId'), expect: anyone },
  { method: 'GET', path: v1('/datastores/versions/:versionId/parameters'), expect: anyone },
  { method: 'GET', path: v1('/datastores/versions/:versionId/parameters/:name'), fresh: parameter, expect: anyone },
  { method: 'GET', path: v1('/datastores/:datastore'), expect: anyone },
  { method: 'GET', path: v1('/datastores/:datastore/versions'), expect: anyone },
  { method: 'GET', path: v1('/datastores/:datastore/versions/:version'), expect: anyone },
  { method: 'GET', path: v1('/datastores/:datastore/versions/:version/flavors'), expect: anyone },
  { method: 'GET', path: v1('/datastores/:datastore/versions/:version/volume-types'), expect: anyone },
  { method: 'GET', path: v1('/datastores/:datastore/versions/:version/parameters'), expect: anyone },
  { method: 'GET', path: v1('/datastores/:datastore/versions/:version/parameters/:name'), fresh: parameter, expect: anyone },
  { method: 'GET', path: v1('/volume-types'), expect: anyone },
  { method: 'GET', path: v1('/volume-types/:volumeType'), expect: anyone },
  { method: 'GET', path: v1('/limits'), expect: anyone },

  // Quotas: a member reads its own project's (403 for another's); only admins change any (401).
  { method: 'GET', path: v1('/mgmt/quotas/:projectId'), expect: { admin: 200, owner: 200, other: 403, mismatch: 403, anon: 401 } },
  // A project of its own: a limit set on the owner's project would refuse the creates below.
  { method: 'PUT', path: v1('/mgmt/quotas/:projectId'), body: () => ({ quotas: { instances: 10 } }), fresh: async () => ({ projectId: await freshProject() }), expect: adminOnly(200) },

  // Management: admins only, Trove's 401 for everyone else.
  { method: 'GET', path: v1('/mgmt/instances'), expect: adminOnly(200) },
  { method: 'GET', path: v1('/mgmt/hosts'), expect: adminOnly(200) },
  { method: 'GET', path: v1('/mgmt/instances/:instanceId'), fresh: instance, expect: adminOnly(200) },
  { method: 'GET', path: v1('/mgmt/instances/:instanceId/root'), fresh: instance, expect: adminOnly(200) },
  { method: 'POST', path: v1('/mgmt/instances/:instanceId/action'), body: () => ({ 'reset-task-status': {} }), fresh: instance, expect: adminOnly(202) },
  { method: 'GET', path: v1('/mgmt/datastores/versions/:versionId/parameters'), expect: adminOnly(200) },
  { method: 'GET', path: v1('/mgmt/datastores/versions/:versionId/parameters/:name'), fresh: parameter, expect: adminOnly(200) },
  // Parameters are what the engines publish: nobody edits them through the API (501 for admins).
  { method: 'POST', path: v1('/mgmt/datastores/versions/:versionId/parameters'), body: () => ({ 'configuration-parameter': { name: 'x' } }), expect: adminOnly(501) },
  { method: 'PUT', path: v1('/mgmt/datastores/versions/:versionId/parameters/:name'), body: () => ({ 'configuration-parameter': {} }), fresh: parameter, expect: adminOnly(501) },
  { method: 'DELETE', path: v1('/mgmt/datastores/versions/:versionId/parameters/:name'), fresh: parameter, expect: adminOnly(501) },
  { method: 'GET', path: v1('/mgmt/datastore-versions'), expect: adminOnly(200) },
  { method: 'GET', path: v1('/mgmt/datastore-versions/:versionId'), expect: adminOnly(200) },
  { method: 'PATCH', path: v1('/mgmt/datastore-versions/:versionId'), body: () => ({ active: true }), expect: adminOnly(202) },
  // Versions are the engines agents find on their hosts: nobody creates or deletes them through the API.
  { method: 'POST', path: v1('/mgmt/datastore-versions'), body: () => ({ version: { name: 'x' } }), expect: adminOnly(501) },
  { method: 'DELETE', path: v1('/mgmt/datastore-versions/:versionId'), expect: adminOnly(501) },

  // Configuration groups: the collection is the caller's project's (an admin's: every project's);
  // a group is its project's or an admin's.
  { method: 'GET', path: v1('/configurations'), fresh: group, expect: anyone, check: ownGroupsOnly },
  {
    method: 'POST',
    path: v1('/configurations'),
    body: () => ({ configuration: { name: 'matrix', values: { max_connections: 50 }, datastore: { type: 'postgresql', version: '15' } } }),
    expect: anyone,
  },
  { method: 'GET', path: v1('/configurations/:configurationId'), fresh: group, expect: ownerOrAdmin(200) },
  { method: 'GET', path: v1('/configurations/:configurationId/instances'), fresh: group, expect: ownerOrAdmin(200) },
  { method: 'PUT', path: v1('/configurations/:configurationId'), body: () => ({ configuration: { values: { max_connections: 60 } } }), fresh: group, expect: ownerOrAdmin(202) },
  { method: 'PATCH', path: v1('/configurations/:configurationId'), body: () => ({ configuration: { values: { max_connections: 70 } } }), fresh: group, expect: ownerOrAdmin(200) },
  { method: 'DELETE', path: v1('/configurations/:configurationId'), fresh: group, expect: ownerOrAdmin(202) },
  // Backups: lists are the caller's project's (an admin's too, unless all_projects); objects the owner's or an admin's.
  { method: 'GET', path: v1('/backups'), fresh: backup, expect: anyone, check: ownBackupsOnly },
  { method: 'POST', path: v1('/backups'), body: (o) => ({ backup: { name: 'matrix', instance: o.instanceId } }), fresh: instance, expect: { ...ownerOrAdmin(202) } },
  { method: 'GET', path: v1('/backups/:backupId'), fresh: backup, expect: ownerOrAdmin(200) },
  { method: 'DELETE', path: v1('/backups/:backupId'), fresh: backup, expect: ownerOrAdmin(202) },
  { method: 'POST', path: v1('/backups/:backupId/action'), body: () => ({ verify: {} }), fresh: backup, expect: ownerOrAdmin(202) },
  { method: 'GET', path: v1('/instances/:instanceId/backups'), fresh: instance, expect: ownerOrAdmin(200) },
  // an instance's events (Coffer's extension) are its owner's or an admin's
  { method: 'GET', path: v1('/instances/:instanceId/events'), fresh: instance, expect: ownerOrAdmin(200) },
  { method: 'GET', path: v1('/instances/:instanceId/metrics'), fresh: instance, expect: ownerOrAdmin(200) },
  // an instance's replication status (Coffer's extension) is its owner's or an admin's
  { method: 'GET', path: v1('/instances/:instanceId/replication'), fresh: instance, expect: ownerOrAdmin(200) },
  { method: 'PATCH', path: v1('/instances/:instanceId/replication'), body: () => ({ replication: { failover: false } }), fresh: instance, expect: ownerOrAdmin(200) },
  // an instance's backup schedule (Coffer's extension) is its owner's or an admin's
  {
    method: 'PUT',
    path: v1('/instances/:instanceId/backup_schedule'),
    body: () => ({ backup_schedule: { pattern: '0 3 * * *', retain_count: 3 } }),
    fresh: instance,
    expect: ownerOrAdmin(200),
  },
  { method: 'GET', path: v1('/instances/:instanceId/backup_schedule'), fresh: scheduled, expect: ownerOrAdmin(200) },
  { method: 'DELETE', path: v1('/instances/:instanceId/backup_schedule'), fresh: scheduled, expect: ownerOrAdmin(202) },
  // webhooks (Coffer's extension): a project registers its own; a hook is its owner's or an admin's
  { method: 'POST', path: v1('/webhooks'), body: () => ({ webhook: { url: 'http://192.0.2.10/hook' } }), expect: { ...anyone, admin: 202, owner: 202, other: 202 } },
  { method: 'GET', path: v1('/webhooks'), fresh: hook, expect: anyone },
  { method: 'GET', path: v1('/webhooks/:webhookId'), fresh: hook, expect: ownerOrAdmin(200) },
  { method: 'DELETE', path: v1('/webhooks/:webhookId'), fresh: hook, expect: ownerOrAdmin(202) },
  { method: 'GET', path: v1('/webhooks/:webhookId/deliveries'), fresh: hook, expect: ownerOrAdmin(200) },
  // a strategy is the caller's own project's
  { method: 'POST', path: v1('/backup_strategies'), body: () => ({ backup_strategy: { swift_container: 'matrix' } }), expect: { ...anyone, admin: 202, owner: 202, other: 202 } },
  { method: 'GET', path: v1('/backup_strategies'), expect: anyone },
  { method: 'DELETE', path: v1('/backup_strategies'), expect: { ...anyone, admin: 202, owner: 202, other: 202 } },

  // Instances: collections are the caller's own project; objects are the owner's or an admin's.
  { method: 'POST', path: v1('/instances'), body: createBody, expect: anyone },
  { method: 'GET', path: v1('/instances'), expect: anyone, check: ownProjectOnly },
  { method: 'GET', path: v1('/instances/detail'), expect: anyone, check: ownProjectOnly },
  { method: 'GET', path: v1('/instances/:instanceId'), fresh: instance, expect: ownerOrAdmin(200) },
  { method: 'PUT', path: v1('/instances/:instanceId'), body: () => ({ instance: { name: 'renamed' } }), fresh: instance, expect: ownerOrAdmin(202) },
  { method: 'PATCH', path: v1('/instances/:instanceId'), body: () => ({ instance: { name: 'renamed' } }), fresh: instance, expect: ownerOrAdmin(202) },
  { method: 'DELETE', path: v1('/instances/:instanceId'), fresh: instance, expect: ownerOrAdmin(202) },
  { method: 'POST', path: v1('/instances/:instanceId/action'), body: () => ({ restart: {} }), fresh: instance, expect: ownerOrAdmin(202), label: 'restart' },
  { method: 'POST', path: v1('/instances/:instanceId/action'), body: () => ({ resize: { flavorRef: '3' } }), fresh: instance, expect: ownerOrAdmin(202), label: 'resize flavor' },
  { method: 'POST', path: v1('/instances/:instanceId/action'), body: () => ({ resize: { volume: { size: 2 } } }), fresh: instance, expect: ownerOrAdmin(202), label: 'resize volume' },
  // instance:reset_status is rule:admin (reference 8.3).
  {
    method: 'POST',
    path: v1('/instances/:instanceId/action'),
    body: () => ({ reset_status: {} }),
    fresh: instance,
    expect: { admin: 202, owner: 403, other: 404, mismatch: 403, anon: 401 },
    label: 'reset_status',
  },
  { method: 'GET', path: v1('/instances/:instanceId/databases'), fresh: instance, expect: ownerOrAdmin(200) },
  { method: 'POST', path: v1('/instances/:instanceId/databases'), body: () => ({ databases: [{ name: 'newdb' }] }), fresh: instance, expect: ownerOrAdmin(202) },
  { method: 'DELETE', path: v1('/instances/:instanceId/databases/:name'), fresh: instance, expect: ownerOrAdmin(202) },
  // Trove routes it and never implemented it: 501 before the instance is looked at.
  { method: 'GET', path: v1('/instances/:instanceId/databases/:name'), fresh: instance, expect: { admin: 501, owner: 501, other: 501, mismatch: 403, anon: 401 } },
  { method: 'GET', path: v1('/instances/:instanceId/users'), fresh: instance, expect: ownerOrAdmin(200) },
  { method: 'POST', path: v1('/instances/:instanceId/users'), body: () => ({ users: [{ name: 'u2', password: 'pw2' }] }), fresh: instance, expect: ownerOrAdmin(202) },
  { method: 'PUT', path: v1('/instances/:instanceId/users'), body: () => ({ users: [{ name: 'app', password: 'pw3' }] }), fresh: instance, expect: ownerOrAdmin(202) },
  { method: 'GET', path: v1('/instances/:instanceId/users/:user'), fresh: instance, expect: ownerOrAdmin(200) },
  { method: 'PUT', path: v1('/instances/:instanceId/users/:user'), body: () => ({ user: { password: 'pw4' } }), fresh: instance, expect: ownerOrAdmin(202) },
  { method: 'DELETE', path: v1('/instances/:instanceId/users/:user'), fresh: instance, expect: ownerOrAdmin(202) },
  { method: 'GET', path: v1('/instances/:instanceId/users/:user/databases'), fresh: instance, expect: ownerOrAdmin(200) },
  { method: 'PUT', path: v1('/instances/:instanceId/users/:user/databases'), body: () => ({ databases: [{ name: 'orders' }] }), fresh: instance, expect: ownerOrAdmin(202) },
  { method: 'DELETE', path: v1('/instances/:instanceId/users/:user/databases/:database'), fresh: instance, expect: ownerOrAdmin(202) },
  { method: 'GET', path: v1('/instances/:instanceId/configuration'), fresh: async () => ({ instanceId: await freshConfigurableInstance() }), expect: ownerOrAdmin(200) },
  // Trove's guest logs: an instance's owner's or an admin's
  { method: 'GET', path: v1('/instances/:instanceId/log'), fresh: instance, expect: ownerOrAdmin(200) },
  { method: 'POST', path: v1('/instances/:instanceId/log'), body: () => ({ name: 'general', publish: 1 }), fresh: instance, expect: ownerOrAdmin(200) },
  // what was published of a log, read back (Coffer's extension): the same rule
  { method: 'GET', path: v1('/instances/:instanceId/log/:name'), fresh: async () => ({ ...(await instance()), name: 'general' }), expect: ownerOrAdmin(200) },
  { method: 'GET', path: v1('/instances/:instanceId/root'), fresh: instance, expect: ownerOrAdmin(200) },
  { method: 'POST', path: v1('/instances/:instanceId/root'), fresh: instance, expect: ownerOrAdmin(200) },
  { method: 'DELETE', path: v1('/instances/:instanceId/root'), fresh: instance, expect: ownerOrAdmin(204) },
  // Nova's compute view (src/api/compute): servers are the caller's project's own, another
  // project's is 404; every project's (all_tenants) is admin-only, 403 otherwise (Nova's policy);
  // flavors for anyone with a token; the project id in the URL, when given, must be the token's.
  { method: 'GET', path: '/v2.1', expect: everyone(200) },
  { method: 'GET', path: '/image', expect: everyone(200) },
  { method: 'GET', path: '/image/v2/images', expect: { admin: 200, owner: 200, other: 200, anon: 401 } },
  ...(['', '/:tenantId'] as const).flatMap((project): Row[] => {
    const at = (rest: string) => `/v2.1${project}${rest}`;
    const mismatch = project === '' ? {} : { mismatch: 400 };
    const everyToken = { admin: 200, owner: 200, other: 200, anon: 401, ...mismatch };
    return [
      ...(['/servers', '/servers/detail'] as const).flatMap((list): Row[] => [
        { method: 'GET', path: at(list), fresh: async () => ({ serverId: await freshInstance() }), check: ownProjectOnly, expect: everyToken },
        {
          method: 'GET',
          path: at(list),
          query: 'all_tenants=1',
          label: 'all_tenants',
          fresh: async () => ({ serverId: await freshInstance() }),
          check: async (actor, body) => {
            const owners = await h.store.instances.listAll({ tenantId: owner.projectId, deleted: false });
            assert.ok(owners.some((i) => body.includes(i.id)), `${actor} sees every project's servers`);
          },
          expect: { admin: 200, owner: 403, other: 403, anon: 401, ...mismatch },
        },
      ]),
      { method: 'GET', path: at('/servers/:serverId'), fresh: async () => ({ serverId: await freshInstance() }), expect: { admin: 200, owner: 200, other: 404, anon: 401, ...mismatch } },
      { method: 'GET', path: at('/flavors'), expect: everyToken },
      { method: 'GET', path: at('/flavors/detail'), expect: everyToken },
      { method: 'GET', path: at('/flavors/:flavorId'), expect: everyToken },
      { method: 'GET', path: at('/flavors/:flavorId/os-extra_specs'), expect: everyToken },
    ];
  }),
];

function sessionOf(actor: Actor): Session | undefined {
  return actor === 'admin' ? admin : actor === 'owner' ? owner : actor === 'anon' ? undefined : other;
}

/** The tenant in the URL: the caller's own, except for `mismatch` and `anon` (the owner's). */
function tenantOf(actor: Actor): string {
  return actor === 'admin' ? admin.projectId : actor === 'other' ? other.projectId : owner.projectId;
}

function fill(path: string, o: Objects): string {
  return path.replace(/:([A-Za-z]+)/g, (_, key: string) => encodeURIComponent(o[key as keyof Objects]));
}

/** `unknownInstance`: address an instance id that does not exist instead of the fresh one. */
async function call(row: Row, actor: Actor, unknownInstance = false) {
  const base: Objects = {
    tenantId: tenantOf(actor),
    instanceId: newUuid(),
    name: 'orders',
    user: 'app',
    database: 'orders',
    projectId: owner.projectId,
    userId: owner.userId,
    roleId: memberRoleId,
    datastore: 'postgresql',
    version: '15',
    versionId,
    flavorId: '1',
    volumeType: 'local',
    domainId: 'default',
    configurationId: newUuid(),
    backupId: newUuid(),
    webhookId: newUuid(),
    serverId: newUuid(),
  };
  const o = { ...base, ...(await row.fresh?.(base)), ...(unknownInstance ? { instanceId: newUuid(), serverId: newUuid() } : {}) };
  const session = sessionOf(actor);
  const body = row.body?.(o);
  const res = await h.app.inject({
    method: row.method,
    url: `${fill(row.path, o)}${row.query === undefined ? '' : `?${row.query}`}`,
    headers: {
      host: 'db.example',
      ...(session === undefined ? {} : { 'x-auth-token': session.token }),
      ...(await row.headers?.(o)),
    },
    ...(body === undefined ? {} : { payload: body as object }),
  });
  // a server's id is its instance's
  return { res, instanceId: row.path.includes(':serverId') ? o.serverId : o.instanceId };
}

describe('authorization matrix', () => {
  test('every registered route has a row, and every row a registered route', () => {
    const routes = registeredRoutes(h.app);
    assert.ok(routes.size > 40, `the route table parsed to ${routes.size} routes`);
    const covered = new Set(rows.map((r) => `${r.method} ${r.path}`));
    assert.deepEqual([...routes].filter((r) => !covered.has(r)).sort(), [], 'routes without a matrix row');
    assert.deepEqual([...covered].filter((r) => !routes.has(r)).sort(), [], 'matrix rows for routes that do not exist');
  });

  for (const row of rows) {
    const name = `${row.method} ${row.path}${row.label === undefined ? '' : ` (${row.label})`}`;
    test(name, async () => {
      for (const [actor, status] of Object.entries(row.expect) as [Actor, number][]) {
        const { res, instanceId } = await call(row, actor);
        assert.equal(res.statusCode, status, `${actor}: ${res.body}`);
        if (status < 400) {
          await row.check?.(actor, res.body);
          continue;
        }
        const body = json(res);
        if (status === 401 && actor === 'anon') {
          // keystonemiddleware's answer, in front of Trove (reference 1.2)
          assert.equal(body.error?.code, 401, `${actor}: ${res.body}`);
          assert.match(String(res.headers['www-authenticate']), /^Keystone uri=/);
        } else if (row.path.startsWith('/identity')) {
          assert.equal(body.error?.code, status, `${actor}: ${res.body}`);
        } else {
          const fault = faultByStatus[status]!;
          assert.deepEqual(Object.keys(body), [fault], `${actor}: ${res.body}`);
          assert.equal(body[fault].code, status);
          assert.equal(typeof body[fault].message, 'string');
        }
        if (actor === 'mismatch') {
          // Nova's own words for it under /v2.1/{project_id} (a 400), Trove's elsewhere
          assert.match(res.body, row.path.startsWith('/v2.1') ? /Malformed request URL: URL's project_id/ : /User with tenant id .* cannot access this resource/);
        }
        if (status === 401 && actor !== 'anon') assert.match(res.body, /does not have admin privileges/);
        if (actor === 'other' && status === 404 && /:instanceId|:serverId/.test(row.path)) {
          // another project's instance is answered exactly as one that does not exist
          const unknown = await call(row, actor, true);
          assert.equal(unknown.res.statusCode, 404);
          assert.equal(res.body.replaceAll(instanceId, '<id>'), unknown.res.body.replaceAll(unknown.instanceId, '<id>'));
        }
      }
    });
  }
});
