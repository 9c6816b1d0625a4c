import type { InstanceView } from './api-types.js';
import { instancePort } from './connection-info.js';
import type { Cell } from './table-format.js';

export const instanceListHead = ['ID', 'Name', 'Datastore', 'Version', 'Status', 'Operating status', 'Address', 'Size'];

export function instanceListRow(instance: InstanceView): Cell[] {
  return [
    instance.id,
    instance.name,
    instance.datastore?.type,
    instance.datastore?.version,
    instance.status,
    instance.operating_status,
    addressText(instance),
    instance.volume?.size === undefined ? undefined : `${instance.volume.size} GB`,
  ];
}

export function instanceFields(instance: InstanceView): Array<[string, Cell]> {
  const version = instance.datastore?.version;
  const number = instance.datastore?.version_number;
  const used = instance.volume?.used ?? instance.local_storage?.used;
  return [
    ['ID', instance.id],
    ['Name', instance.name],
    ['Status', instance.status],
    ['Operating status', instance.operating_status],
    ['Datastore', instance.datastore?.type],
    ['Version', number !== undefined && number !== version ? `${version} (${number})` : version],
    ['Flavor', instance.flavor?.id],
    ['Size', instance.volume?.size === undefined ? undefined : `${instance.volume.size} GB`],
    ['Used', used === undefined ? undefined : `${used} GB`],
    ['Address', addressText(instance)],
    ['Port', instanceHasAddress(instance) ? instancePort(instance) : undefined],
    ['Allowed clients', instance.access?.allowed_cidrs?.join(', ')],
    ['Configuration', instance.configuration?.name ?? instance.configuration?.id],
    ['Replica of', instance.replica_of?.id],
    ['Replicas', instance.replicas?.map((r) => r.id).join(', ')],
    ['Region', instance.region],
    ['Created', instance.created],
    ['Updated', instance.updated],
    ['Last heartbeat', instance.service_status_updated],
    ['Fault', instance.fault?.message],
    ['Fault time', instance.fault?.created],
    ['Fault details', instance.fault?.details],
  ];
}

function instanceHasAddress(instance: InstanceView): boolean {
  return addressText(instance) !== undefined;
}

function addressText(instance: InstanceView): string | undefined {
  if (instance.hostname !== undefined) return instance.hostname;
  const addresses = instance.addresses?.map((a) => a.address) ?? instance.ip ?? [];
  return addresses.length > 0 ? addresses.join(', ') : undefined;
}
