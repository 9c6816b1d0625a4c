import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireAuth } from '../auth-context.js';
import { parseTroveBody } from '../parse-body.js';
import { enforce } from '../policy.js';
import { createInstance } from './create-instance.js';
import { deleteInstance } from './delete-instance.js';
import { parseInstanceAction } from './instance-action-schema.js';
import { actionPolicy, performInstanceAction } from './instance-actions.js';
import { createInstanceSchema } from './instance-create-schema.js';
import { editInstanceSchema, updateInstanceSchema } from './instance-update-schema.js';
import { loadInstanceView, loadInstanceViews } from './instance-view-loader.js';
import { instanceDetailView, instanceSummaryView, type InstanceViewContext } from './instance-views.js';
import { nextPageLink, pageRequest } from './pagination.js';
import { loadTenantInstance } from './tenant-instance.js';
import { busContext, viewContext, type TenantParams, type TroveDeps } from './trove-deps.js';
import { checkOneAttribute, updateInstance } from './update-instance.js';

// Instances: create, list, list with detail, show, update (PUT/PATCH), actions, delete (reference 2.2).

type InstanceParams = { Params: TenantParams & { instanceId: string } };

export async function instanceRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;

  const instanceContext = (request: FastifyRequest): InstanceViewContext => ({
    ...viewContext(request),
    region: deps.region,
    now: new Date(),
    heartbeatExpirySeconds: deps.heartbeatExpirySeconds,
  });

  const loadInstance = (request: FastifyRequest<InstanceParams>, action: string) => loadTenantInstance(store, request, action);

  app.post('/instances', async (request) => {
    const auth = requireAuth(request);
    const body = parseTroveBody(createInstanceSchema, request.body);
    const data = await createInstance(deps, auth, body, busContext(request));
    return { instance: instanceDetailView(data, instanceContext(request)) };
  });

  async function list(request: FastifyRequest, detail: boolean) {
    const auth = requireAuth(request);
    enforce(auth, detail ? 'instance:detail' : 'instance:index', auth.projectId);
    // Only the caller's project, even for admins (reference 2.2).
    const filter = { tenantId: auth.projectId, ...pageRequest(request) };
    const ctx = instanceContext(request);
    let views: object[];
    let nextMarker: string | null;
    if (detail) {
      const page = await store.instances.list(filter);
      views = (await loadInstanceViews(store, newestFirst(page.items))).map((data) => instanceDetailView(data, ctx));
      nextMarker = page.nextMarker;
    } else {
      // a summary page reads only the columns its view shows
      const page = await store.instances.listSummaries(filter);
      views = (await loadInstanceViews(store, newestFirst(page.items), { summary: true })).map((data) => instanceSummaryView(data, ctx));
      nextMarker = page.nextMarker;
    }
    return {
      instances: views,
      ...(nextMarker === null ? {} : { links: [nextPageLink(request, ctx.linkBase, nextMarker)] }),
    };
  }

  app.get('/instances', (request) => list(request, false));
  app.get('/instances/detail', (request) => list(request, true));

  app.get<InstanceParams>('/instances/:instanceId', async (request) => {
    const instance = await loadInstance(request, 'instance:show');
    // served from the state DB alone: volume.used is what the guest's heartbeats last reported
    const data = await loadInstanceView(store, instance);
    return { instance: instanceDetailView(data, instanceContext(request)) };
  });

  // PUT and PATCH share one policy rule, `instance:update` (reference 2.2).
  for (const [method, schema] of [['PUT', updateInstanceSchema], ['PATCH', editInstanceSchema]] as const) {
    app.route<InstanceParams>({
      method,
      url: '/instances/:instanceId',
      handler: async (request, reply) => {
        const body = parseTroveBody(schema, request.body);
        checkOneAttribute(body.instance);
        const instance = await loadInstance(request, 'instance:update');
        // Trove's update() always passed a configuration id, so an empty PUT detached the group;
        // `trove configuration-detach` (troveclient's modify) still sends exactly that.
        const change = method === 'PUT' && Object.keys(body.instance).length === 0 ? { configuration: null } : body.instance;
        await updateInstance(deps, instance, change, busContext(request, instance.id));
        reply.code(202).type('application/json').send();
      },
    });
  }

  app.post<InstanceParams>('/instances/:instanceId/action', async (request, reply) => {
    const action = parseInstanceAction(request.body);
    const instance = await loadInstance(request, actionPolicy(action));
    await performInstanceAction(deps, instance, action, busContext(request, instance.id));
    reply.code(202).type('application/json').send();
  });

  app.delete<InstanceParams>('/instances/:instanceId', async (request, reply) => {
    const instance = await loadInstance(request, 'instance:delete');
    await deleteInstance(deps, instance, busContext(request, instance.id));
    reply.code(202).type('application/json').send();
  });
}

/** A page's instances, the newest first (as Trove lists them). */
function newestFirst<T extends { createdAt: Date }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
}
