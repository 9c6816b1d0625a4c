import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CofferError } from '../../common/index.js';
import { requireAuth } from '../auth-context.js';
import { enforce } from '../policy.js';
import { queryParam } from '../query-param.js';
import { nextLink } from './compute-links.js';
import { linkContext, type ComputeDeps, type ComputeParams } from './compute-deps.js';
import { flavorDetailView, flavorSummaryView, type FlavorViewContext } from './flavor-views.js';
import { limitAndMarker, pageAfter } from './list-query.js';

// GET /flavors, /flavors/detail, /flavors/{id}, /flavors/{id}/os-extra_specs of Nova's compute API: Coffer's flavors (the same
// as Trove's), readable by anyone authenticated, ordered by id as Nova orders them by flavorid,
// with Nova's minRam and minDisk filters.

function minimum(request: FastifyRequest, name: 'minRam' | 'minDisk'): number {
  const raw = queryParam(request.query, name);
  if (raw === undefined) return 0;
  if (!/^\d+$/.test(raw)) throw new CofferError('BadRequest', `Invalid ${name} filter [${raw.slice(0, 40)}]`);
  return Number(raw);
}

export async function flavorRoutes(app: FastifyInstance, deps: ComputeDeps): Promise<void> {
  const viewContext = (request: FastifyRequest): FlavorViewContext => ({ ...linkContext(request, deps), version: request.computeVersion! });

  async function list(request: FastifyRequest, detail: boolean) {
    const auth = requireAuth(request);
    enforce(auth, 'os_compute_api:flavors', auth.projectId);
    const minRam = minimum(request, 'minRam');
    const minDisk = minimum(request, 'minDisk');
    const { limit, marker } = limitAndMarker(request.query);
    const flavors = (await deps.store.flavors.list())
      .filter((f) => f.ramMb >= minRam && f.diskGb >= minDisk)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const page = pageAfter(flavors, (f) => f.id, limit, marker);
    const ctx = viewContext(request);
    const last = page[page.length - 1];
    return {
      flavors: page.map((f) => (detail ? flavorDetailView(f, ctx) : flavorSummaryView(f, ctx))),
      ...(last !== undefined && page.length === limit ? { flavors_links: [nextLink(ctx, detail ? 'flavors/detail' : 'flavors', request.url, last.id)] } : {}),
    };
  }

  app.get('/flavors', (request) => list(request, false));
  app.get('/flavors/detail', (request) => list(request, true));

  type FlavorParams = { Params: ComputeParams & { flavorId: string } };

  async function loadFlavor(request: FastifyRequest<FlavorParams>) {
    const auth = requireAuth(request);
    enforce(auth, 'os_compute_api:flavors', auth.projectId);
    const flavor = await deps.store.flavors.get(request.params.flavorId);
    if (flavor === undefined) throw new CofferError('NotFound', `Flavor ${request.params.flavorId} could not be found.`);
    return flavor;
  }

  app.get<FlavorParams>('/flavors/:flavorId', async (request) => ({ flavor: flavorDetailView(await loadFlavor(request), viewContext(request)) }));

  // `openstack flavor list` asks each flavor for its extra specs; Coffer's have none
  app.get<FlavorParams>('/flavors/:flavorId/os-extra_specs', async (request) => {
    await loadFlavor(request);
    return { extra_specs: {} };
  });
}
