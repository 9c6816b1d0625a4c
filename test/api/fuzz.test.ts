// test-long (minutes of CPU: thousands of requests)
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { faultByStatus } from '../../src/api/error-status.js';
import { guestContract, guestTopic, serveRpc, type Subscription } from '../../src/bus/index.js';
import { newKeystoneId, newUuid, type EngineCapabilities } from '../../src/common/index.js';
import { createLogger, type Logger } from '../../src/common/logger.js';
import { fakeGuestHandlers } from '../support/fake-guest.js';
import { fuzzSeed, hostileNames, randomNames, seededRandom } from '../support/hostile-corpus.js';
import { LocalDirectoryStorage } from '../../src/backup/index.js';
import { adminSession, json, memberSession, seedDatastores, seededCapabilities, startHarness, type Harness, type Session } from './api-harness.js';
import { arr, bodyCases, isWellFormed, leaf, obj, sampleOf, str, unfitForEngine, violates, type Spec } from './fuzz-body.js';
import { webhookEventTypeNames } from '../../src/db/index.js';
import { registeredRoutes } from './route-table.js';

// Malformed and hostile requests to every write endpoint (issue 3). Each must be answered with a
// 4xx in the API's error shape (Trove's `{"<fault>":{"code","message"}}`, Keystone's under
// /identity), change nothing (instances, identity rows, quotas, root history, tasks cast, guest
// writes), and leave the server answering. What is accepted must reach the guest (a recording
// fake) with exactly the strings the client sent, none an engine cannot carry. Problems are
// collected per endpoint so that one run shows them all. Seeded: COFFER_FUZZ_SEED replays a run.

const seed = fuzzSeed();
console.log(`api fuzz: seed ${seed} (COFFER_FUZZ_SEED replays it)`);

interface GuestCall {
  method: string;
  args: unknown;
}

/** Guest methods that change an engine; a refused request must not have called any. */
const guestWrites = new Set([
  'createDatabases',
  'deleteDatabase',
  'createUsers',
  'deleteUser',
  'updateUser',
  'grantAccess',
  'revokeAccess',
  'enableRoot',
  'disableRoot',
  'restart',
  'stopDb',
  'startDb',
  'resize',
  'updateAccess',
  'guestLogAction',
]);

let h: Harness;
let admin: Session;
let owner: Session;
let pgId: string;
let mysqlId: string;
let fuzzUserId: string;
let fuzzProjectId: string;
let quotaProjectId: string;
let memberRoleId: string;
let groupId: string;
let backupId: string;
let pgVersionId: string;
const calls: GuestCall[] = [];
const subscriptions: Subscription[] = [];
// The API logs at debug into a file, through the logger `coffer serve` uses, to look for secrets.
let logDir: string;
let logFile: string;
let logger: Logger;

/** A guest that records every call and answers as an engine holding database `orders` and user `app`. */
async function recordingInstance(manager: string, capabilities: EngineCapabilities): Promise<string> {
  const datastore = await h.store.datastores.ensureDatastore(manager, newUuid());
  const version = await h.store.datastores.upsertVersion({
    id: newUuid(),
    datastoreId: datastore.id,
    name: `fuzz-${newUuid().slice(0, 8)}`,
    version: '1.0',
    manager,
    active: true,
    inactiveReason: null,
    updatedAt: new Date(),
    capabilities,
  });
  const id = newUuid();
  const now = new Date();
  await h.store.instances.create({
    id,
    name: `fuzz-${manager}`,
    tenantId: owner.projectId,
    flavorId: '1',
    volumeSizeGb: 1,
    datastoreVersionId: version.id,
    taskStatus: 'NONE',
    taskDescription: '',
    taskStartTime: null,
    access: null,
    createdAt: now,
    updatedAt: now,
  });
  await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: now });
  const host = manager === 'mysql' ? '10.0.0.1' : '%';
  const handlers = fakeGuestHandlers({
    listDatabases: async () => ({ databases: [{ name: 'orders' }] }),
    listUsers: async () => ({ users: [{ name: 'app', host, databases: [{ name: 'orders' }] }] }),
    createDatabases: async () => ({}),
    deleteDatabase: async () => ({}),
    createUsers: async () => ({}),
    deleteUser: async () => ({}),
    updateUser: async () => ({}),
    grantAccess: async () => ({}),
    revokeAccess: async () => ({}),
    enableRoot: async () => ({ name: 'root' }),
    disableRoot: async () => ({}),
  });
  const recorded = Object.fromEntries(
    Object.entries(handlers).map(([method, handler]) => [
      method,
      async (args: unknown, meta: unknown) => {
        calls.push({ method, args });
        return (handler as (a: unknown, m: unknown) => Promise<unknown>)(args, meta);
      },
    ]),
  ) as typeof handlers;
  subscriptions.push(await serveRpc(h.transport, guestContract, guestTopic(id), recorded));
  return id;
}

before(async () => {
  logDir = await mkdtemp(join(tmpdir(), 'coffer-fuzz-'));
  logFile = join(logDir, 'api.log');
  logger = createLogger({ name: 'api', level: 'debug', file: logFile });
  h = await startHarness({ logger, backupStorage: new LocalDirectoryStorage(logDir) });
  admin = await adminSession(h.app);
  owner = await memberSession(h, 'fuzz');
  const seeded = await seedDatastores(h.store);
  pgVersionId = seeded.activeVersionId;
  // the seeded PostgreSQL 15 takes configuration groups, with a parameter of each kind
  const pg15 = (await h.store.datastores.getVersion(pgVersionId))!;
  await h.store.datastores.upsertVersion({
    ...pg15,
    capabilities: { ...pg15.capabilities, configurationGroups: true },
    parameters: [
      { name: 'max_connections', type: 'integer', restartRequired: true, min: 10, max: 1000 },
      { name: 'log_statement', type: 'string', restartRequired: false },
      { name: 'jit', type: 'boolean', restartRequired: false },
      { name: 'random_page_cost', type: 'float', restartRequired: false },
    ],
  });
  pgId = await recordingInstance('postgresql', { ...seededCapabilities.postgresql, backup: true, incrementalBackup: true });
  mysqlId = await recordingInstance('mysql', seededCapabilities.mysql);
  memberRoleId = (await h.store.roles.ensure('member', newKeystoneId())).id;
  fuzzUserId = newKeystoneId();
  await h.store.users.create({
    id: fuzzUserId,
    name: 'fuzz-target',
    domainId: 'default',
    passwordHash: '',
    defaultProjectId: null,
    email: null,
    description: '',
    enabled: true,
    createdAt: new Date(),
  });
  // a completed backup of the PostgreSQL instance, to verify
  backupId = newUuid();
  await h.store.backups.create({
    id: backupId, tenantId: owner.projectId, name: 'fuzz-verified', description: null, instanceId: pgId, parentId: null, datastoreVersionId: (await h.store.instances.get(pgId))!.datastoreVersionId,
    backupType: 'full', state: 'COMPLETED', container: 'database_backups', objectName: `${backupId}.postgresql.zst.enc`, createdAt: new Date(), updatedAt: new Date(),
  });
  await h.store.backups.update(backupId, { sizeBytes: 1, sha256: 'e'.repeat(64), facts: {} });
  groupId = newUuid();
  await h.store.configurations.create({
    id: groupId,
    tenantId: owner.projectId,
    name: 'fuzz-group',
    description: null,
    datastoreVersionId: pgVersionId,
    values: { max_connections: 100 },
    createdAt: new Date(),
    updatedAt: new Date(),
  });
  fuzzProjectId = newKeystoneId();
  quotaProjectId = newKeystoneId();
  for (const [id, name] of [[fuzzProjectId, 'fuzz-project'], [quotaProjectId, 'fuzz-quotas']] as const) {
    await h.store.projects.create({ id, name, domainId: 'default', description: '', enabled: true, createdAt: new Date() });
  }
});
after(async () => {
  for (const s of subscriptions) await s.close();
  await h.close();
  await rm(logDir, { recursive: true, force: true });
});

