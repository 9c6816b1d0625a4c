import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createRpcClient, guestContract, guestTopic } from '../../bus/index.js';
import { CofferError, errors, troveTimestamp } from '../../common/index.js';
import type { InstanceRow } from '../../db/index.js';
import { requireAdmin } from '../admin-context.js';
import { requireAuth } from '../auth-context.js';
import { queryParam } from '../query-param.js';
import { loadInstanceView, loadInstanceViews } from './instance-view-loader.js';
import type { InstanceViewContext } from './instance-views.js';
import { mgmtInstanceDetailView, mgmtInstanceView } from './mgmt-instance-views.js';
import { busContext, viewContext, type TenantParams, type TroveDeps } from './trove-deps.js';

// Management of instances across projects (reference 2.15): admins only, and a non-admin gets
// Trove's 401 before anything else is looked at.

type InstanceParams = { Params: TenantParams & { instanceId: string } };

/** instances whose rows one statement reads at once in the unpaged management list */
const mgmtSliceSize = 500;

/** Trove reads `deleted` as true, false, or (anything else) both. */
function deletedFilter(request: FastifyRequest): boolean | undefined {
  const value = queryParam(request.query, 'deleted')?.toLowerCase();
  return value === 'true' ? true : value === 'false' ? false : undefined;
}

const notInCoffer = {
  reboot: 'Rebooting through the management API is not supported by Coffer yet; use the instance restart action.',
  migrate: 'Migrating an instance to another host is not supported by Coffer yet.',
  rebuild: 'Rebuilding an instance from a guest image is not supported by Coffer: it runs no guest images.',
} as const;

const actions = ['stop', 'reset-task-status', ...(Object.keys(notInCoffer) as (keyof typeof notInCoffer)[])] as const;
type MgmtAction = (typeof actions)[number];

/** Exactly one known action key, in Trove's order of complaints. */
function selectAction(body: unknown): MgmtAction {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new CofferError('BadRequest', 'Invalid request body.');
  }
  let selected: MgmtAction | undefined;
  for (const key of Object.keys(body)) {
    if (!(actions as readonly string[]).includes(key)) throw new CofferError('BadRequest', `Invalid instance action: ${key}`);
    if (selected !== undefined) throw new CofferError('BadRequest', 'Only one action can be specified per request.');
    selected = key as MgmtAction;
  }
  if (selected === undefined) throw new CofferError('BadRequest', 'Invalid request body.');
  return selected;
}

export async function mgmtRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;

  const adminContext = (request: FastifyRequest): InstanceViewContext => {
    requireAdmin(requireAuth(request));
    return {
      ...viewContext(request),
      region: deps.region,
      now: new Date(),
      heartbeatExpirySeconds: deps.heartbeatExpirySeconds,
    };
  };

  async function loadInstance(id: string, includeDeleted = false): Promise<InstanceRow> {
    const instance = await store.instances.get(id, { includeDeleted });
    if (instance === undefined) throw errors.notFound(id);
    return instance;
  }

  app.get('/mgmt/instances', async (request) => {
    const ctx = adminContext(request);
    const projectId = queryParam(request.query, 'project_id');
    const rows = await store.instances.listAll({
      ...(projectId === undefined || projectId === '' ? {} : { tenantId: projectId }),
      ...(deletedFilter(request) === undefined ? {} : { deleted: deletedFilter(request) }),
    });
    rows.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    // every instance at once, unpaged as Trove's: the look-ups go in slices so that no
    // statement carries more ids than the engines bind in one
    const views = [];
    for (let at = 0; at < rows.length; at += mgmtSliceSize) {
      for (const data of await loadInstanceViews(store, rows.slice(at, at + mgmtSliceSize))) views.push(mgmtInstanceView(data, ctx));
    }
    return { instances: views };
  });

  app.get<InstanceParams>('/mgmt/instances/:instanceId', async (request) => {
    const ctx = adminContext(request);
    const instance = await loadInstance(request.params.instanceId, deletedFilter(request) === true);
    const [data, rootHistory] = await Promise.all([loadInstanceView(store, instance), store.rootHistory.get(instance.id)]);
    return { instance: mgmtInstanceDetailView(data, ctx, { rootHistory }) };
  });

  app.get<InstanceParams>('/mgmt/instances/:instanceId/root', async (request) => {
    adminContext(request);
    const instance = await loadInstance(request.params.instanceId);
    const history = await store.rootHistory.get(instance.id);
    return {
      root_history: {
        id: instance.id,
        enabled: history === undefined ? 'Never' : troveTimestamp(history.createdAt),
        user: history === undefined ? 'Nobody' : history.userId,
      },
    };
  });

  app.post<InstanceParams>('/mgmt/instances/:instanceId/action', async (request, reply) => {
    adminContext(request);
    const instance = await loadInstance(request.params.instanceId);
    const action = selectAction(request.body);
    switch (action) {
      case 'stop': {
        const guest = createRpcClient(deps.transport, guestContract, guestTopic(instance.id));
        await guest.stopDb({}, busContext(request, instance.id));
        break;
      }
      case 'reset-task-status':
        // Trove resets the task only; the service status follows the next heartbeat.
        await store.instances.update(instance.id, { taskStatus: 'NONE', taskDescription: 'No tasks for the instance.' });
        break;
      default:
        throw new CofferError('NotImplemented', notInCoffer[action]);
    }
    reply.code(202).type('application/json').send();
  });
}
