import type { FastifyRequest } from 'fastify';
import { CofferError } from '../../common/index.js';
import type { StateStore } from '../../db/index.js';
import { authenticate, type AuthContext } from '../auth-context.js';
import { publicBase } from '../base-url.js';
import { defaultDomain } from './keystone-views.js';
import type { PasswordPolicy } from '../password-policy.js';
import type { LoginLimiter } from './login-limiter.js';
import type { TokenService } from './token-service.js';

export interface IdentityDeps {
  store: StateStore;
  tokens: TokenService;
  loginLimiter: LoginLimiter;
  passwordPolicy: PasswordPolicy;
  publicUrl: string | undefined;
  region: string;
}

/** `<public url>/identity/v3`, the base of every Keystone link. */
export function v3Base(request: FastifyRequest, deps: IdentityDeps): string {
  return `${publicBase(request, deps.publicUrl)}/identity/v3`;
}

/** Authenticates the caller and requires the admin role: Keystone's 403 otherwise. */
export async function requireAdmin(request: FastifyRequest, deps: IdentityDeps, action: string): Promise<AuthContext> {
  const auth = await authenticate(request, deps.tokens);
  if (!auth.isAdmin) throw forbidden(action);
  return auth;
}

export function forbidden(action: string): CofferError {
  return new CofferError(
    'PolicyNotAuthorized',
    `You are not authorized to perform the requested action: ${action}.`,
  );
}

export function notFound(kind: string, id: string): CofferError {
  return new CofferError('NotFound', `Could not find ${kind}: ${id}.`);
}

/** Coffer has only the default domain: accepts its id, or its name in any case. */
export function resolveDomainId(ref: { id?: string | undefined; name?: string | undefined } | undefined): string | undefined {
  if (ref === undefined) return undefined;
  if (ref.id !== undefined) return ref.id === defaultDomain.id ? defaultDomain.id : undefined;
  if (ref.name !== undefined) return ref.name.toLowerCase() === defaultDomain.name.toLowerCase() ? defaultDomain.id : undefined;
  return undefined;
}