/** Everything a request could have changed, as one comparable string. */
async function snapshot(): Promise<string> {
  const [instances, pg, mysql, users, fuzzUser, projects, fuzzProject, assignments, quotas, pgRoot, mysqlRoot, groups, pgVersion, backups, strategies, schedule, verification] = await Promise.all([
    h.store.instances.listAll({}),
    h.store.instances.get(pgId),
    h.store.instances.get(mysqlId),
    h.store.users.list({}),
    h.store.users.get(fuzzUserId),
    h.store.projects.list({}),
    h.store.projects.get(fuzzProjectId),
    h.store.roleAssignments.list({}),
    h.store.quotas.list(quotaProjectId),
    h.store.rootHistory.get(pgId),
    h.store.rootHistory.get(mysqlId),
    h.store.configurations.list({ limit: 1000 }),
    h.store.datastores.getVersion(pgVersionId),
    h.store.backups.list({ limit: 1000, offset: 0 }),
    h.store.backupStrategies.list({}),
    h.store.backupSchedules.get(pgId),
    h.store.backupVerifications.get(backupId),
  ]);
  return JSON.stringify({
    instances: instances.length,
    pg,
    mysql,
    users: users.length,
    fuzzUser,
    projects: projects.length,
    fuzzProject,
    assignments: assignments.length,
    quotas,
    pgRoot,
    mysqlRoot,
    groups: groups.items,
    parameters: pgVersion?.parameters,
    backups: backups.map((b) => [b.id, b.state]),
    strategies,
    schedule,
    verification,
    casts: h.casts.length,
  });
}

/** An accepted change may have queued a task: the instances go back to accepting actions. */
async function settleInstances(): Promise<void> {
  // an accepted backup would keep the instance busy (422) for the next one
  for (const b of await h.store.backups.running(pgId)) await h.store.backups.update(b.id, { state: 'COMPLETED' });
  // and an accepted verification would refuse the next one (422)
  await h.store.backupVerifications.finish(backupId, { status: 'PASSED', message: null, finishedAt: new Date() });
  for (const id of [pgId, mysqlId]) {
    await h.store.instances.update(id, { taskStatus: 'NONE', taskDescription: '' });
    await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: new Date() });
  }
}

// ---- what the write endpoints take ----

const tooLong = (max: number) => (v: unknown) => typeof v === 'string' && v.length > max;
const nameLike = (max: number) => (v: unknown) => typeof v === 'string' && (v === '' || v.length > max);
/** A size in GB: an integer (or a string of digits) between `min` and the API's maximum, 10. */
const sizeOutside = (min: number) => (v: unknown) =>
  typeof v === 'number' ? !(Number.isInteger(v) && v >= min && v <= 10) : typeof v === 'string' && !(/^0*[1-9][0-9]*$/.test(v) && Number(v) >= min && Number(v) <= 10);
const notCidrShaped = (v: unknown) => typeof v === 'string' && !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(v);
const engineName = (sample: string, options: { optional?: boolean } = {}) => str(sample, { engineString: true, ...options });
const password = (options: { optional?: boolean } = {}) => str('pw-Fuzz-1', { engineString: true, ...options });
const quotaLimit = leaf(['integer', 'null'], 5, { invalid: (v) => typeof v === 'number' && (!Number.isSafeInteger(v) || v < -1) });

const createInstance = obj({
  instance: obj({
    name: str('fuzz-db', { invalid: (v) => nameLike(255)(v) || (typeof v === 'string' && !/[0-9a-zA-Z]/.test(v)) }),
    flavorRef: leaf(['string', 'integer'], '1'),
    volume: obj({ size: leaf(['integer', 'string'], 1, { invalid: sizeOutside(1) }), type: leaf(['string', 'null'], 'local', { optional: true }) }),
    datastore: obj({ type: str('postgresql'), version: str('15', { optional: true }) }),
    databases: arr(obj({ name: engineName('orders') }), { optional: true }),
    users: arr(obj({ name: engineName('app'), password: password(), databases: arr(obj({ name: engineName('orders') }), { optional: true }) }), {
      optional: true,
    }),
    access: obj({ is_public: leaf(['boolean'], false, { optional: true }), allowed_cidrs: arr(str('10.0.0.0/8', { invalid: notCidrShaped }), { optional: true }) }, { optional: true }),
    // a group's id or href; any other string names no group (404)
    configuration: str('00000000-0000-4000-8000-000000000000', { optional: true }),
  }),
});

const uuidShaped = (v: unknown) => typeof v === 'string' && !/^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/.test(v);

const updateInstance = obj(
  {
    instance: obj(
      {
        name: str('renamed', { optional: true, invalid: nameLike(255) }),
        // null detaches (nothing to do without a group); a group id must be a UUID
        configuration: leaf(['string', 'null'], null, { optional: true, invalid: uuidShaped }),
        access: obj(
          { is_public: leaf(['boolean'], false, { optional: true }), allowed_cidrs: arr(str('10.0.0.0/8', { invalid: notCidrShaped }), { optional: true }) },
          { optional: true, strict: true },
        ),
      },
      { strict: true },
    ),
  },
  { strict: true },
);

const editInstance = obj({ instance: obj({ name: str('renamed', { optional: true, invalid: nameLike(255) }) }, { strict: true }) }, { strict: true });

