import { engineStandardPorts, troveTimestamp } from '../../common/index.js';
import type {
  ConfigurationRow,
  DatastoreRow,
  DatastoreVersionRow,
  InstanceFaultRow,
  InstanceRow,
  InstanceSummaryRow,
  ServiceStatusSummary,
  TaskProgress,
} from '../../db/index.js';
import { instanceStatus, operatingStatus } from './instance-status.js';
import type { RecoverableWindow } from './point-in-time.js';
import { resourceLinks, type LinkContext } from './links.js';

// Trove's instance views (reference 2.2 "Instance view"): the summary of GET /instances and the
// detail of GET /instances/detail, GET /instances/{id} and the create response.

/** What the summary view shows: a list page reads no more (loadInstanceViews with `summary`). */
export interface InstanceSummaryViewData {
  instance: InstanceSummaryRow;
  datastore: DatastoreRow | undefined;
  version: DatastoreVersionRow | undefined;
  service: ServiceStatusSummary | undefined;
  /** a backup of the instance is running: it shows BACKUP */
  backupRunning?: boolean;
  /** the live replicas of the instance (ids ordered) */
  replicaIds?: readonly string[];
}

export interface InstanceViewData extends InstanceSummaryViewData {
  instance: InstanceRow;
  fault: InstanceFaultRow | undefined;
  /** the attached configuration group, when there is one */
  configuration?: ConfigurationRow | undefined;
  /** how far the running task's guest operation got, when it reported */
  progress?: TaskProgress | undefined;
  /** the moments a point-in-time restore of the instance can reach, when there are any */
  recoverableWindow?: RecoverableWindow | undefined;
}

export interface InstanceViewContext extends LinkContext {
  isAdmin: boolean;
  region: string;
  now: Date;
  heartbeatExpirySeconds: number;
}

function accessView(instance: InstanceSummaryRow) {
  // Coffer's requireTls is shown as `tls.required`, not among Trove's access keys
  const { requireTls, ...trove } = instance.access ?? {};
  const onlyTls = requireTls !== undefined && Object.keys(trove).length === 0;
  if (instance.access !== null && !onlyTls) {
    return {
      ...(trove.isPublic === undefined ? {} : { is_public: trove.isPublic }),
      ...(trove.allowedCidrs === undefined ? {} : { allowed_cidrs: trove.allowedCidrs }),
    };
  }
  // Trove computes is_public from a public address when addresses are known; Coffer's are private.
  return instance.address === null ? {} : { is_public: false };
}

/**
 * Coffer's extension to Trove's `addresses` entries: the port, where it is not the engine's
 * standard one (instances on a host's own address listen on a port each). `ip` stays a list of
 * addresses, as Trove clients read it.
 */
function portView({ instance, version }: InstanceSummaryViewData): { port?: number } {
  if (instance.port === null) return {};
  const standard = version === undefined ? undefined : engineStandardPorts[version.manager];
  return instance.port === standard ? {} : { port: instance.port };
}

export function instanceSummaryView(data: InstanceSummaryViewData, ctx: InstanceViewContext) {
  const { instance, datastore, version, service } = data;
  const status = instanceStatus(instance.taskStatus, service?.status);
  const known = datastore !== undefined && version !== undefined;
  return {
    id: instance.id,
    name: instance.name,
    status: data.backupRunning === true ? instanceStatus(instance.taskStatus, service?.status, true) : status,
    operating_status: operatingStatus({
      task: instance.taskStatus,
      status,
      service,
      now: ctx.now,
      heartbeatExpirySeconds: ctx.heartbeatExpirySeconds,
    }),
    links: resourceLinks(ctx, 'instances', instance.id),
    flavor: { id: instance.flavorId, links: resourceLinks(ctx, 'flavors', instance.flavorId) },
    datastore: { type: known ? datastore.name : null, version: known ? version.name : null },
    region: ctx.region,
    access: accessView(instance),
    volume: { size: instance.volumeSizeGb } as { size: number; used?: number },
    ...(instance.address === null
      ? {}
      : { ip: [instance.address], addresses: [{ address: instance.address, type: 'private', ...portView(data) }] }),
    ...(instance.replicaOfId == null ? {} : { replica_of: { id: instance.replicaOfId, links: resourceLinks(ctx, 'instances', instance.replicaOfId) } }),
    ...(data.replicaIds === undefined || data.replicaIds.length === 0
      ? {}
      : { replicas: data.replicaIds.map((id) => ({ id, links: resourceLinks(ctx, 'instances', id) })) }),
    ...(ctx.isAdmin ? { tenant_id: instance.tenantId } : {}),
  };
}

/**
 * Coffer's extension: the CA certificate that signed the instance's certificate (clients verify
 * the server with it), when that certificate expires (it is renewed before), the port TLS
 * clients connect to, and whether plaintext clients are refused. Null until the guest reported.
 */
