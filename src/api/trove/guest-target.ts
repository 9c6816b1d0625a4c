import type { FastifyRequest } from 'fastify';
import { createRpcClient, guestContract, guestTopic, type RequestContext, type RpcClient } from '../../bus/index.js';
import { CofferError, errors, type EngineCapabilities } from '../../common/index.js';
import type { DatastoreRow, DatastoreVersionRow, InstanceRow, ServiceStatusName } from '../../db/index.js';
import type { SchemaTarget } from './database-user-rules.js';
import { stoppedInstance } from './action-gate.js';
import { serviceApiStatus } from './instance-status.js';
import { loadTenantInstance } from './tenant-instance.js';
import { busContext, type TenantParams, type TroveDeps } from './trove-deps.js';

// Trove's load_and_verify for the database, user and root APIs (reference 2.3-2.5), in its
// order: the instance (404), the policy, what its datastore version can do (422, before any
// message reaches the guest), and a running datastore (422). Capabilities stand in for Trove's
// fixed list of managers: each version says what its guest implements.

export type InstanceParams = TenantParams & { instanceId: string };

export interface GuestTarget {
  instance: InstanceRow;
  version: DatastoreVersionRow;
  /** the engine's naming rules and capabilities, for validating request bodies */
  schema: SchemaTarget;
  guest: RpcClient<typeof guestContract>;
  /** the request context every guest call carries */
  context: RequestContext;
}

/** The service statuses in which the database answers (Trove's "datastore running"). */
const runningStatuses = new Set<ServiceStatusName>(['RUNNING', 'HEALTHY']);

function operationNotSupported(manager: string): CofferError {
  return new CofferError('OperationNotSupported', `Operation not supported for datastore ${manager}.`);
}

/**
 * Trove's message names the service status, which `show` never gives; the rest says what `show`
 * gives instead (its operating_status), so that the two can be matched, and what to wait for.
 */
function notReady(instanceId: string, status: ServiceStatusName, needs: string): CofferError {
  const shown = serviceApiStatus[status];
  const why =
    status === 'UNKNOWN'
      ? ' Its status was reset and is known again at the next heartbeat of its guest.'
      : '';
  return new CofferError(
    'UnprocessableEntity',
    `Instance ${instanceId} is not ready, status: ${status}.${why} ` +
      `${needs} operating_status HEALTHY or ACTIVE; the instance shows ${shown}.`,
  );
}

/** The policy actions of the database, user and root APIs that write to the engine (the rest read). */
function changesEngine(action: string): boolean {
  return /^instance:extension:(database|user|user_access|root):(create|delete|update|update_all)$/.test(action);
}

export async function loadGuestTarget(
  deps: TroveDeps,
  request: FastifyRequest<{ Params: InstanceParams }>,
  action: string,
  allowed: (capabilities: EngineCapabilities) => boolean,
  /** what the message of a not-running instance says needs it running */
  needs = 'Databases, users and root need',
): Promise<GuestTarget> {
  const { store } = deps;
  const instance = await loadTenantInstance(store, request, action);

  // a replica's databases, users and root are its source's, streamed read-only: changed there
  if (instance.replicaOfId != null && changesEngine(action)) {
    throw new CofferError(
      'BadRequest',
      `Instance ${instance.id} is a read replica of ${instance.replicaOfId}: its databases, users and root come from its source; change them there.`,
    );
  }
  const version = await store.datastores.getVersion(instance.datastoreVersionId);
  if (version === undefined) {
    throw errors.internal(`Instance ${instance.id} refers to datastore version ${instance.datastoreVersionId}, which is gone.`);
  }
  if (!allowed(version.capabilities)) throw operationNotSupported(version.manager);

  // Trove's "datastore running" check (422), in words that say how to get it running again
  if (instance.taskStatus === 'STOPPED') throw stoppedInstance(instance.id);
  const service = await store.serviceStatuses.get(instance.id);
  const status: ServiceStatusName = service?.status ?? 'NEW';
  if (!runningStatuses.has(status)) throw notReady(instance.id, status, needs);

  const datastore: DatastoreRow | undefined = await store.datastores.getDatastore(version.datastoreId);
  return {
    instance,
    version,
    schema: { manager: version.manager, datastore: datastore?.name ?? version.manager, capabilities: version.capabilities },
    guest: createRpcClient(deps.transport, guestContract, guestTopic(instance.id)),
    context: busContext(request, instance.id),
  };
}