/** Values of the seeded version's parameters; what breaks a rule is refused (422), unknown names too. */
const configurationValues = obj({
  max_connections: leaf(['integer'], 100, { optional: true, invalid: (v) => typeof v === 'number' && (v < 10 || v > 1000) }),
  log_statement: str('ddl', { optional: true, invalid: (v) => typeof v === 'string' && /[\r\n\0]/.test(v) }),
  jit: leaf(['boolean'], false, { optional: true }),
  random_page_cost: leaf(['number'], 1.5, { optional: true }),
});
const createConfiguration = obj({
  configuration: obj({
    name: str('fuzz-new-group', { invalid: nameLike(255) }),
    values: configurationValues,
    description: leaf(['string', 'null'], 'd', { optional: true, invalid: tooLong(255) }),
    datastore: obj({ type: str('postgresql'), version: str('15', { optional: true }) }),
  }),
});
const updateConfiguration = obj({
  configuration: obj({
    values: configurationValues,
    name: str('fuzz-group', { optional: true, invalid: nameLike(255) }),
    description: leaf(['string', 'null'], 'd', { optional: true, invalid: tooLong(255) }),
  }),
});

const anyJson = leaf(['object', 'null', 'integer', 'number', 'string', 'boolean', 'array'], {});

interface Target {
  /** `METHOD path` as in Fastify's route table */
  route: string;
  label?: string;
  as: 'admin' | 'owner' | 'none';
  url: () => string;
  spec?: Spec;
  /** the body may be absent (POST /root) */
  bodyOptional?: boolean;
  /** few mutations per field: each accepted body costs a password hash */
  light?: boolean;
  /** hostile values of a path parameter: the URL for each */
  pathValue?: (encoded: string) => string;
  /** a status the route answers by design to every caller that gets past the checks (501: not offered) */
  refuses?: number;
}

const v1 = (rest: string) => () => `/v1.0/${owner.projectId}${rest}`;
const v1admin = (rest: string) => () => `/v1.0/${admin.projectId}${rest}`;

