import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CofferError } from '../../common/index.js';
import type { InstanceRow } from '../../db/index.js';
import { requireAuth } from '../auth-context.js';
import { enforce } from '../policy.js';
import { queryParam } from '../query-param.js';
import { nextLink } from './compute-links.js';
import { linkContext, type ComputeDeps, type ComputeParams } from './compute-deps.js';
import { limitAndMarker, pageAfter, strictBool } from './list-query.js';
import { atLeast } from './microversion.js';
import { namesMatching } from './name-filter.js';
import { serverState } from './server-status.js';
import { serverDetailView, serverSummaryView, type ServerViewContext, type ServerViewData } from './server-views.js';

// GET /servers, /servers/detail, /servers/{id} of Nova's compute API (read-only): a project sees
// its own servers; `all_tenants` is Nova's admin-only policy (os_compute_api:servers:*:get_all_tenants,
// 403 for anyone else, as current Nova's servers.py does with context.can; much older Nova
// ignored it for non-admins).
// Filters served: name (a regular expression), status, flavor, tenant_id/project_id (with
// all_tenants); others are ignored, as Nova before 2.75 ignores unknown ones.

type ServerParams = { Params: ComputeParams & { serverId: string } };

/** The statuses Nova's status filter knows (nova/api/openstack/common.py's state map). */
const novaStatuses = new Set([
  'ACTIVE', 'BUILD', 'REBOOT', 'HARD_REBOOT', 'PASSWORD', 'REBUILD', 'MIGRATING', 'RESIZE', 'VERIFY_RESIZE', 'REVERT_RESIZE',
  'PAUSED', 'SUSPENDED', 'RESCUE', 'SHUTOFF', 'SHELVED', 'SHELVED_OFFLOADED', 'ERROR', 'DELETED', 'SOFT_DELETED',
]);

export async function serverRoutes(app: FastifyInstance, deps: ComputeDeps): Promise<void> {
  const { store } = deps;

  const viewContext = (request: FastifyRequest, show: boolean): ServerViewContext => ({
    ...linkContext(request, deps),
    version: request.computeVersion!,
    isAdmin: requireAuth(request).isAdmin,
    now: new Date(),
    heartbeatExpirySeconds: deps.heartbeatExpirySeconds,
    show,
  });

  /** Each kind of row read once for the whole page. */
  async function viewData(instances: readonly InstanceRow[]): Promise<ServerViewData[]> {
    const ids = instances.map((i) => i.id);
    const [services, faults, flavors] = await Promise.all([store.serviceStatuses.getMany(ids), store.faults.latestOf(ids), store.flavors.list()]);
    const flavorById = new Map(flavors.map((f) => [f.id, f]));
    return instances.map((instance) => ({
      instance,
      service: services.get(instance.id),
      fault: faults.get(instance.id),
      flavor: flavorById.get(instance.flavorId),
    }));
  }

  /** Whose servers a list shows: undefined for every project's. */
  function listScope(request: FastifyRequest, detail: boolean): string | undefined {
    const auth = requireAuth(request);
    const q = request.query;
    const allTenantsParam = queryParam(q, 'all_tenants');
    const allTenants = allTenantsParam === undefined ? false : strictBool(allTenantsParam);
    // Nova ignores tenant_id without all_tenants (lp:#1185290): the caller's own project
    if (!allTenants) return auth.projectId;
    enforce(auth, `os_compute_api:servers:${detail ? 'detail' : 'index'}:get_all_tenants`, auth.projectId);
    return queryParam(q, 'tenant_id') ?? queryParam(q, 'project_id');
  }

  async function list(request: FastifyRequest, detail: boolean) {
    const q = request.query;
    const tenantId = listScope(request, detail);
    let rows = (await store.instances.listAll({ deleted: false, ...(tenantId === undefined ? {} : { tenantId }) })).filter((i) => i.internal !== true);
    const { limit, marker } = limitAndMarker(q);
    const name = queryParam(q, 'name');
    if (name !== undefined) {
      const matching = namesMatching(name, rows.map((r) => r.name));
      rows = rows.filter((r) => matching.has(r.name));
    }
    const flavor = queryParam(q, 'flavor');
    if (flavor !== undefined) rows = rows.filter((r) => r.flavorId === flavor);
    // Nova's default order: newest first, ties by id
    rows.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    const status = queryParam(q, 'status');
    const needsState = status !== undefined;
    let data = needsState || detail ? await viewData(rows) : rows.map((instance) => ({ instance }) as ServerViewData);
    if (status !== undefined) {
      const wanted = status.toUpperCase();
      // Nova: a status it does not know lists nothing, and is refused from 2.38
      if (!novaStatuses.has(wanted)) {
        if (atLeast(request.computeVersion!, 38)) throw new CofferError('BadRequest', 'Invalid status value');
        return { servers: [] };
      }
      data = data.filter((d) => serverState(d.instance.taskStatus, d.service?.status).status === wanted);
    }
    const page = pageAfter(data, (d) => d.instance.id, limit, marker);
    const ctx = viewContext(request, false);
    const last = page[page.length - 1];
    return {
      servers: page.map((d) => (detail ? serverDetailView(d, ctx) : serverSummaryView(d.instance, ctx))),
      ...(last !== undefined && page.length === limit ? { servers_links: [nextLink(ctx, detail ? 'servers/detail' : 'servers', request.url, last.instance.id)] } : {}),
    };
  }

  app.get('/servers', (request) => list(request, false));
  app.get('/servers/detail', (request) => list(request, true));

  app.get<ServerParams>('/servers/:serverId', async (request) => {
    const auth = requireAuth(request);
    const id = request.params.serverId;
    // Nova reads a server project-scoped for anyone but an admin: another project's is 404
    const instance = await store.instances.get(id, auth.isAdmin ? {} : { tenantId: auth.projectId });
    if (instance === undefined || instance.internal === true) throw new CofferError('NotFound', `Instance ${id} could not be found.`);
    const [data] = await viewData([instance]);
    return { server: serverDetailView(data!, viewContext(request, true)) };
  });
}
