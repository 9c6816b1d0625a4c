import type { CreateInstanceTaskPayload } from '../../bus/index.js';
import { newUuid } from '../../common/index.js';
import type { InstanceAccess, InstanceRow, NewInstance, ServiceStatusRow, TaskRow } from '../../db/index.js';

// The rows POST /instances writes for each instance it makes, a plain one or a replica: the
// instance in BUILD, its status NEW and its pending create task (the taskmanager's to run).

export interface BuildingInstanceSpec {
  name: string;
  tenantId: string;
  flavorId: string;
  volumeSizeGb: number;
  datastoreVersionId: string;
  access: InstanceAccess | null;
  configurationId: string | null;
  replicaOfId?: string;
  payload: CreateInstanceTaskPayload;
  now: Date;
}

export interface BuildingInstanceRows {
  /** as the views show it */
  instance: InstanceRow;
  /** what the repository inserts */
  newInstance: NewInstance;
  service: ServiceStatusRow;
  task: TaskRow;
}

export function buildingInstanceRows(spec: BuildingInstanceSpec): BuildingInstanceRows {
  const { now } = spec;
  const instance: InstanceRow = {
    id: newUuid(),
    name: spec.name,
    tenantId: spec.tenantId,
    flavorId: spec.flavorId,
    volumeSizeGb: spec.volumeSizeGb,
    datastoreVersionId: spec.datastoreVersionId,
    taskStatus: 'BUILDING',
    taskDescription: 'Building the initial instance.',
    taskStartTime: now,
    host: null,
    address: null,
    port: null,
    access: spec.access,
    tls: null,
    configurationId: spec.configurationId,
    // as the repository creates it: the first desired state, not yet applied
    desiredGeneration: 1,
    appliedGeneration: 0,
    walArchivedUntil: null,
    createdAt: now,
    updatedAt: now,
    deleted: false,
    deletedAt: null,
    ...(spec.replicaOfId === undefined ? {} : { replicaOfId: spec.replicaOfId }),
  };
  const { deleted: _deleted, deletedAt: _deletedAt, host: _host, address: _address, port: _port, tls: _tls, ...newInstance } = instance;
  const service: ServiceStatusRow = { instanceId: instance.id, status: 'NEW', updatedAt: now };
  const task: TaskRow = {
    id: newUuid(),
    instanceId: instance.id,
    kind: 'create_instance',
    step: 'start',
    state: 'pending',
    owner: null,
    leaseExpiresAt: null,
    payload: spec.payload,
    attempts: 0,
    createdAt: now,
    updatedAt: now,
  };
  return { instance, newInstance, service, task };
}