const targets = (): Target[] => [
  { route: 'POST /v1.0/:tenantId/instances', as: 'owner', url: v1('/instances'), spec: createInstance },
  { route: 'PUT /v1.0/:tenantId/instances/:instanceId', as: 'owner', url: v1(`/instances/${pgId}`), spec: updateInstance },
  { route: 'PATCH /v1.0/:tenantId/instances/:instanceId', as: 'owner', url: v1(`/instances/${pgId}`), spec: editInstance },
  { route: 'DELETE /v1.0/:tenantId/instances/:instanceId', as: 'owner', url: v1('/instances/x'), pathValue: (id) => `/v1.0/${owner.projectId}/instances/${id}` },
  { route: 'POST /v1.0/:tenantId/instances/:instanceId/action', label: 'restart', as: 'owner', url: v1(`/instances/${pgId}/action`), spec: obj({ restart: obj({}) }) },
  {
    route: 'POST /v1.0/:tenantId/instances/:instanceId/action',
    label: 'resize flavor',
    as: 'owner',
    url: v1(`/instances/${pgId}/action`),
    spec: obj({ resize: obj({ flavorRef: leaf(['string', 'integer'], '2') }) }),
  },
  {
    route: 'POST /v1.0/:tenantId/instances/:instanceId/action',
    label: 'resize volume',
    as: 'owner',
    url: v1(`/instances/${pgId}/action`),
    spec: obj({ resize: obj({ volume: obj({ size: leaf(['integer', 'string'], 2, { invalid: sizeOutside(2) }) }) }) }),
  },
  {
    route: 'POST /v1.0/:tenantId/instances/:instanceId/action',
    label: 'reset_status',
    as: 'admin',
    url: v1admin(`/instances/${pgId}/action`),
    spec: obj({ reset_status: obj({ force_delete: leaf(['boolean'], false, { optional: true }) }, { nullable: true }) }),
  },
  { route: 'POST /v1.0/:tenantId/instances/:instanceId/databases', label: 'postgresql', as: 'owner', url: v1(`/instances/${pgId}/databases`), spec: obj({ databases: arr(obj({ name: engineName('newdb') }), { nonEmpty: true }) }) },
  {
    route: 'POST /v1.0/:tenantId/instances/:instanceId/databases',
    label: 'mysql',
    as: 'owner',
    url: v1(`/instances/${mysqlId}/databases`),
    spec: obj({
      databases: arr(obj({ name: engineName('newdb'), character_set: str('utf8mb4', { optional: true }), collate: str('utf8mb4_general_ci', { optional: true }) }), { nonEmpty: true }),
    }),
  },
  {
    route: 'DELETE /v1.0/:tenantId/instances/:instanceId/databases/:name',
    as: 'owner',
    url: v1(`/instances/${pgId}/databases/orders`),
    pathValue: (name) => `/v1.0/${owner.projectId}/instances/${pgId}/databases/${name}`,
  },
  {
    route: 'POST /v1.0/:tenantId/instances/:instanceId/users',
    label: 'postgresql',
    as: 'owner',
    url: v1(`/instances/${pgId}/users`),
    spec: obj({ users: arr(obj({ name: engineName('u1'), password: password(), databases: arr(obj({ name: engineName('orders') }), { optional: true }) }), { nonEmpty: true }) }),
  },
  {
    route: 'POST /v1.0/:tenantId/instances/:instanceId/users',
    label: 'mysql',
    as: 'owner',
    url: v1(`/instances/${mysqlId}/users`),
    spec: obj({
      users: arr(
        obj({
          name: engineName('u1'),
          password: password(),
          host: leaf(['string', 'null'], '10.0.0.1', { optional: true, engineString: true }),
          databases: arr(obj({ name: engineName('orders') }), { optional: true }),
        }),
        { nonEmpty: true },
      ),
    }),
  },
  {
    route: 'PUT /v1.0/:tenantId/instances/:instanceId/users',
    label: 'change passwords',
    as: 'owner',
    url: v1(`/instances/${mysqlId}/users`),
    spec: obj({ users: arr(obj({ name: engineName('app'), password: password(), host: leaf(['string', 'null'], '10.0.0.1', { optional: true, engineString: true }) }), { nonEmpty: true }) }),
  },
  {
    route: 'PUT /v1.0/:tenantId/instances/:instanceId/users/:user',
    as: 'owner',
    url: v1(`/instances/${mysqlId}/users/app@10.0.0.1`),
    spec: obj({
      user: obj({ name: engineName('app2', { optional: true }), password: password({ optional: true }), host: leaf(['string'], '10.0.0.2', { optional: true, engineString: true }) }),
    }),
  },
  {
    route: 'DELETE /v1.0/:tenantId/instances/:instanceId/users/:user',
    as: 'owner',
    url: v1(`/instances/${pgId}/users/app`),
    pathValue: (user) => `/v1.0/${owner.projectId}/instances/${pgId}/users/${user}`,
  },
  {
    route: 'PUT /v1.0/:tenantId/instances/:instanceId/users/:user/databases',
    as: 'owner',
    url: v1(`/instances/${pgId}/users/app/databases`),
    spec: obj({ databases: arr(obj({ name: engineName('orders') }), { nonEmpty: true }) }),
  },
  {
    route: 'DELETE /v1.0/:tenantId/instances/:instanceId/users/:user/databases/:database',
    as: 'owner',
    url: v1(`/instances/${pgId}/users/app/databases/orders`),
    pathValue: (database) => `/v1.0/${owner.projectId}/instances/${pgId}/users/app/databases/${database}`,
  },
  { route: 'POST /v1.0/:tenantId/instances/:instanceId/root', as: 'owner', url: v1(`/instances/${pgId}/root`), spec: obj({ password: password({ optional: true }) }, { nullable: true }), bodyOptional: true },
  { route: 'DELETE /v1.0/:tenantId/instances/:instanceId/root', as: 'owner', url: v1(`/instances/${pgId}/root`), pathValue: (id) => `/v1.0/${owner.projectId}/instances/${id}/root` },
  {
    route: 'PUT /v1.0/:tenantId/mgmt/quotas/:projectId',
    as: 'admin',
    url: v1admin(`/mgmt/quotas/${quotaProjectId}`),
    spec: obj({ quotas: obj({ instances: { ...quotaLimit, optional: true }, volumes: { ...quotaLimit, optional: true } }, { strict: true }) }),
  },
  { route: 'POST /v1.0/:tenantId/mgmt/instances/:instanceId/action', label: 'reset-task-status', as: 'admin', url: v1admin(`/mgmt/instances/${pgId}/action`), spec: obj({ 'reset-task-status': anyJson }, { strict: true }) },
  { route: 'POST /v1.0/:tenantId/configurations', as: 'owner', url: v1('/configurations'), spec: createConfiguration },
  {
    route: 'POST /v1.0/:tenantId/backups',
    as: 'owner',
    url: v1('/backups'),
    spec: obj({
      backup: obj({
        name: str('fuzz-backup', { invalid: nameLike(255) }),
        instance: str(pgId),
        description: leaf(['string', 'null'], 'd', { optional: true, invalid: tooLong(512) }),
        incremental: leaf(['integer', 'boolean'], 0, { optional: true, invalid: (v) => typeof v === 'number' && v !== 0 && v !== 1 }),
        swift_container: str('fuzz-container', { optional: true, invalid: (v) => typeof v === 'string' && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(v) }),
      }),
    }),
  },
  { route: 'DELETE /v1.0/:tenantId/backups/:backupId', as: 'owner', url: v1('/backups/x'), pathValue: (id) => `/v1.0/${owner.projectId}/backups/${id}` },
  {
    route: 'POST /v1.0/:tenantId/backups/:backupId/action',
    as: 'owner',
    url: v1(`/backups/${backupId}/action`),
    spec: obj({ verify: obj({}, { strict: true }) }, { strict: true }),
    pathValue: (id) => `/v1.0/${owner.projectId}/backups/${id}/action`,
  },
  {
    route: 'POST /v1.0/:tenantId/backup_strategies',
    as: 'owner',
    url: v1('/backup_strategies'),
    spec: obj(
      { backup_strategy: obj({ swift_container: str('fuzz-container', { invalid: (v) => typeof v === 'string' && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(v) }), instance_id: str(pgId, { optional: true }) }, { strict: true }) },
    ),
  },
  { route: 'DELETE /v1.0/:tenantId/backup_strategies', as: 'owner', url: v1('/backup_strategies') },
  {
    route: 'POST /v1.0/:tenantId/webhooks',
    as: 'owner',
    url: v1('/webhooks'),
    spec: obj({
      webhook: obj(
        {
          url: str('http://192.0.2.10/hook', { invalid: (v) => typeof v === 'string' && !/^https?:\/\/[^/?#]/i.test(v) }),
          secret: str('fuzz-secret-0123456789', { optional: true, invalid: (v) => typeof v === 'string' && (v.length < 16 || v.length > 256 || !/^[\x21-\x7e]+$/.test(v)) }),
          events: arr(str('org.coffer.instance.status', { invalid: (v) => typeof v === 'string' && !webhookEventTypeNames.includes(v) }), { optional: true, nonEmpty: true }),
        },
        { strict: true },
      ),
    }),
  },
  { route: 'DELETE /v1.0/:tenantId/webhooks/:webhookId', as: 'owner', url: v1('/webhooks/x'), pathValue: (id) => `/v1.0/${owner.projectId}/webhooks/${id}` },
  {
    route: 'PUT /v1.0/:tenantId/instances/:instanceId/backup_schedule',
    as: 'owner',
    url: v1(`/instances/${pgId}/backup_schedule`),
    spec: obj({
      backup_schedule: obj(
        {
          pattern: str('30 2 * * *', { invalid: (v) => typeof v === 'string' && (v.trim() === '' ? 0 : v.trim().split(/\s+/).length) !== 5 }),
          incremental: leaf(['integer', 'boolean'], false, { optional: true, invalid: (v) => typeof v === 'number' && v !== 0 && v !== 1 }),
          retain_count: leaf(['integer', 'null'], 7, { optional: true, invalid: (v) => typeof v === 'number' && (v < 1 || v > 1000) }),
          retain_days: leaf(['integer', 'null'], 30, { optional: true, invalid: (v) => typeof v === 'number' && (v < 1 || v > 3650) }),
          name: leaf(['string', 'null'], 'nightly', { optional: true, invalid: nameLike(64) }),
          verify: leaf(['boolean'], false, { optional: true }),
        },
        { strict: true },
      ),
    }),
  },
  {
    route: 'PATCH /v1.0/:tenantId/instances/:instanceId/replication',
    as: 'owner',
    url: v1(`/instances/${pgId}/replication`),
    spec: obj({ replication: obj({ failover: leaf(['boolean'], true, { optional: true }), synchronous: leaf(['boolean'], false, { optional: true }) }, { strict: true }) }),
  },
  {
    route: 'POST /v1.0/:tenantId/instances/:instanceId/log',
    as: 'owner',
    url: v1(`/instances/${pgId}/log`),
    spec: obj(
      {
        name: str('general', { invalid: (v) => typeof v === 'string' && (v.length === 0 || v.length > 64) }),
        ...Object.fromEntries(
          ['enable', 'disable', 'publish', 'discard'].map((flag) => [
            flag,
            leaf(['integer', 'boolean'], 0, { optional: true, invalid: (v) => typeof v === 'number' && v !== 0 && v !== 1 }),
          ]),
        ),
      },
      { strict: true },
    ),
  },
  {
    route: 'DELETE /v1.0/:tenantId/instances/:instanceId/backup_schedule',
    as: 'owner',
    url: v1(`/instances/${pgId}/backup_schedule`),
    pathValue: (id) => `/v1.0/${owner.projectId}/instances/${id}/backup_schedule`,
  },
  { route: 'PUT /v1.0/:tenantId/configurations/:configurationId', as: 'owner', url: v1(`/configurations/${groupId}`), spec: updateConfiguration },
  { route: 'PATCH /v1.0/:tenantId/configurations/:configurationId', as: 'owner', url: v1(`/configurations/${groupId}`), spec: obj({ configuration: obj({ values: configurationValues }) }) },
  {
    route: 'DELETE /v1.0/:tenantId/configurations/:configurationId',
    as: 'owner',
    url: v1('/configurations/x'),
    pathValue: (id) => `/v1.0/${owner.projectId}/configurations/${id}`,
  },
  // parameters are what the engines publish: these answer 501 to an admin, whatever the body
  {
    route: 'POST /v1.0/:tenantId/mgmt/datastores/versions/:versionId/parameters',
    as: 'admin',
    url: v1admin(`/mgmt/datastores/versions/${pgVersionId}/parameters`),
    spec: obj({ 'configuration-parameter': obj({ name: str('archive_command'), data_type: str('string'), restart_required: leaf(['integer', 'boolean'], 0) }) }),
    refuses: 501,
  },
  {
    route: 'PUT /v1.0/:tenantId/mgmt/datastores/versions/:versionId/parameters/:name',
    as: 'admin',
    url: v1admin(`/mgmt/datastores/versions/${pgVersionId}/parameters/max_connections`),
    spec: obj({ 'configuration-parameter': obj({ max_size: leaf(['integer'], 10_000) }) }),
    refuses: 501,
  },
  {
    route: 'DELETE /v1.0/:tenantId/mgmt/datastores/versions/:versionId/parameters/:name',
    as: 'admin',
    url: v1admin(`/mgmt/datastores/versions/${pgVersionId}/parameters/max_connections`),
    pathValue: (name) => `/v1.0/${admin.projectId}/mgmt/datastores/versions/${pgVersionId}/parameters/${name}`,
    refuses: 501,
  },
  { route: 'PATCH /v1.0/:tenantId/mgmt/datastore-versions/:versionId', as: 'admin', url: v1admin(`/mgmt/datastore-versions/${pgVersionId}`), spec: obj({ active: leaf(['boolean'], true) }, { strict: true }) },
  // versions are the engines the agents report: creating or deleting one answers 501 to an admin
  {
    route: 'POST /v1.0/:tenantId/mgmt/datastore-versions',
    as: 'admin',
    url: v1admin('/mgmt/datastore-versions'),
    spec: obj({ version: obj({ name: str('18'), datastore_name: str('postgresql'), datastore_manager: str('postgresql'), active: leaf(['boolean'], true) }) }),
    refuses: 501,
  },
  {
    route: 'DELETE /v1.0/:tenantId/mgmt/datastore-versions/:versionId',
    as: 'admin',
    url: v1admin(`/mgmt/datastore-versions/${pgVersionId}`),
    pathValue: (id) => `/v1.0/${admin.projectId}/mgmt/datastore-versions/${id}`,
    refuses: 501,
  },
  { route: 'POST /v1.0/:tenantId/mgmt/instances/:instanceId/action', label: 'stop', as: 'admin', url: v1admin(`/mgmt/instances/${mysqlId}/action`), spec: obj({ stop: anyJson }, { strict: true }) },
  {
    route: 'POST /identity/v3/auth/tokens',
    label: 'token method',
    as: 'none',
    url: () => '/identity/v3/auth/tokens',
    spec: obj({
      auth: obj({
        identity: obj({ methods: arr(str('token'), { nonEmpty: true }), token: obj({ id: str('not-a-token') }) }),
        scope: obj({ project: obj({ name: str('admin'), domain: obj({ id: str('default') }) }) }, { optional: true }),
      }),
    }),
  },
  {
    // a missing user costs a hash check as a wrong password does: lightly
    route: 'POST /identity/v3/auth/tokens',
    label: 'password method',
    as: 'none',
    url: () => '/identity/v3/auth/tokens',
    light: true,
    spec: obj({
      auth: obj({
        identity: obj({
          methods: arr(str('password'), { nonEmpty: true }),
          password: obj({ user: obj({ name: str('nobody-fuzz'), domain: obj({ id: str('default') }), password: str('pw') }) }),
        }),
      }),
    }),
  },
  { route: 'DELETE /identity/v3/auth/tokens', as: 'admin', url: () => '/identity/v3/auth/tokens' },
  {
    route: 'POST /identity/v3/users',
    as: 'admin',
    url: () => '/identity/v3/users',
    spec: obj({
      user: obj({
        name: str('fuzz-new-user', { invalid: nameLike(255) }),
        password: leaf(['string', 'null'], null, { optional: true, fewStrings: true }),
        default_project_id: leaf(['string', 'null'], null, { optional: true }),
        email: leaf(['string', 'null'], 'a@example.org', { optional: true, invalid: tooLong(255) }),
        description: leaf(['string', 'null'], 'd', { optional: true }),
        enabled: leaf(['boolean'], true, { optional: true }),
        domain_id: leaf(['string', 'null'], 'default', { optional: true }),
      }),
    }),
  },
  {
    route: 'PATCH /identity/v3/users/:userId',
    as: 'admin',
    url: () => `/identity/v3/users/${fuzzUserId}`,
    spec: obj({
      user: obj({
        description: leaf(['string', 'null'], 'd', { optional: true }),
        email: leaf(['string', 'null'], 'a@example.org', { optional: true, invalid: tooLong(255) }),
        enabled: leaf(['boolean'], true, { optional: true }),
      }),
    }),
  },
  {
    route: 'PATCH /identity/v3/users/:userId',
    label: 'password',
    as: 'admin',
    url: () => `/identity/v3/users/${fuzzUserId}`,
    light: true,
    spec: obj({ user: obj({ password: leaf(['string', 'null'], 'pw', { optional: true, invalid: (v) => v === '' }) }) }),
  },
  {
    route: 'POST /identity/v3/users/:userId/password',
    as: 'none',
    url: () => `/identity/v3/users/${fuzzUserId}/password`,
    light: true,
    spec: obj({ user: obj({ original_password: str('wrong'), password: str('new-pw') }) }),
  },
  { route: 'DELETE /identity/v3/users/:userId', as: 'admin', url: () => '/identity/v3/users/x', pathValue: (id) => `/identity/v3/users/${id}` },
  {
    route: 'POST /identity/v3/projects',
    as: 'admin',
    url: () => '/identity/v3/projects',
    spec: obj({
      project: obj({
        name: str('fuzz-new-project', { invalid: nameLike(64) }),
        domain_id: leaf(['string', 'null'], 'default', { optional: true }),
        description: leaf(['string', 'null'], 'd', { optional: true }),
        enabled: leaf(['boolean'], true, { optional: true }),
      }),
    }),
  },
  {
    route: 'PATCH /identity/v3/projects/:projectId',
    as: 'admin',
    url: () => `/identity/v3/projects/${fuzzProjectId}`,
    spec: obj({
      project: obj({
        name: str('fuzz-project', { optional: true, invalid: nameLike(64) }),
        description: leaf(['string', 'null'], 'd', { optional: true }),
        enabled: leaf(['boolean'], true, { optional: true }),
      }),
    }),
  },
  { route: 'DELETE /identity/v3/projects/:projectId', as: 'admin', url: () => '/identity/v3/projects/x', pathValue: (id) => `/identity/v3/projects/${id}` },
  {
    route: 'PUT /identity/v3/projects/:projectId/users/:userId/roles/:roleId',
    as: 'admin',
    url: () => '/identity/v3/projects/x/users/y/roles/z',
    pathValue: (id) => `/identity/v3/projects/${fuzzProjectId}/users/${fuzzUserId}/roles/${id}`,
  },
  {
    route: 'DELETE /identity/v3/projects/:projectId/users/:userId/roles/:roleId',
    as: 'admin',
    url: () => '/identity/v3/projects/x/users/y/roles/z',
    pathValue: (id) => `/identity/v3/projects/${id}/users/${fuzzUserId}/roles/${memberRoleId}`,
  },
];

// ---- requests ----

const unstorable = (s: string) => s.includes('\0') || !isWellFormed(s);

interface FuzzRequest {
  what: string;
  url: string;
  contentType?: string;
  payload?: string;
  headers?: Record<string, string>;
  mustReject: boolean;
  /** every string the client sent, for comparing with what the guest got */
  sent: Set<string>;
}

function stringsIn(value: unknown, into = new Set<string>()): Set<string> {
  if (typeof value === 'string') into.add(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, into);
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) stringsIn(v, into.add(k));
  return into;
}

/** Percent-encoding of the UTF-8 bytes (encodeURIComponent throws on a lone surrogate). */
function encodePathSegment(value: string): string {
  return [...Buffer.from(value, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

const wrongContentTypes = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/json-patch+json'];
const invalidJson = ['{', '{"a":', '{"a" 1}', "{'a': 1}", '{"a":1}x', '{"a":1,}', '[1,]', 'NaN', 'nul', '\ufeff{}', '{"a":"\\x41"}', '{"a":"\\ud800"', '\u0000'];

function requestsFor(target: Target, random: () => number): FuzzRequest[] {
  const out: FuzzRequest[] = [];
  if (target.pathValue !== undefined) {
    const values = [...hostileNames.filter((n) => n !== '' && n !== '.' && n !== '..'), newUuid()];
    for (const value of values) {
      out.push({ what: `path value ${JSON.stringify(value.slice(0, 40))}`, url: target.pathValue(encodePathSegment(value)), mustReject: false, sent: new Set([value]) });
    }
    // bytes that are not UTF-8 at all, and an encoded NUL
    for (const raw of ['%ED%A0%80', '%FF', '%C0%AF', '%00', 'a%00b', '%25', '%']) {
      out.push({ what: `raw path value ${raw}`, url: target.pathValue(raw), mustReject: raw.includes('%00'), sent: new Set([raw]) });
    }
    // longer than the router's default parameter limit once encoded
    for (const long of ['x'.repeat(300), 'ü'.repeat(40), '😀'.repeat(30)]) {
      out.push({ what: `path value of ${long.length} characters`, url: target.pathValue(encodePathSegment(long)), mustReject: false, sent: new Set([long]) });
    }
  }
  if (target.route === 'DELETE /identity/v3/auth/tokens') {
    for (const value of [...hostileNames.filter((n) => !unfitForEngine(n)), 'x'.repeat(10_000)]) {
      out.push({ what: `subject token ${JSON.stringify(value.slice(0, 40))}`, url: target.url(), headers: { 'x-subject-token': value }, mustReject: true, sent: new Set() });
    }
  }
  const spec = target.spec;
  if (spec === undefined) return out;
  const url = target.url();
  const sample = sampleOf(spec);
  const bodyRequired = target.bodyOptional !== true;
  const json = (what: string, body: unknown): FuzzRequest => ({
    what,
    url,
    contentType: 'application/json',
    payload: JSON.stringify(body),
    // NUL and lone surrogates are refused in any string of any body (json-body.ts)
    mustReject: (violates(spec, body) && !(body === null && !bodyRequired)) || [...stringsIn(body)].some(unstorable),
    sent: stringsIn(body),
  });
  for (const c of bodyCases(spec, random, target.light === true)) out.push(json(c.what, c.body));
  for (const [what, body] of [['null', null], ['[]', []], ['[sample]', [sample]], ['a string', 'x'], ['42', 42], ['true', true], ['{}', {}]] as const) {
    out.push(json(`body = ${what}`, body));
  }
  for (const text of invalidJson) out.push({ what: `invalid JSON ${JSON.stringify(text)}`, url, contentType: 'application/json', payload: text, mustReject: true, sent: new Set() });
  out.push({ what: 'empty body', url, contentType: 'application/json', payload: '', mustReject: bodyRequired, sent: new Set() });
  out.push({ what: 'no content type', url, payload: JSON.stringify(sample), mustReject: false, sent: stringsIn(sample) });
  for (const type of wrongContentTypes) {
    out.push({ what: `content type ${type}`, url, contentType: type, payload: JSON.stringify(sample), mustReject: bodyRequired, sent: stringsIn(sample) });
  }
  out.push({ what: 'charset parameter', url, contentType: 'application/json; charset=utf-8', payload: JSON.stringify(sample), mustReject: false, sent: stringsIn(sample) });
  out.push({ what: 'arrays 100000 deep', url, contentType: 'application/json', payload: `${'['.repeat(100_000)}${']'.repeat(100_000)}`, mustReject: true, sent: new Set() });
  // refused where a key `a` is (unknown keys are ignored elsewhere, as in Trove)
  const deepObjects = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
  out.push({ what: 'objects 50000 deep', url, contentType: 'application/json', payload: deepObjects, mustReject: violates(spec, { a: 1 }), sent: new Set() });
  // 1 MB in one string: the body limit, not the handler, refuses it
  const big = JSON.stringify({ ...(sample as object), fuzz_padding: 'n'.repeat(1024 * 1024) });
  out.push({ what: '1 MB string', url, contentType: 'application/json', payload: big, mustReject: true, sent: new Set() });
  return out;
}

// ---- judging ----

function headersFor(target: Target, request: FuzzRequest): Record<string, string> {
  const session = target.as === 'admin' ? admin : target.as === 'owner' ? owner : undefined;
  return {
    host: 'db.example',
    ...(session === undefined ? {} : { 'x-auth-token': session.token }),
    ...(request.contentType === undefined ? {} : { 'content-type': request.contentType }),
    ...request.headers,
  };
}

function errorShapeProblem(target: Target, status: number, body: string): string | undefined {
  let parsed: any;
  try {
    parsed = JSON.parse(body);
  } catch {
    return `error body is not JSON: ${body.slice(0, 200)}`;
  }
  if (target.route.includes(' /identity')) {
    const e = parsed?.error;
    if (e?.code !== status || typeof e.title !== 'string' || typeof e.message !== 'string') return `not Keystone's error shape: ${body.slice(0, 300)}`;
    return undefined;
  }
  const fault = faultByStatus[status];
  const keys = Object.keys(parsed ?? {});
  if (fault === undefined || keys.length !== 1 || keys[0] !== fault || parsed[fault].code !== status || typeof parsed[fault].message !== 'string') {
    return `not Trove's error shape for ${status} (${fault}): ${body.slice(0, 300)}`;
  }
  return undefined;
}

/** Strings the guest got that an engine would take as names: database names, user names and hosts. */
function engineStrings(call: GuestCall): { names: string[]; secrets: string[] } {
  const names: string[] = [];
  const secrets: string[] = [];
  const walk = (value: unknown, key: string) => {
    // the storage container a log is published to is the deployment's, never the client's
    if (key === 'container') return;
    if (typeof value === 'string') (key === 'password' ? secrets : names).push(value);
    else if (Array.isArray(value)) for (const v of value) walk(v, key);
    else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, k);
  };
  walk(call.args, '');
  return { names, secrets };
}

async function run(target: Target, request: FuzzRequest): Promise<string[]> {
  const problems: string[] = [];
  const before = await snapshot();
  const callsBefore = calls.length;
  const castsBefore = h.casts.length;
  const method = target.route.split(' ')[0] as 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  // what the URL names (users as name@host) was sent too
  for (const segment of request.url.split('?')[0]!.split('/')) {
    try {
      const decoded = decodeURIComponent(segment);
      request.sent.add(decoded);
      const at = decoded.lastIndexOf('@');
      if (at >= 0) request.sent.add(decoded.slice(0, at)).add(decoded.slice(at + 1));
    } catch {
      // not UTF-8: the router refuses it
    }
  }
  const res = await h.app.inject({
    method,
    url: request.url,
    headers: headersFor(target, request),
    ...(request.payload === undefined ? {} : { payload: request.payload }),
  });
  const status = res.statusCode;
  const made = calls.slice(callsBefore);
  const writes = made.filter((c) => guestWrites.has(c.method));
  if ((status >= 500 && status !== target.refuses) || status < 200 || (status >= 300 && status < 400)) {
    problems.push(`${status}: ${res.body.slice(0, 300)}`);
  } else if (status >= 400) {
    const shape = errorShapeProblem(target, status, res.body);
    if (shape !== undefined) problems.push(shape);
    if ((await snapshot()) !== before) problems.push(`refused with ${status} but changed state: ${res.body.slice(0, 200)}`);
    if (writes.length > 0) problems.push(`refused with ${status} after guest writes ${writes.map((w) => w.method).join(', ')}: ${res.body.slice(0, 200)}`);
  } else {
    if (request.mustReject) problems.push(`accepted with ${status}, must be refused`);
    for (const call of writes) {
      const { names, secrets } = engineStrings(call);
      for (const s of [...names, ...secrets]) {
        if (unfitForEngine(s)) problems.push(`guest ${call.method} got ${JSON.stringify(s)}, which no engine can carry`);
      }
      for (const name of names) {
        if (name !== '%' && !request.sent.has(name)) problems.push(`guest ${call.method} got ${JSON.stringify(name)}, which the client did not send`);
      }
    }
    // what POST /instances hands the taskmanager for the guest's prepare
    for (const cast of h.casts.slice(castsBefore)) {
      const task = await h.store.tasks.get(cast.taskId);
      for (const s of stringsIn(task?.payload)) {
        if (unfitForEngine(s)) problems.push(`task ${task?.kind} carries ${JSON.stringify(s)}, which no engine can carry`);
      }
    }
    await settleInstances();
  }
  return problems.map((p) => `${request.what}: ${p}`);
}

describe('fuzzing every write endpoint', () => {
  test('every write route the API registers is fuzzed', () => {
    const writes = [...registeredRoutes(h.app)].filter((r) => !r.startsWith('GET '));
    const fuzzed = new Set(targets().map((t) => t.route));
    assert.deepEqual(writes.filter((r) => !fuzzed.has(r)).sort(), [], 'write routes without fuzz targets');
    assert.deepEqual([...fuzzed].filter((r) => !writes.includes(r)).sort(), [], 'fuzz targets for routes that do not exist');
  });

  test('the fuzz descriptions accept their own samples', () => {
    for (const target of targets()) {
      if (target.spec !== undefined) assert.equal(violates(target.spec, sampleOf(target.spec)), false, target.route);
    }
  });

  const random = seededRandom(seed);
  test('malformed and hostile requests get a 4xx in the API\'s shape and change nothing', async (t) => {
    const all = targets();
    let sent = 0;
    const byTarget: Record<string, string[]> = {};
    for (const target of all) {
      const name = `${target.route}${target.label === undefined ? '' : ` (${target.label})`}`;
      const problems: string[] = [];
      const started = Date.now();
      const requests = requestsFor(target, random);
      for (const request of requests) {
        problems.push(...(await run(target, request)));
        sent++;
      }
      if (problems.length > 0) byTarget[name] = problems;
      t.diagnostic(`${name}: ${requests.length} requests, ${problems.length} problems (${Date.now() - started} ms)`);
    }
    t.diagnostic(`${sent} requests`);
    assert.ok(sent > 4000, `${sent} requests sent`);
    assert.deepEqual(byTarget, {});
  });

  // What the fuzz found first, pinned down.
  test('found by fuzzing: inherited names are no character sets; NUL and lone surrogates are refused; long ids are 404; bad URLs get the API\'s shapes', async () => {
    const headers = { 'x-auth-token': owner.token, 'content-type': 'application/json' };
    for (const charset of ['constructor', '__proto__', 'toString']) {
      const res = await h.app.inject({
        method: 'POST',
        url: `/v1.0/${owner.projectId}/instances/${mysqlId}/databases`,
        headers,
        payload: JSON.stringify({ databases: [{ name: 'd1', character_set: charset, collate: 'utf8mb4_bin' }] }),
      });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(json(res).badRequest.message, `'${charset}' not a valid character set.`);
    }
    for (const user of [{ name: 'a\ud800', password: 'pw' }, { name: 'ok', password: 'p\udc00w' }]) {
      const res = await h.app.inject({ method: 'POST', url: `/v1.0/${owner.projectId}/instances/${pgId}/users`, headers, payload: JSON.stringify({ users: [user] }) });
      assert.equal(res.statusCode, 400, res.body);
      assert.ok(json(res).badRequest);
    }
    const nul = await h.app.inject({
      method: 'POST',
      url: `/v1.0/${owner.projectId}/instances`,
      headers,
      payload: JSON.stringify({ instance: { name: 'db\u0000x', flavorRef: '1', volume: { size: 1 }, datastore: { type: 'postgresql' } } }),
    });
    assert.equal(nul.statusCode, 400, 'a PostgreSQL state store cannot hold it: refused for every store');
    assert.match(json(nul).badRequest.message, /NUL/);
    const nulKey = await h.app.inject({ method: 'POST', url: '/identity/v3/projects', headers: { 'x-auth-token': admin.token, 'content-type': 'application/json' }, payload: '{"project":{"name":"p","x\\u0000":1}}' });
    assert.equal(nulKey.statusCode, 400);
    assert.equal(json(nulKey).error.code, 400);
    const nulPath = await h.app.inject({ method: 'GET', url: `/v1.0/${owner.projectId}/instances/a%00b`, headers });
    assert.equal(nulPath.statusCode, 400);
    assert.deepEqual(Object.keys(json(nulPath)), ['badRequest']);
    const longId = await h.app.inject({ method: 'GET', url: `/v1.0/${owner.projectId}/instances/${'x'.repeat(300)}`, headers });
    assert.equal(longId.statusCode, 404, 'an unknown id, however long, is 404 as in Trove');
    const trove = await h.app.inject({ method: 'DELETE', url: `/v1.0/${owner.projectId}/instances/%FF`, headers });
    assert.equal(trove.statusCode, 400);
    assert.deepEqual(Object.keys(json(trove)), ['badRequest']);
    assert.match(String(trove.headers['x-openstack-request-id']), /^req-/);
    const keystone = await h.app.inject({ method: 'DELETE', url: '/identity/v3/users/%ED%A0%80', headers: { 'x-auth-token': admin.token } });
    assert.equal(keystone.statusCode, 400);
    assert.equal(json(keystone).error.code, 400);
  });

  test('the server still answers, and no request polluted a prototype', async () => {
    const flavors = await h.app.inject({ method: 'GET', url: `/v1.0/${owner.projectId}/flavors`, headers: { 'x-auth-token': owner.token } });
    assert.equal(flavors.statusCode, 200);
    assert.ok(json(flavors).flavors.length > 0);
    const version = await h.app.inject({ method: 'GET', url: '/identity/v3' });
    assert.equal(version.statusCode, 200);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(({} as Record<string, unknown>)['isAdmin'], undefined);
    const me = await h.app.inject({ method: 'GET', url: `/v1.0/${owner.projectId}/mgmt/instances`, headers: { 'x-auth-token': owner.token } });
    assert.equal(me.statusCode, 401, 'the member is still no admin');
  });

  test('every read route answers hostile ids and query values with a 2xx or a 4xx in the API\'s shape', async () => {
    const random = seededRandom(seed + 1);
    const values = [...hostileNames.filter((n) => !['', '.', '..'].includes(n)), ...randomNames(random, 10), 'x'.repeat(300)];
    const queries = ['limit=-1', 'limit=0', 'limit=1e308', 'limit=abc', 'limit=9007199254740993', 'marker=%27%22%60', 'marker=%00', 'deleted=%FF', 'limit=1&limit=2', 'name[]=x', 'project_id=%ED%A0%80', 'include_names=%27'];
    const problems: string[] = [];
    const gets = [...registeredRoutes(h.app)].filter((r) => r.startsWith('GET ')).map((r) => r.slice(4));
    for (const path of gets) {
      const urls = [
        ...values.map((v) => path.replace(/:([A-Za-z]+)/g, (_, key: string) => (key === 'tenantId' ? admin.projectId : encodePathSegment(v)))),
        ...queries.map((q) => `${path.replace(/:([A-Za-z]+)/g, (_, key: string) => (key === 'tenantId' ? admin.projectId : key === 'instanceId' ? pgId : 'x'))}?${q}`),
      ];
      for (const url of [...new Set(urls)]) {
        const res = await h.app.inject({ method: 'GET', url, headers: { 'x-auth-token': admin.token } });
        // 501: GET /databases/{name}, which Trove routes and never implemented
        if (res.statusCode >= 500 && res.statusCode !== 501) problems.push(`GET ${url.slice(0, 120)}: ${res.statusCode} ${res.body.slice(0, 200)}`);
        else if (res.statusCode >= 400) {
          const shape = errorShapeProblem({ route: `GET ${path}`, as: 'admin', url: () => url }, res.statusCode, res.body);
          if (shape !== undefined) problems.push(`GET ${url.slice(0, 120)}: ${shape}`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  test('hostile tokens get keystonemiddleware\'s 401 and create nothing', async () => {
    const printable = hostileNames.filter((n) => /^[\x20-\x7e]+$/.test(n));
    const tokens = [...printable, 'x'.repeat(10_000), `${owner.token}x`, owner.token.toUpperCase()];
    const before = await snapshot();
    for (const token of tokens) {
      const res = await h.app.inject({
        method: 'POST',
        url: `/v1.0/${owner.projectId}/instances`,
        headers: { 'x-auth-token': token, 'content-type': 'application/json' },
        payload: JSON.stringify(sampleOf(createInstance)),
      });
      assert.equal(res.statusCode, 401, `${JSON.stringify(token.slice(0, 40))}: ${res.body.slice(0, 200)}`);
      assert.equal(json(res).error.code, 401);
      assert.match(String(res.headers['www-authenticate']), /^Keystone uri=/);
    }
    assert.equal(await snapshot(), before);
  });

  test('no password or token sent during the fuzz reached the log', async () => {
    await new Promise<void>((resolve, reject) => logger.flush((err) => (err ? reject(err) : resolve())));
    const log = await readFile(logFile, 'utf8');
    assert.ok(log.split('\n').length > 1000, 'the API logged each request at debug');
    for (const secret of ['pw-Fuzz-1', 'new-pw', admin.token, owner.token]) {
      assert.equal(log.includes(secret), false, `${secret.slice(0, 12)}… is in the log`);
    }
  });
});
