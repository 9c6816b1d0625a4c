import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RateLimiter } from '../rate-limiter.js';

// Trove's ratelimit middleware runs after the token and tenant checks and before routing, so
// every authenticated request under /v1.0/{tenant} counts, whatever it asks for (reference 1.2,
// 1.7). Its refusal is Trove's OverLimitFault: more fields than an ordinary error, and a header.

/** The path below /v1.0/{tenant}, which the rules' regexes are written against (`^/mgmt`). */
function pathBelowTenant(url: string): string {
  const path = url.split('?', 1)[0] ?? '';
  return path.replace(/^\/v1\.0\/[^/]+/, '');
}

/** Counts the request; when it is over a limit, answers 413 and returns true. */
export function replyIfRateLimited(
  request: FastifyRequest,
  reply: FastifyReply,
  limiter: RateLimiter,
  tenantId: string,
): boolean {
  const delay = limiter.check(tenantId, request.method, pathBelowTenant(request.url));
  if (delay === undefined) return false;
  const retryAfter = String(Math.max(Math.ceil(delay.delaySeconds), 0));
  reply
    .code(413)
    .header('retry-after', retryAfter)
    .type('application/json')
    .send({
      overLimit: { code: 413, message: 'This request was rate-limited.', details: delay.details, retryAfter },
    });
  return true;
}
