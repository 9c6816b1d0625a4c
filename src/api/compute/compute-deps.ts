import type { FastifyRequest } from 'fastify';
import type { StateStore } from '../../db/index.js';
import type { CallerValidator } from '../auth-context.js';
import { publicBase } from '../base-url.js';
import type { RateLimiter } from '../rate-limiter.js';
import type { ComputeLinkContext } from './compute-links.js';
import type { Microversion } from './microversion.js';

export interface ComputeDeps {
  store: StateStore;
  /** validates each request's X-Auth-Token: the built-in identity or an external Keystone */
  callers: CallerValidator;
  publicUrl: string | undefined;
  /** where a 401's WWW-Authenticate sends the client: Coffer's /identity or the external Keystone */
  identityUri: (request: FastifyRequest) => string;
  heartbeatExpirySeconds: number;
  /** the same per-project budget as Trove's API; undefined when rate limiting is off */
  rateLimiter: RateLimiter | undefined;
}

/** Route params under /v2.1/{project_id} (named as Trove's routes name it); absent under plain /v2.1. */
export interface ComputeParams {
  tenantId?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the compute microversion the request asked for, set by the compute API's hook */
    computeVersion: Microversion | null;
  }
}

export function linkContext(request: FastifyRequest, deps: ComputeDeps): ComputeLinkContext {
  return { base: publicBase(request, deps.publicUrl), urlProjectId: (request.params as ComputeParams).tenantId };
}
