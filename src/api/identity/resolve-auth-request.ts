import { z } from 'zod';
import { CofferError } from '../../common/index.js';
import type { ProjectRow, Repositories, RoleRow, UserRow } from '../../db/index.js';
import { authRequiredMessage } from '../error-replies.js';
import { resolveDomainId } from './identity-deps.js';
import type { LoginLimiter } from './login-limiter.js';
import { refuseWhenBusy, verifyPassword } from './password-hash.js';
import type { TokenService } from './token-service.js';

// POST /v3/auth/tokens: who the caller is (password or token method) and which project the new
// token is scoped to. Coffer issues project-scoped tokens only: a request without a scope gets the
// user's default project (as Keystone does) or, for the token method, the original token's
// project; a request scoped to a domain or the system, or with no project to fall back to, is
// answered 401. Every Trove call needs a project, so an unscoped token would be of no use.

const domainRef = z.object({ id: z.string().optional(), name: z.string().optional() });

export const authRequestSchema = z.object({
  auth: z.object({
    identity: z.object({
      methods: z.array(z.string()).min(1),
      password: z
        .object({
          user: z.object({
            id: z.string().optional(),
            name: z.string().optional(),
            domain: domainRef.optional(),
            password: z.string(),
          }),
        })
        .optional(),
      token: z.object({ id: z.string() }).optional(),
    }),
    scope: z
      .union([
        z.literal('unscoped'),
        z.object({
          project: z
            .object({ id: z.string().optional(), name: z.string().optional(), domain: domainRef.optional() })
            .optional(),
          domain: z.unknown().optional(),
          system: z.unknown().optional(),
        }),
      ])
      .optional(),
  }),
});
export type AuthRequest = z.infer<typeof authRequestSchema>;

export interface ResolvedAuth {
  user: UserRow;
  project: ProjectRow;
  roles: RoleRow[];
  methods: string[];
  /** a token issued from another token expires no later than it */
  notAfter?: Date;
}

const unauthorized = (message = authRequiredMessage) => new CofferError('Unauthorized', message);

/** Who is logging in, from where: the source address is counted against the login limits. */
export interface LoginSource {
  limiter: LoginLimiter;
  address: string;
}

async function passwordUser(
  store: Repositories,
  credentials: NonNullable<AuthRequest['auth']['identity']['password']>,
  source: LoginSource,
  now: Date,
): Promise<UserRow> {
  // A full queue is refused before the state store is asked anything.
  await refuseWhenBusy();
  const { user: ref } = credentials;
  let user: UserRow | undefined;
  if (ref.id !== undefined) {
    user = await store.users.get(ref.id);
  } else if (ref.name !== undefined) {
    if (ref.domain === undefined) throw new CofferError('ValidationError', 'Expecting to find domain in user.');
    const domainId = resolveDomainId(ref.domain);
    user = domainId === undefined ? undefined : await store.users.getByName(ref.name, domainId);
  } else {
    throw new CofferError('ValidationError', 'Expecting to find id or name in user.');
  }
  await source.limiter.check(source.address, user, now);
  // Always pay for one hash check, so a missing user takes as long as a wrong password.
  const ok = await verifyPassword(ref.password, user?.passwordHash, { refuseWhenBusy: true });
  if (!ok || user === undefined) {
    await source.limiter.failed(source.address, user, now);
    throw unauthorized();
  }
  await source.limiter.succeeded(user);
  if (!user.enabled) throw unauthorized();
  return user;
}

export async function resolveAuthRequest(
  store: Repositories,
  tokens: TokenService,
  request: AuthRequest,
  now: Date,
  source: LoginSource,
): Promise<ResolvedAuth> {
  const { identity, scope } = request.auth;
  let user: UserRow;
  let methods: string[];
  let fallbackProjectId: string | null;
  let notAfter: Date | undefined;

  if (identity.methods.includes('password')) {
    if (identity.password === undefined) throw new CofferError('ValidationError', 'Expecting to find password in identity.');
    user = await passwordUser(store, identity.password, source, now);
    methods = ['password'];
    fallbackProjectId = user.defaultProjectId;
  } else if (identity.methods.includes('token')) {
    if (identity.token === undefined) throw new CofferError('ValidationError', 'Expecting to find token in identity.');
    const session = await tokens.validate(identity.token.id, now);
    if (session === undefined) throw unauthorized();
    user = session.user;
    methods = [...new Set([...session.token.methods, 'token'])];
    fallbackProjectId = session.project.id;
    notAfter = session.token.expiresAt;
  } else {
    throw unauthorized(`Unsupported authentication method: ${identity.methods.join(', ')}.`);
  }

  let project: ProjectRow | undefined;
  if (scope === 'unscoped' || scope?.domain !== undefined || scope?.system !== undefined) {
    throw unauthorized('Coffer issues project-scoped tokens only: scope the request to a project.');
  }
  const ref = scope?.project;
  if (ref !== undefined) {
    if (ref.id !== undefined) {
      project = await store.projects.get(ref.id);
    } else if (ref.name !== undefined) {
      if (ref.domain === undefined) throw new CofferError('ValidationError', 'Expecting to find domain in project.');
      const domainId = resolveDomainId(ref.domain);
      project = domainId === undefined ? undefined : await store.projects.getByName(ref.name, domainId);
    } else {
      throw new CofferError('ValidationError', 'Expecting to find id or name in project.');
    }
    if (project === undefined) throw unauthorized();
  } else {
    if (fallbackProjectId === null) {
      throw unauthorized('Coffer issues project-scoped tokens only: scope the request to a project.');
    }
    project = await store.projects.get(fallbackProjectId);
    if (project === undefined) throw unauthorized();
  }
  if (!project.enabled) throw unauthorized();
  const roles = await store.roleAssignments.rolesOf(user.id, project.id);
  if (roles.length === 0) throw unauthorized(`User ${user.id} has no access to project ${project.id}.`);
  return notAfter === undefined ? { user, project, roles, methods } : { user, project, roles, methods, notAfter };
}
