import type { FastifyInstance, FastifyRequest } from 'fastify';
import { troveTimestamp } from '../../common/index.js';
import type { InstanceEventRow, ServiceStatusName } from '../../db/index.js';
import { serviceApiStatus } from './instance-status.js';
import { nextPageLink, pageRequest } from './pagination.js';
import { loadTenantInstance } from './tenant-instance.js';
import { viewContext, type TenantParams, type TroveDeps } from './trove-deps.js';

// An instance's events (Coffer's, beside Trove's API): what happened to it, newest first, with
// the id of the last event of a page as the next page's marker. Status events name the
// instance's `operating_status` as its view shows it (warnings the one they came with); task
// events name the task's kind.

type InstanceParams = { Params: TenantParams & { instanceId: string } };

const pageSize = 100;

export function instanceEventView(event: InstanceEventRow) {
  return {
    id: event.id,
    type: event.type,
    name: event.type === 'status' || event.type === 'warning' ? (serviceApiStatus[event.name as ServiceStatusName] ?? event.name) : event.name,
    message: event.message,
    created: troveTimestamp(event.createdAt),
  };
}

export async function instanceEventRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  app.get<InstanceParams>('/instances/:instanceId/events', async (request: FastifyRequest<InstanceParams>) => {
    const instance = await loadTenantInstance(deps.store, request, 'instance:events');
    const { limit, marker } = pageRequest(request, pageSize);
    const events = await deps.store.instanceEvents.list(instance.id, { limit, ...(marker === undefined ? {} : { after: marker }) });
    return {
      events: events.map(instanceEventView),
      ...(events.length === limit ? { links: [nextPageLink(request, viewContext(request).linkBase, events.at(-1)!.id)] } : {}),
    };
  });
}
