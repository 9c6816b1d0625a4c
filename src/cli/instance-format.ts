import { flavorId, type FlavorView, type InstanceView } from './api-types.js';
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

/** `m1.small (2)`: the name from the flavor list when it has the id, else the id alone. */
export function flavorText(flavorRefId: string | undefined, flavors: readonly FlavorView[]): string | undefined {
  if (flavorRefId === undefined) return undefined;
  const flavor = flavors.find((f) => flavorId(f) === flavorRefId || String(f.id) === flavorRefId);
  return flavor === undefined ? flavorRefId : `${flavor.name} (${flavorRefId})`;
}

/**
 * Trove's timestamps are UTC without a zone (`2024-05-01T10:00:00`); the CLI says so, so that
 * nobody reads them as local time. Anything else is shown as it came.
 */
export function timestampText(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$/.test(value) ? `${value.replace('T', ' ')} UTC` : value;
}

export function instanceFields(instance: InstanceView, flavors: readonly FlavorView[] = []): Array<[string, Cell]> {
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
    ['Flavor', flavorText(instance.flavor?.id, flavors)],
    ['Size', instance.volume?.size === undefined ? undefined : `${instance.volume.size} GB`],
    ['Used', used === undefined ? undefined : `${used} GB`],
    ['Address', addressText(instance)],
    ['Port', instanceHasAddress(instance) ? instancePort(instance) : undefined],
    ['Allowed clients', instance.access?.allowed_cidrs?.join(', ')],
    ['Configuration', instance.configuration?.name ?? instance.configuration?.id],
    [
      'Restorable to',
      instance.recoverable_window === undefined
        ? undefined
        : `${timestampText(instance.recoverable_window.earliest)} … ${timestampText(instance.recoverable_window.latest)} (--from-instance --restore-time)`,
    ],
    ['Replica of', instance.replica_of?.id],
    ['Replicas', instance.replicas?.map((r) => r.id).join(', ')],
    ['Region', instance.region],
    ['Created', timestampText(instance.created)],
    ['Updated', timestampText(instance.updated)],
    ['Last heartbeat', timestampText(instance.service_status_updated)],
    ['Host agent', instance.awaiting_adoption === true ? 'restarted, not yet taken this instance up again: the status is the last one heard' : undefined],
    ['Fault', instance.fault?.message],
    ['Fault time', timestampText(instance.fault?.created)],
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