function tlsView(instance: InstanceRow) {
  return {
    required: instance.access?.requireTls === true,
    ca_certificate: instance.tls?.caCertificate ?? null,
    expires: instance.tls === null ? null : troveTimestamp(new Date(instance.tls.expiresAt)),
    port: instance.tls?.port ?? null,
  };
}

const bytesPerGb = 1024 ** 3;

/** bytes as Trove's GB with two decimals */
export function toGb(bytes: number): number {
  return Math.round((bytes / bytesPerGb) * 100) / 100;
}

/**
 * The volume usage the guest last reported (the conductor keeps it; no guest is asked while a
 * view is served). An old measurement still shows: usage changes slowly. A deleted instance's
 * is gone with it.
 */
export function reportedVolumeUsedBytes(data: InstanceViewData): number | undefined {
  const usage = data.service?.volumeUsage;
  if (usage === undefined || data.instance.deleted) return undefined;
  return usage.usedBytes;
}

interface DetailFields {
  datastore: { type: string | null; version: string | null; version_number: string | null };
  created: string;
  updated: string;
  service_status_updated: string;
  tls: ReturnType<typeof tlsView>;
  generation: { desired: number; applied: number };
  progress?: { step: string; percent: number; updated: string };
  awaiting_adoption?: true;
  recoverable_window?: { earliest: string; latest: string };
  configuration?: { id: string; name: string; links: ReturnType<typeof resourceLinks> };
  fault?: { message: string; created: string; details: string | null };
  server_id?: string | null;
  volume_id?: null;
  encrypted_rpc_messaging?: false;
}

export type InstanceDetailView = Omit<ReturnType<typeof instanceSummaryView>, 'datastore'> & DetailFields;

/**
 * The summary with the detail's fields added to the same object, in this order: spreading the
 * summary and each optional part into a new object cost twenty times the summary itself
 * (issue 14, a page of 20 detail views), which V8 builds property by property at run time.
 */
export function instanceDetailView(data: InstanceViewData, ctx: InstanceViewContext): InstanceDetailView {
  const { instance, version, service, fault } = data;
  const summary = instanceSummaryView(data, ctx);
  const usedBytes = reportedVolumeUsedBytes(data);
  // Trove shows `used` only when it is known and not zero
  if (usedBytes !== undefined && usedBytes > 0) summary.volume.used = toGb(usedBytes);
  const view = summary as unknown as InstanceDetailView;
  // replaced where it stands: the summary's place among the keys
  view.datastore = { ...summary.datastore, version_number: summary.datastore.version === null ? null : (version?.version ?? null) };
  view.created = troveTimestamp(instance.createdAt);
  view.updated = troveTimestamp(instance.updatedAt);
  view.service_status_updated = troveTimestamp(service?.updatedAt ?? instance.updatedAt);
  view.tls = tlsView(instance);
  // Coffer's extension: the desired state's version and the one the guest last applied; equal when every change is live
  view.generation = { desired: instance.desiredGeneration, applied: instance.appliedGeneration };
  // Coffer's extension, while a task runs and its guest reported how far it got
  if (data.progress !== undefined) {
    view.progress = { step: data.progress.step, percent: data.progress.percent, updated: troveTimestamp(data.progress.updatedAt) };
  }
  // Coffer's extension: its host's agent restarted and has not taken it up again yet, so its
  // status is the last one heard; gone with its next heartbeat
  if (service?.awaitingAdoption === true) view.awaiting_adoption = true;
  // Coffer's extension: the whole seconds a point-in-time restore can reach
  if (data.recoverableWindow !== undefined) {
    view.recoverable_window = {
      earliest: troveTimestamp(new Date(Math.ceil(data.recoverableWindow.earliest.getTime() / 1000) * 1000)),
      latest: troveTimestamp(data.recoverableWindow.latest),
    };
  }
  if (data.configuration !== undefined) {
    view.configuration = { id: data.configuration.id, name: data.configuration.name, links: resourceLinks(ctx, 'configurations', data.configuration.id) };
  }
  if (fault !== undefined) {
    view.fault = {
      message: fault.message,
      created: troveTimestamp(fault.createdAt),
      // Trove shows a fault's details (often a stack trace) to admins only.
      details: ctx.isAdmin ? fault.details : null,
    };
  }
  if (ctx.isAdmin) {
    // Coffer has no Nova server: the "server" is the engine process on its agent host, served
    // by the compute view (src/api/compute) under the instance's own id once it is placed.
    view.server_id = instance.host === null ? null : instance.id;
    // Nor a Cinder volume; the key is kept for clients that read it.
    view.volume_id = null;
    view.encrypted_rpc_messaging = false;
  }
  return view;
}
