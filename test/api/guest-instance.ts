// An instance row of a chosen engine and state, and a fake guest on its topic that keeps
// databases, users and root in memory with the guest contract's semantics (errors included),
// for the database, user and root API tests.
import { guestContract, guestTopic, serveRpc, type DatabaseSpec, type RpcHandlers, type Subscription } from '../../src/bus/index.js';
import { CofferError, newUuid, type EngineCapabilities } from '../../src/common/index.js';
import type { ServiceStatusName } from '../../src/db/index.js';
import { fakeGuestHandlers } from '../support/fake-guest.js';
import type { Harness, Session } from './api-harness.js';

type GuestHandlers = RpcHandlers<typeof guestContract>;

export interface MemoryUser {
  name: string;
  host: string;
  password: string;
  databases: Set<string>;
}

/** What the fake engine holds, and every guest method called, in order. */
export interface MemoryEngine {
  databases: Map<string, DatabaseSpec>;
  users: Map<string, MemoryUser>;
  rootPassword: string | undefined;
  calls: string[];
}

const key = (u: { name: string; host: string }) => `${u.name}@${u.host}`;

function memoryHandlers(engine: MemoryEngine): Partial<GuestHandlers> {
  const user = (ref: { name: string; host: string }) => {
    const found = engine.users.get(key(ref));
    if (found === undefined) throw new CofferError('UserNotFound', `User ${ref.name} does not exist.`);
    return found;
  };
  const record = <A extends unknown[], R>(name: string, fn: (...args: A) => R) => (...args: A): R => {
    engine.calls.push(name);
    return fn(...args);
  };
  return {
    listDatabases: record('listDatabases', async () => ({ databases: [...engine.databases.values()] })),
    createDatabases: record('createDatabases', async ({ databases }) => {
      const taken = databases.find((d) => engine.databases.has(d.name));
      if (taken !== undefined) throw new CofferError('DatabaseAlreadyExists', `A database with the name "${taken.name}" already exists.`);
      for (const d of databases) engine.databases.set(d.name, d);
      return {};
    }),
    deleteDatabase: record('deleteDatabase', async ({ name }) => {
      if (!engine.databases.delete(name)) throw new CofferError('DatabaseNotFound', `Database ${name} cannot be found on the instance.`);
      return {};
    }),
    listUsers: record('listUsers', async () => ({
      users: [...engine.users.values()].map((u) => ({ name: u.name, host: u.host, databases: [...u.databases].map((name) => ({ name })) })),
    })),
    createUsers: record('createUsers', async ({ users }) => {
      const taken = users.find((u) => engine.users.has(key({ name: u.name, host: u.host ?? '%' })));
      if (taken !== undefined) throw new CofferError('UserAlreadyExists', `A user with the name "${taken.name}" already exists.`);
      for (const u of users) {
        const host = u.host ?? '%';
        engine.users.set(key({ name: u.name, host }), { name: u.name, host, password: u.password, databases: new Set(u.databases.map((d) => d.name)) });
      }
      return {};
    }),
    deleteUser: record('deleteUser', async ({ user: ref }) => {
      user(ref);
      engine.users.delete(key(ref));
      return {};
    }),
    updateUser: record('updateUser', async ({ user: ref, changes }) => {
      const found = user(ref);
      const renamed = { ...found, name: changes.name ?? found.name, host: changes.host ?? found.host, password: changes.password ?? found.password };
      if (key(renamed) !== key(ref) && engine.users.has(key(renamed))) {
        throw new CofferError('UserAlreadyExists', `A user with the name "${renamed.name}" already exists.`);
      }
      engine.users.delete(key(ref));
      engine.users.set(key(renamed), renamed);
      return {};
    }),
    grantAccess: record('grantAccess', async ({ user: ref, databases }) => {
      const found = user(ref);
      const missing = databases.find((d) => !engine.databases.has(d));
      if (missing !== undefined) throw new CofferError('DatabaseNotFound', `Database ${missing} cannot be found on the instance.`);
      for (const d of databases) found.databases.add(d);
      return {};
    }),
    revokeAccess: record('revokeAccess', async ({ user: ref, database }) => {
      if (!user(ref).databases.delete(database)) {
        throw new CofferError('DatabaseNotFound', `User ${ref.name} has no access to database ${database}.`);
      }
      return {};
    }),
    enableRoot: record('enableRoot', async ({ password }) => {
      engine.rootPassword = password;
      return { name: 'root' };
    }),
    disableRoot: record('disableRoot', async () => {
      engine.rootPassword = undefined;
      return {};
    }),
  };
}

export interface GuestInstance {
  id: string;
  engine: MemoryEngine;
  close(): Promise<void>;
}

export interface GuestInstanceOptions {
  capabilities: EngineCapabilities;
  manager?: string;
  status?: ServiceStatusName;
  /** replaces the memory engine's handlers */
  handlers?: Partial<GuestHandlers>;
}

/** An instance of `session`'s project on a version of its own with `capabilities`, and its guest. */
export async function guestInstance(h: Harness, session: Session, options: GuestInstanceOptions): Promise<GuestInstance> {
  const manager = options.manager ?? 'postgresql';
  const datastore = await h.store.datastores.ensureDatastore(manager, newUuid());
  const version = await h.store.datastores.upsertVersion({
    id: newUuid(),
    datastoreId: datastore.id,
    name: `v-${newUuid().slice(0, 8)}`,
    version: '1.0',
    manager,
    active: true,
    inactiveReason: null,
    updatedAt: new Date(),
    capabilities: options.capabilities,
  });
  const id = newUuid();
  const now = new Date();
  await h.store.instances.create({
    id,
    name: `db-${id.slice(0, 6)}`,
    tenantId: session.projectId,
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
  await h.store.serviceStatuses.set({ instanceId: id, status: options.status ?? 'HEALTHY', updatedAt: now });
  const engine: MemoryEngine = { databases: new Map(), users: new Map(), rootPassword: undefined, calls: [] };
  const sub: Subscription = await serveRpc(
    h.transport,
    guestContract,
    guestTopic(id),
    fakeGuestHandlers({ ...memoryHandlers(engine), ...options.handlers }),
  );
  return { id, engine, close: () => sub.close() };
}
