// A real API over a real (in-memory SQLite) state store and the in-process bus. The taskmanager
// is another component: a recording consumer on its topic stands in for it.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { hashPassword } from '../../src/api/identity/password-hash.js';
import { buildApiServer, bootstrapIdentity, seedFlavors, type ApiOptions } from '../../src/api/index.js';
import { InProcessTransport, serveRpc, taskmanagerContract, taskmanagerTopic, type Subscription } from '../../src/bus/index.js';
import { newKeystoneId, newUuid } from '../../src/common/ids.js';
import { noEngineCapabilities } from '../../src/common/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { openStateStore, type OpenStateStoreOptions, type StateStore } from '../../src/db/index.js';

export const adminPassword = 'admin-secret-pw';

export interface RecordedCast {
  taskId: string;
  requestId: string;
  projectId: string | undefined;
  instanceId: string | undefined;
}

export interface Harness {
  app: FastifyInstance;
  store: StateStore;
  transport: InProcessTransport;
  casts: RecordedCast[];
  close(): Promise<void>;
}

/**
 * `storeUrl`: another state database (created when missing) for tests that need real concurrency;
 * `storeOptions`: how it is opened (e.g. to count the statements a request runs).
 */
export async function startHarness(
  options: Partial<ApiOptions> = {},
  storeUrl = 'sqlite::memory:',
  storeOptions: OpenStateStoreOptions = {},
): Promise<Harness> {
  const store = await openStateStore(storeUrl, storeOptions);
  const transport = new InProcessTransport();
  const casts: RecordedCast[] = [];
  const consumer: Subscription = await serveRpc(transport, taskmanagerContract, taskmanagerTopic, {
    runTask: async (args, meta) => {
      casts.push({
        taskId: args.taskId,
        requestId: meta.context.requestId,
        projectId: meta.context.projectId,
        instanceId: meta.context.instanceId,
      });
    },
  });
  await bootstrapIdentity(store, adminPassword);
  await seedFlavors(store);
  const app = await buildApiServer({ store, transport, logger: silentLogger(), ...options });
  await app.ready();
  return {
    app,
    store,
    transport,
    casts,
    async close() {
      await app.close();
      await consumer.close();
      await transport.close();
      await store.close();
    },
  };
}

// Response bodies are checked by assertions, not by types.
 
export function json<T = any>(res: LightMyRequestResponse): T {
  return (res.body === '' ? undefined : JSON.parse(res.body)) as T;
}

export function passwordAuth(user: string, password: string, project?: string) {
  return {
    auth: {
      identity: { methods: ['password'], password: { user: { name: user, domain: { id: 'default' }, password } } },
      ...(project === undefined ? {} : { scope: { project: { name: project, domain: { id: 'default' } } } }),
    },
  };
}

export interface Session {
  token: string;
  projectId: string;
  userId: string;
}

export async function login(app: FastifyInstance, user: string, password: string, project: string): Promise<Session> {
  const res = await app.inject({ method: 'POST', url: '/identity/v3/auth/tokens', payload: passwordAuth(user, password, project) });
  if (res.statusCode !== 201) throw new Error(`login ${user} failed: ${res.statusCode} ${res.body}`);
  const body = json(res);
  return { token: String(res.headers['x-subject-token']), projectId: body.token.project.id, userId: body.token.user.id };
}

export async function adminSession(app: FastifyInstance): Promise<Session> {
  return login(app, 'admin', adminPassword, 'admin');
}

/** A fresh project with one member user, made through the store (identity CRUD has its own tests). */
export async function memberSession(h: Harness, prefix = 'p'): Promise<Session> {
  const suffix = newKeystoneId().slice(0, 8);
  const member = await h.store.roles.ensure('member', newKeystoneId());
  const projectId = newKeystoneId();
  await h.store.projects.create({
    id: projectId,
    name: `${prefix}-${suffix}`,
    domainId: 'default',
    description: '',
    enabled: true,
    createdAt: new Date(),
  });
  const userId = newKeystoneId();
  await h.store.users.create({
    id: userId,
    name: `u-${suffix}`,
    domainId: 'default',
    passwordHash: await hashPassword('pw-member'),
    defaultProjectId: projectId,
    email: null,
    description: '',
    enabled: true,
    createdAt: new Date(),
  });
  await h.store.roleAssignments.grant({ userId, projectId, roleId: member.id });
  return login(h.app, `u-${suffix}`, 'pw-member', `${prefix}-${suffix}`);
}

export interface SeededDatastore {
  datastoreId: string;
  activeVersionId: string;
  inactiveVersionId: string;
}

/** What the seeded versions report they can do: PostgreSQL without host patterns or character sets. */
export const seededCapabilities = {
  postgresql: { ...noEngineCapabilities, databases: true, users: true, userAccess: true, root: true, accessRules: true },
  mysql: { ...noEngineCapabilities, databases: true, users: true, userHosts: true, userAccess: true, characterSets: true, root: true },
};

/** A postgresql datastore with an active "15" (the default) and an inactive "16"; a mysql one with "8.0". */
export async function seedDatastores(store: StateStore): Promise<SeededDatastore & { mysqlId: string }> {
  const ds = await store.datastores.ensureDatastore('postgresql', newUuid());
  const active = await store.datastores.upsertVersion({
    id: newUuid(),
    datastoreId: ds.id,
    name: '15',
    version: '15.19',
    manager: 'postgresql',
    active: true,
    inactiveReason: null,
    updatedAt: new Date(),
    capabilities: seededCapabilities.postgresql,
  });
  const inactive = await store.datastores.upsertVersion({
    id: newUuid(),
    datastoreId: ds.id,
    name: '16',
    version: '16.4',
    manager: 'postgresql',
    active: false,
    inactiveReason: 'postgres 16 binaries not found',
    updatedAt: new Date(),
  });
  await store.datastores.setDefaultVersion(ds.id, active.id);
  const mysql = await store.datastores.ensureDatastore('mysql', newUuid());
  await store.datastores.upsertVersion({
    id: newUuid(),
    datastoreId: mysql.id,
    name: '8.0',
    version: '8.0.36',
    manager: 'mysql',
    active: true,
    inactiveReason: null,
    updatedAt: new Date(),
    capabilities: seededCapabilities.mysql,
  });
  return { datastoreId: ds.id, activeVersionId: active.id, inactiveVersionId: inactive.id, mysqlId: mysql.id };
}
