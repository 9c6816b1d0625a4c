import type { FastifyInstance } from 'fastify';
import type { UserChanges, UserInfo, UserRef } from '../../bus/index.js';
import { CofferError } from '../../common/index.js';
import { parseTroveBody } from '../parse-body.js';
import { checkPasswordPolicy } from '../password-policy.js';
import {
  validateDatabaseName,
  validatePassword,
  validateUserHost,
  validateUserName,
  validateUsers,
  type SchemaTarget,
} from './database-user-rules.js';
import { changePasswordsSchema, createUsersSchema, grantAccessSchema, updateUserSchema } from './database-user-schemas.js';
import { loadGuestTarget, type GuestTarget, type InstanceParams } from './guest-target.js';
import { pageOfList } from './list-page.js';
import { viewContext, type TroveDeps } from './trove-deps.js';
import { parseUserPathId, userKey } from './user-path-id.js';

// Users of an instance and their access to databases (reference 2.4). The guest lists, creates,
// changes and drops them; the API checks the instance, what its engine supports and every name,
// host and password first. Users are addressed as `name[@host]` (user-path-id.ts); as in Trove,
// a route on one user first looks it up, so that a missing user is 404 in one wording.

type Params = { Params: InstanceParams };
type UserParams = { Params: InstanceParams & { user: string } };
type AccessParams = { Params: InstanceParams & { user: string; database: string } };

function userView(user: UserInfo) {
  return { name: user.name, host: user.host, databases: user.databases.map((d) => ({ name: d.name })) };
}

function userNotFound(id: string): CofferError {
  return new CofferError('UserNotFound', `User ${id} cannot be found on the instance.`);
}

/** The user a path names; the engine's own users are never found, as Trove ignores them. */
function pathUser(id: string, schema: SchemaTarget): UserRef {
  const ref = parseUserPathId(id);
  try {
    validateUserName(ref.name, schema);
  } catch {
    throw userNotFound(id);
  }
  return ref;
}

async function findUser(target: GuestTarget, ref: UserRef, id: string): Promise<UserInfo> {
  const { users } = await target.guest.listUsers({}, target.context);
  const user = users.find((u) => u.name === ref.name && u.host === ref.host);
  if (user === undefined) throw userNotFound(id);
  return user;
}

export async function userRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const users = (action: string) => (request: Parameters<typeof loadGuestTarget>[1]) =>
    loadGuestTarget(deps, request, `instance:extension:user:${action}`, (c) => c.users);
  const access = (action: string) => (request: Parameters<typeof loadGuestTarget>[1]) =>
    loadGuestTarget(deps, request, `instance:extension:user_access:${action}`, (c) => c.users && c.userAccess);

  app.get<Params>('/instances/:instanceId/users', async (request) => {
    const target = await users('index')(request);
    const { users: all } = await target.guest.listUsers({}, target.context);
    const page = pageOfList(request, viewContext(request).linkBase, all, userKey);
    return { users: page.items.map(userView), ...(page.links === undefined ? {} : { links: page.links }) };
  });

  app.post<Params>('/instances/:instanceId/users', async (request, reply) => {
    const body = parseTroveBody(createUsersSchema, request.body);
    const target = await users('create')(request);
    const created = validateUsers(body.users, target.schema);
    for (const u of created) checkPasswordPolicy(u.password, deps.passwordPolicy, `user '${u.name}'`);
    await target.guest.createUsers({ users: created }, target.context);
    reply.code(202).type('application/json').send();
  });

  // Change passwords: every user must exist before any password changes.
  app.put<Params>('/instances/:instanceId/users', async (request, reply) => {
    const body = parseTroveBody(changePasswordsSchema, request.body);
    const target = await users('update_all')(request);
    const changes = body.users.map((u) => {
      const name = validateUserName(u.name, target.schema);
      const host = validateUserHost(u.host, name, target.schema);
      const password = checkPasswordPolicy(validatePassword(u.password, name), deps.passwordPolicy, `user '${name}'`);
      return { user: { name, host }, password };
    });
    const { users: existing } = await target.guest.listUsers({}, target.context);
    for (const { user } of changes) {
      if (!existing.some((e) => e.name === user.name && e.host === user.host)) throw userNotFound(userKey(user));
    }
    for (const { user, password } of changes) {
      await target.guest.updateUser({ user, changes: { password } }, target.context);
    }
    reply.code(202).type('application/json').send();
  });

  app.get<UserParams>('/instances/:instanceId/users/:user', async (request) => {
    const target = await users('show')(request);
    const ref = pathUser(request.params.user, target.schema);
    return { user: userView(await findUser(target, ref, request.params.user)) };
  });

  app.put<UserParams>('/instances/:instanceId/users/:user', async (request, reply) => {
    const body = parseTroveBody(updateUserSchema, request.body);
    const target = await users('update')(request);
    const ref = pathUser(request.params.user, target.schema);
    const changes: UserChanges = {};
    const newName = body.user.name === undefined ? ref.name : validateUserName(body.user.name, target.schema);
    if (body.user.name !== undefined) changes.name = newName;
    if (body.user.host !== undefined) changes.host = validateUserHost(body.user.host, newName, target.schema);
    if (body.user.password !== undefined) {
      changes.password = checkPasswordPolicy(validatePassword(body.user.password, newName), deps.passwordPolicy, `user '${newName}'`);
    }
    await findUser(target, ref, request.params.user);
    await target.guest.updateUser({ user: ref, changes }, target.context);
    reply.code(202).type('application/json').send();
  });

  app.delete<UserParams>('/instances/:instanceId/users/:user', async (request, reply) => {
    const target = await users('delete')(request);
    const ref = pathUser(request.params.user, target.schema);
    await findUser(target, ref, request.params.user);
    await target.guest.deleteUser({ user: ref }, target.context);
    reply.code(202).type('application/json').send();
  });

  app.get<UserParams>('/instances/:instanceId/users/:user/databases', async (request) => {
    const target = await access('index')(request);
    const user = await findUser(target, pathUser(request.params.user, target.schema), request.params.user);
    return { databases: user.databases.map((d) => ({ name: d.name })) };
  });

  app.put<UserParams>('/instances/:instanceId/users/:user/databases', async (request, reply) => {
    const body = parseTroveBody(grantAccessSchema, request.body);
    const target = await access('update')(request);
    const ref = pathUser(request.params.user, target.schema);
    const databases = [...new Set(body.databases.map((d) => validateDatabaseName(d.name, target.schema)))];
    await findUser(target, ref, request.params.user);
    await target.guest.grantAccess({ user: ref, databases }, target.context);
    reply.code(202).type('application/json').send();
  });

  app.delete<AccessParams>('/instances/:instanceId/users/:user/databases/:database', async (request, reply) => {
    const target = await access('delete')(request);
    const ref = pathUser(request.params.user, target.schema);
    const database = validateDatabaseName(request.params.database, target.schema);
    await findUser(target, ref, request.params.user);
    await target.guest.revokeAccess({ user: ref, database }, target.context);
    reply.code(202).type('application/json').send();
  });
}
