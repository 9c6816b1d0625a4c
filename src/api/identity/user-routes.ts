import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CofferError, newKeystoneId } from '../../common/index.js';
import type { UserRow } from '../../db/index.js';
import { authenticate } from '../auth-context.js';
import { parseKeystoneBody } from '../parse-body.js';
import { queryParam } from '../query-param.js';
import { forbidden, notFound, requireAdmin, resolveDomainId, v3Base, type IdentityDeps } from './identity-deps.js';
import { defaultDomain, listLinks, userView } from './keystone-views.js';
import { checkPasswordPolicy } from '../password-policy.js';
import { hashPassword, verifyPassword } from './password-hash.js';

// /identity/v3/users: admin CRUD, as `openstack user create|list|show|set|delete` drive it.

const userFields = {
  name: z.string().min(1).max(255),
  password: z.string().min(1).nullable(),
  default_project_id: z.string().nullable(),
  email: z.string().max(255).nullable(),
  description: z.string().nullable(),
  enabled: z.boolean(),
};

const createSchema = z.object({
  user: z.object({
    ...userFields,
    password: userFields.password.optional(),
    default_project_id: userFields.default_project_id.optional(),
    email: userFields.email.optional(),
    description: userFields.description.optional(),
    enabled: userFields.enabled.optional(),
    domain_id: z.string().nullable().optional(),
  }),
});

const updateSchema = z.object({ user: z.object(userFields).partial() });

const changePasswordSchema = z.object({
  user: z.object({ password: z.string().min(1), original_password: z.string().min(1) }),
});

function conflict(name: string): CofferError {
  return new CofferError(
    'Conflict',
    `Conflict occurred attempting to store user - Duplicate entry found with name ${name} at domain ID ${defaultDomain.id}.`,
  );
}

export async function userRoutes(app: FastifyInstance, deps: IdentityDeps): Promise<void> {
  const { store } = deps;

  async function checkProject(id: string | null | undefined): Promise<void> {
    if (id !== null && id !== undefined && (await store.projects.get(id)) === undefined) throw notFound('project', id);
  }

  async function loadUser(id: string): Promise<UserRow> {
    const user = await store.users.get(id);
    if (user === undefined) throw notFound('user', id);
    return user;
  }

  app.post('/v3/users', async (request, reply) => {
    await requireAdmin(request, deps, 'identity:create_user');
    const { user: input } = parseKeystoneBody(createSchema, request.body);
    const domainId = input.domain_id == null ? defaultDomain.id : resolveDomainId({ id: input.domain_id });
    if (domainId === undefined) throw notFound('domain', input.domain_id ?? '');
    await checkProject(input.default_project_id);
    if ((await store.users.getByName(input.name, domainId)) !== undefined) throw conflict(input.name);
    const row: UserRow = {
      id: newKeystoneId(),
      name: input.name,
      domainId,
      // A user created without a password cannot log in until one is set.
      passwordHash: input.password == null ? '' : await hashPassword(checkPasswordPolicy(input.password, deps.passwordPolicy, `user ${input.name}`)),
      defaultProjectId: input.default_project_id ?? null,
      email: input.email ?? null,
      description: input.description ?? '',
      enabled: input.enabled ?? true,
      createdAt: new Date(),
    };
    await store.users.create(row);
    reply.code(201);
    return { user: userView(row, v3Base(request, deps)) };
  });

  app.get('/v3/users', async (request) => {
    await requireAdmin(request, deps, 'identity:list_users');
    const name = queryParam(request.query, 'name');
    const domainId = queryParam(request.query, 'domain_id');
    const rows = await store.users.list({
      ...(name === undefined ? {} : { name }),
      ...(domainId === undefined ? {} : { domainId }),
    });
    const base = v3Base(request, deps);
    return { users: rows.map((u) => userView(u, base)), links: listLinks(`${base}/users`) };
  });

  app.get<{ Params: { userId: string } }>('/v3/users/:userId', async (request) => {
    const auth = await authenticate(request, deps.tokens);
    if (!auth.isAdmin && auth.userId !== request.params.userId) throw forbidden('identity:get_user');
    return { user: userView(await loadUser(request.params.userId), v3Base(request, deps)) };
  });

  app.patch<{ Params: { userId: string } }>('/v3/users/:userId', async (request) => {
    await requireAdmin(request, deps, 'identity:update_user');
    const { user: input } = parseKeystoneBody(updateSchema, request.body);
    const current = await loadUser(request.params.userId);
    if (input.name !== undefined && input.name !== current.name) {
      if ((await store.users.getByName(input.name, current.domainId)) !== undefined) throw conflict(input.name);
    }
    await checkProject(input.default_project_id);
    // Hashed before the transaction: scrypt takes a while and must not hold the write lock.
    const passwordHash = input.password == null ? '' : await hashPassword(checkPasswordPolicy(input.password, deps.passwordPolicy, `user ${input.name ?? current.name}`));
    await store.transaction(async (tx) => {
      await tx.users.update(current.id, {
        ...(input.name === undefined ? {} : { name: input.name }),
        ...(input.password === undefined ? {} : { passwordHash }),
        ...(input.default_project_id === undefined ? {} : { defaultProjectId: input.default_project_id }),
        ...(input.email === undefined ? {} : { email: input.email }),
        ...(input.description === undefined ? {} : { description: input.description ?? '' }),
        ...(input.enabled === undefined ? {} : { enabled: input.enabled }),
      });
      // As Keystone does: a new password ends every session opened with the old one, and
      // disabling a user revokes its tokens for good, so re-enabling it does not revive them.
      if (input.password !== undefined || input.enabled === false) await tx.tokens.deleteForUser(current.id);
    });
    if (input.enabled === true) await deps.loginLimiter.unlock(current.id);
    return { user: userView(await loadUser(current.id), v3Base(request, deps)) };
  });

  // `openstack user password set`: a user changes its own password. Keystone asks for no token
  // here (an expired password gets none), only the original password; an unknown user and a
  // wrong password get the same 401, so the answer tells nobody which users exist.
  app.post<{ Params: { userId: string } }>('/v3/users/:userId/password', async (request, reply) => {
    const { user: input } = parseKeystoneBody(changePasswordSchema, request.body);
    const user = await store.users.get(request.params.userId);
    // The original password is a password check like a login's: the same limits apply.
    const now = new Date();
    await deps.loginLimiter.check(request.ip, user, now);
    const accepted = await verifyPassword(input.original_password, user?.enabled === true ? user.passwordHash : undefined, { refuseWhenBusy: true });
    if (user === undefined || !accepted) {
      await deps.loginLimiter.failed(request.ip, user, now);
      throw new CofferError('Unauthorized', 'The request you have made requires authentication.');
    }
    await deps.loginLimiter.succeeded(user);
    const passwordHash = await hashPassword(checkPasswordPolicy(input.password, deps.passwordPolicy, `user ${user.name}`));
    await store.transaction(async (tx) => {
      await tx.users.update(user.id, { passwordHash });
      await tx.tokens.deleteForUser(user.id);
    });
    reply.code(204).send();
  });

  app.delete<{ Params: { userId: string } }>('/v3/users/:userId', async (request, reply) => {
    await requireAdmin(request, deps, 'identity:delete_user');
    const user = await loadUser(request.params.userId);
    await store.transaction(async (tx) => {
      for (const a of await tx.roleAssignments.list({ userId: user.id })) await tx.roleAssignments.revoke(a);
      await tx.users.delete(user.id);
    });
    reply.code(204).send();
  });
}
