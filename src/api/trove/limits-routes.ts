import type { FastifyInstance } from 'fastify';
import { requireAuth } from '../auth-context.js';
import { enforce } from '../policy.js';
import type { RateLimitState } from '../rate-limiter.js';
import { quotaLimits } from './quota-enforcement.js';
import type { TroveDeps } from './trove-deps.js';

// GET /limits (reference 2.13): the project's quotas as the ABSOLUTE entry, always first (the
// openstack client pops it), then each rate limit with what is left of it.

function rateLimitView(state: RateLimitState) {
  return {
    verb: state.verb,
    uri: state.uri,
    regex: state.regex,
    value: state.value,
    remaining: state.remaining,
    unit: state.unit,
    // The one Trove timestamp with a Z.
    nextAvailable: `${new Date(state.resetTime * 1000).toISOString().slice(0, 19)}Z`,
  };
}

export async function limitsRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  app.get('/limits', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'limits:index', auth.projectId);
    const limits = await quotaLimits(deps.store, auth.projectId, deps.quotaDefaults);
    return {
      limits: [
        {
          verb: 'ABSOLUTE',
          max_instances: limits.instances,
          max_ram: limits.ram,
          max_backups: limits.backups,
          max_volumes: limits.volumes,
        },
        ...(deps.rateLimiter?.states(auth.projectId) ?? []).map(rateLimitView),
      ],
    };
  });
}
