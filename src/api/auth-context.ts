import type { FastifyRequest } from 'fastify';
import { CofferError } from '../common/index.js';
import { authRequiredMessage } from './error-replies.js';
import type { TokenService } from './identity/token-service.js';

// Who is calling, as Trove's context sees it (reference 8.1): the token's user and project and
// the role names; `isAdmin` when any role is in admin_roles (default ["admin"], case-insensitive).

export interface AuthContext {
  userId: string;
  projectId: string;
  roles: string[];
  isAdmin: boolean;
}

/** What a valid, project-scoped token says about its holder, wherever it was validated. */
export interface Caller {
  userId: string;
  projectId: string;
  roles: string[];
}

/**
 * Turns an X-Auth-Token into its caller, or undefined when the token is missing, invalid,
 * expired or revoked: the built-in identity's TokenService, or an external Keystone.
 */
export interface CallerValidator {
  validate(token: string | undefined, now: Date): Promise<Caller | undefined>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** set by the authentication hook of routes that need a token */
    auth: AuthContext | null;
  }
}

const adminRoles = new Set(['admin']);

function authContextOf(caller: Caller): AuthContext {
  return {
    userId: caller.userId,
    projectId: caller.projectId,
    roles: caller.roles,
    isAdmin: caller.roles.some((r) => adminRoles.has(r.toLowerCase())),
  };
}

/** The built-in identity's tokens, seen as callers. */
export function builtInCallers(tokens: TokenService): CallerValidator {
  return {
    async validate(token, now) {
      const session = await tokens.validate(token, now);
      if (session === undefined) return undefined;
      return { userId: session.user.id, projectId: session.project.id, roles: session.roles.map((r) => r.name) };
    },
  };
}

export function headerValue(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Validates the request's X-Auth-Token with `callers`; throws Unauthorized (401) when it is missing or invalid. */
export async function authenticateWith(request: FastifyRequest, callers: CallerValidator): Promise<AuthContext> {
  const caller = await callers.validate(headerValue(request, 'x-auth-token'), new Date());
  if (caller === undefined) throw new CofferError('Unauthorized', authRequiredMessage);
  const auth = authContextOf(caller);
  request.auth = auth;
  return auth;
}

/** Validates the request's X-Auth-Token against the built-in identity's tokens. */
export function authenticate(request: FastifyRequest, tokens: TokenService): Promise<AuthContext> {
  return authenticateWith(request, builtInCallers(tokens));
}

/** The context set by the authentication hook; a route that reaches here without one is a bug. */
export function requireAuth(request: FastifyRequest): AuthContext {
  if (request.auth === null) throw new CofferError('Unauthorized', authRequiredMessage);
  return request.auth;
}
