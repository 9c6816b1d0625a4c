import type { FastifyRequest } from 'fastify';
import { CofferError } from '../common/index.js';
import { authRequiredMessage } from './error-replies.js';
import type { TokenService, TokenSession } from './identity/token-service.js';

// Who is calling, as Trove's context sees it (reference 8.1): the token's user and project and
// the role names; `isAdmin` when any role is in admin_roles (default ["admin"], case-insensitive).

export interface AuthContext {
  userId: string;
  projectId: string;
  roles: string[];
  isAdmin: boolean;
  session: TokenSession;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** set by the authentication hook of routes that need a token */
    auth: AuthContext | null;
  }
}

const adminRoles = new Set(['admin']);

function authContextOf(session: TokenSession): AuthContext {
  const roles = session.roles.map((r) => r.name);
  return {
    userId: session.user.id,
    projectId: session.project.id,
    roles,
    isAdmin: roles.some((r) => adminRoles.has(r.toLowerCase())),
    session,
  };
}

export function headerValue(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Validates the request's X-Auth-Token; throws Unauthorized (401) when it is missing or invalid. */
export async function authenticate(request: FastifyRequest, tokens: TokenService): Promise<AuthContext> {
  const session = await tokens.validate(headerValue(request, 'x-auth-token'), new Date());
  if (session === undefined) throw new CofferError('Unauthorized', authRequiredMessage);
  const auth = authContextOf(session);
  request.auth = auth;
  return auth;
}

/** The context set by the authentication hook; a route that reaches here without one is a bug. */
export function requireAuth(request: FastifyRequest): AuthContext {
  if (request.auth === null) throw new CofferError('Unauthorized', authRequiredMessage);
  return request.auth;
}
