import type { FastifyInstance } from 'fastify';
import { errors } from '../../common/index.js';
import { requireAuth } from '../auth-context.js';
import { enforce } from '../policy.js';
import { flavorView } from './flavor-view.js';
import { viewContext, type TenantParams, type TroveDeps } from './trove-deps.js';

// GET /flavors, /flavors/{id} (reference 2.6): readable by anyone authenticated, not paginated.

export async function flavorRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  app.get('/flavors', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'flavor:index', auth.projectId);
    const ctx = viewContext(request);
    return { flavors: (await deps.store.flavors.list()).map((f) => flavorView(f, ctx)) };
  });

  app.get<{ Params: TenantParams & { flavorId: string } }>('/flavors/:flavorId', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'flavor:show', auth.projectId);
    const flavor = await deps.store.flavors.get(request.params.flavorId);
    if (flavor === undefined) throw errors.notFound(request.params.flavorId);
    return { flavor: flavorView(flavor, viewContext(request)) };
  });
}
