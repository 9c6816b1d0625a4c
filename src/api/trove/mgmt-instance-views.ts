import { troveTimestamp } from '../../common/index.js';
import type { InstanceRow, RootHistoryRow, ServiceStatusName, ServiceStatusRow } from '../../db/index.js';
import { guestServiceStatus, instanceStatus, serviceApiStatus } from './instance-status.js';
import { instanceDetailView, reportedVolumeUsedBytes, toGb, type InstanceViewContext, type InstanceViewData } from './instance-views.js';

// Trove's management instance views (reference 2.15, trove/extensions/mgmt/instances/views.py):
// the detail view plus what only operators see. Coffer has no Nova server and no Cinder volume:
// the "server" is the engine process on its agent host (its id is the instance's, as `server_id`
// in the detail view and in the compute view) and the "volume" is the instance's directory there.

/** Trove's ServiceStatus descriptions (reference 3.1), what guest_status.state_description shows. */
const statusDescription: Readonly<Record<ServiceStatusName, string>> = Object.freeze({
  NEW: 'new',
  BUILDING: 'building',
  INSTANCE_READY: 'instance ready',
  HEALTHY: 'healthy',
  RUNNING: 'running',
  BLOCKED: 'blocked',
  PAUSED: 'paused',
  SHUTDOWN: 'shutdown',
  CRASHED: 'crashed',
  FAILED: 'failed to spawn',
  DELETED: 'deleted',
  UNKNOWN: 'unknown',
  FAILED_TIMEOUT_GUESTAGENT: 'guestagent error',
  RESTART_REQUIRED: 'restart required',
  RESTARTING: 'restarting',
});

function serverView(instance: InstanceRow, service: ServiceStatusRow | undefined) {
  if (instance.deleted || instance.host === null) return null;
  return {
    id: instance.id,
    name: instance.name,
    // What Nova's status would be: the status an instance with no task shows.
    status: instanceStatus('NONE', service?.status),
    tenant_id: instance.tenantId,
    host: instance.host,
  };
}

/** the guest's status as views show it: the silent guest of a live instance with no task running shows as timed out */
function shownServiceStatus(data: InstanceViewData, ctx: InstanceViewContext): ServiceStatusName | undefined {
  const { instance, service } = data;
  if (service === undefined || instance.deleted || instance.taskStatus !== 'NONE') return service?.status;
  return guestServiceStatus(service, ctx.now, ctx.heartbeatExpirySeconds);
}

export function mgmtInstanceView(data: InstanceViewData, ctx: InstanceViewContext) {
  const { instance, service } = data;
  const shown = shownServiceStatus(data, ctx);
  return {
    ...instanceDetailView(data, ctx),
    server: serverView(instance, service),
    service_status: shown === undefined ? null : serviceApiStatus[shown],
    tenant_id: instance.tenantId,
    deleted: instance.deleted,
    deleted_at: instance.deletedAt === null ? null : troveTimestamp(instance.deletedAt),
    task_description: instance.taskDescription,
  };
}

export interface MgmtDetailExtras {
  rootHistory: RootHistoryRow | undefined;
}

export function mgmtInstanceDetailView(data: InstanceViewData, ctx: InstanceViewContext, extras: MgmtDetailExtras) {
  const { instance } = data;
  const shown = shownServiceStatus(data, ctx);
  const view = mgmtInstanceView(data, ctx);
  const { rootHistory } = extras;
  // as the guest's heartbeats last reported it; null until the first report
  const usedBytes = reportedVolumeUsedBytes(data);
  return {
    ...view,
    server:
      view.server === null
        ? null
        : {
            ...view.server,
            // Nova's shape: addresses by network name.
            addresses: instance.address === null ? {} : { private: [{ addr: instance.address, version: 4 }] },
          },
    ...(rootHistory === undefined
      ? {}
      : { root_enabled: troveTimestamp(rootHistory.createdAt), root_enabled_by: rootHistory.userId }),
    volume: {
      attachments: [],
      availability_zone: null,
      created_at: troveTimestamp(instance.createdAt),
      id: instance.id,
      size: instance.volumeSizeGb,
      status: instance.deleted ? 'deleted' : instance.host === null ? 'creating' : 'in-use',
      used: usedBytes === undefined ? null : toGb(usedBytes),
      total: usedBytes === undefined ? null : instance.volumeSizeGb,
    },
    ...(shown === undefined ? {} : { guest_status: { state_description: statusDescription[shown] } }),
  };
}
