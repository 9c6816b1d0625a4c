import { createHash } from 'node:crypto';
import { troveTimestamp } from '../../common/index.js';
import type { FlavorRow, InstanceFaultRow, InstanceRow, ServiceStatusRow } from '../../db/index.js';
import { bookmarkLink, computeLinks, type ComputeLinkContext } from './compute-links.js';
import { atLeast, type Microversion } from './microversion.js';
import { serverState } from './server-status.js';

// Nova's server views (nova/api/openstack/compute/views/servers.py) of an instance's server: its
// engine process on its agent host. The server's id is the instance's id: the server lives and
// dies with its instance and is never rebuilt under another id, so a tool holding either id finds
// the other without a lookup table (Trove's admin `server_id` shows the same id).

export interface ServerViewData {
  instance: InstanceRow;
  service: ServiceStatusRow | undefined;
  fault: InstanceFaultRow | undefined;
  flavor: FlavorRow | undefined;
}

export interface ServerViewContext extends ComputeLinkContext {
  version: Microversion;
  isAdmin: boolean;
  now: Date;
  heartbeatExpirySeconds: number;
  /** `show` adds what Nova's show has beyond the list's detail (server_groups at 2.71) */
  show: boolean;
}

/** Nova's timestamps of created/updated: seconds and `Z`. */
function novaTimestamp(date: Date): string {
  return `${troveTimestamp(date)}Z`;
}

/** Nova's OS-SRV-USG timestamps: microseconds, no zone. */
function usageTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000`;
}

export function serverSummaryView(instance: InstanceRow, ctx: ComputeLinkContext) {
  return { id: instance.id, name: instance.name, links: computeLinks(ctx, 'servers', instance.id) };
}

function flavorView(data: ServerViewData, ctx: ServerViewContext) {
  const { instance, flavor } = data;
  if (!atLeast(ctx.version, 47)) return { id: instance.flavorId, links: [bookmarkLink(ctx, 'flavors', instance.flavorId)] };
  // 2.47: the flavor the server has now, embedded, so a resize shows without a flavor lookup
  return {
    vcpus: flavor?.vcpus ?? 0,
    ram: flavor?.ramMb ?? 0,
    disk: flavor?.diskGb ?? 0,
    ephemeral: flavor?.ephemeralGb ?? 0,
    swap: 0,
    original_name: flavor?.name ?? instance.flavorId,
    extra_specs: {},
  };
}

/** Nova's hostId: a project's own hash of the host, so projects can tell co-location without learning the host. */
function hostId(instance: InstanceRow): string {
  if (instance.host === null) return '';
  return createHash('sha224').update(`${instance.tenantId}${instance.host}`).digest('hex');
}

/** host_status (2.16): UNKNOWN once the guest on the host fell silent for longer than the heartbeat expiry. */
function hostStatus(data: ServerViewData, ctx: ServerViewContext): string {
  if (data.instance.host === null) return '';
  const service = data.service;
  if (service === undefined) return 'UNKNOWN';
  return ctx.now.getTime() - service.updatedAt.getTime() > ctx.heartbeatExpirySeconds * 1000 ? 'UNKNOWN' : 'UP';
}

const progressStatuses = new Set(['ACTIVE', 'BUILD', 'REBUILD', 'RESIZE', 'VERIFY_RESIZE', 'MIGRATING']);

export function serverDetailView(data: ServerViewData, ctx: ServerViewContext) {
  const { instance, fault } = data;
  const state = serverState(instance.taskStatus, data.service?.status);
  const v = ctx.version;
  const launched = state.vmState === 'building' ? null : usageTimestamp(instance.createdAt);
  return {
    id: instance.id,
    name: instance.name,
    status: state.status,
    tenant_id: instance.tenantId,
    // Coffer does not record which user created an instance; Nova's own would name one
    user_id: null,
    metadata: {},
    hostId: hostId(instance),
    // booted from a volume, as Nova shows such a server: no image
    image: '',
    flavor: flavorView(data, ctx),
    created: novaTimestamp(instance.createdAt),
    updated: novaTimestamp(instance.updatedAt),
    addresses: instance.address === null ? {} : { private: [{ version: instance.address.includes(':') ? 6 : 4, addr: instance.address, 'OS-EXT-IPS:type': 'fixed' }] },
    accessIPv4: '',
    accessIPv6: '',
    links: computeLinks(ctx, 'servers', instance.id),
    'OS-DCF:diskConfig': 'MANUAL',
    ...(progressStatuses.has(state.status) ? { progress: 0 } : {}),
    'OS-EXT-AZ:availability_zone': 'nova',
    config_drive: '',
    key_name: null,
    'OS-SRV-USG:launched_at': launched,
    'OS-SRV-USG:terminated_at': null,
    'OS-EXT-STS:task_state': state.taskState,
    'OS-EXT-STS:vm_state': state.vmState,
    'OS-EXT-STS:power_state': state.powerState,
    'os-extended-volumes:volumes_attached': [],
    // Nova's os_compute_api:os-extended-server-attributes: admins only
    ...(ctx.isAdmin
      ? {
          'OS-EXT-SRV-ATTR:host': instance.host,
          'OS-EXT-SRV-ATTR:hypervisor_hostname': instance.host,
          'OS-EXT-SRV-ATTR:instance_name': `instance-${instance.id}`,
          ...(atLeast(v, 3)
            ? {
                'OS-EXT-SRV-ATTR:reservation_id': '',
                'OS-EXT-SRV-ATTR:launch_index': 0,
                'OS-EXT-SRV-ATTR:hostname': instance.name,
                'OS-EXT-SRV-ATTR:kernel_id': '',
                'OS-EXT-SRV-ATTR:ramdisk_id': '',
                'OS-EXT-SRV-ATTR:root_device_name': null,
                'OS-EXT-SRV-ATTR:user_data': null,
              }
            : {}),
        }
      : {}),
    ...(atLeast(v, 9) ? { locked: false } : {}),
    ...(atLeast(v, 16) && ctx.isAdmin ? { host_status: hostStatus(data, ctx) } : {}),
    ...(atLeast(v, 19) ? { description: null } : {}),
    ...(atLeast(v, 26) ? { tags: [] } : {}),
    ...(atLeast(v, 63) ? { trusted_image_certificates: null } : {}),
    ...(atLeast(v, 71) && ctx.show ? { server_groups: [] } : {}),
    ...(atLeast(v, 73) ? { locked_reason: null } : {}),
    // Nova shows the fault of a server in ERROR; its details (often a trace) to admins only
    ...(state.status === 'ERROR' && fault !== undefined
      ? {
          fault: {
            code: 500,
            created: novaTimestamp(fault.createdAt),
            message: fault.message,
            ...(ctx.isAdmin ? { details: fault.details } : {}),
          },
        }
      : {}),
  };
}
