import {
  agentContract,
  agentTopic,
  createInstanceTaskPayload,
  engineVersionKey,
  createRpcClient,
  guestContract,
  guestTopic,
  type PrepareInput,
} from '../bus/index.js';
import type { RequestContext, Transport } from '../bus/index.js';
import { CofferError, newPassword, newUuid, sleep } from '../common/index.js';
import type { Logger } from '../common/index.js';
import { backupChain, type BackupRow, type DatastoreVersionRow, type FlavorRow, type InstanceRow, type StateStore } from '../db/index.js';
import { contractMismatch, unservedContracts } from './agent-contracts.js';
import { overridesOf } from './configuration-overrides.js';
import { engineFailed, engineState, retryTransient } from './flow-support.js';
import { runSteps } from './flow-steps.js';
import type { InstanceWaiter } from './instance-waiter.js';
import type { TaskHandle } from './task-runner.js';
import { restoreLinks } from './backup-chain.js';


export interface InstanceFlowDeps {
  store: StateStore;
  transport: Transport;
  logger: Logger;
  /** how long an instance may stay in BUILD before it fails (Trove's usage_timeout) */
  buildTimeoutMs: number;
  /** an agent is alive when it heartbeated within this window */
  agentAliveWindowMs: number;
  /** how long a create waits for an agent to be alive before it fails */
  noHostWaitMs: number;
  /** a prepare with no sign of life from the guest after this long is sent again */
  prepareResendMs: number;
  /** wakes a waiting flow on the conductor's status events */
  waiter: InstanceWaiter;
}

/**
 * create_instance: place the instance on an agent (directory, address, guest), ask its guest to
 * prepare the engine, and wait for the conductor to record a healthy heartbeat. Each step is
 * recorded, and each is safe to run again when a new taskmanager resumes the task. Whatever goes
 * wrong ends with the instance in ERROR and a fault saying why, never in BUILD.
 */
export function createInstanceFlow(deps: InstanceFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const { store, logger } = deps;
    const instanceId = handle.task.instanceId;
    const log = logger.child({ instanceId, taskId: handle.task.id });
    try {
      const instance = await store.instances.get(instanceId);
      if (instance === undefined || instance.taskStatus !== 'BUILDING') {
        log.info('instance no longer building; nothing to do');
        return;
      }
      let payload = createInstanceTaskPayload.parse(handle.task.payload ?? {});
      const context: RequestContext = { requestId: payload.requestId ?? `req-${newUuid()}`, instanceId };
      const deadline = instance.createdAt.getTime() + deps.buildTimeoutMs;
      const flavor = await store.flavors.get(instance.flavorId);
      if (flavor === undefined) throw new CofferError('FlavorNotFound', `Flavor ${instance.flavorId} no longer exists.`);
      // A task taken up after the build timeout (no taskmanager ran meanwhile) must not start an
      // engine for an instance it is about to fail.
      if (handle.task.step !== 'prepare-sent' && Date.now() >= deadline) {
        throw new CofferError('GuestTimeout', 'Build error: no taskmanager took up the instance before the build timeout.');
      }
      let prepare: PrepareInput | undefined;
      const prepareInput = async (): Promise<PrepareInput> => {
        const { adminPassword } = payload;
        if (adminPassword === undefined) {
          throw new CofferError('Internal', `The create task reached step ${handle.task.step} without its recorded admin password.`);
        }
        prepare ??= {
          memoryMb: flavor.ramMb,
          databases: payload.databases,
          users: payload.users,
          adminPassword,
          access: payload.access,
          // the group's values start with the engine: nothing runs a moment without them
          overrides: await overridesOf(store, instance),
          // what the guest records as applied once prepared; the flow records it when the engine is ready
          generation: instance.desiredGeneration,
          ...(payload.restoreBackupId === undefined ? {} : { restore: await restoreOf(store, payload.restoreBackupId, payload.restoreTime) }),
          ...(instance.replicaOfId == null
            ? {}
            : await replicaInput(deps, instance.id, instance.replicaOfId, context, deadline, handle.signal)),
        };
        return prepare;
      };
      await runSteps(handle, [
        {
          name: 'placed',
          run: async () => {
            await place(deps, handle, instance, flavor, context, deadline, payload.locality);
            // Generated once and recorded with the step: a resumed task resends the same password.
            payload = { ...payload, adminPassword: payload.adminPassword ?? newPassword() };
          },
          payload: () => payload,
        },
        { name: 'prepare-sent', run: async () => sendPrepare(deps, instance, await prepareInput(), context), payload: () => payload },
        { name: 'healthy', repeatable: true, run: async () => waitUntilReady(deps, handle, instance, await prepareInput(), context, deadline) },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      await failBuild(deps, handle.signal, instanceId, err);
      throw err;
    }
  };
}

async function place(
  deps: InstanceFlowDeps,
  handle: TaskHandle,
  instance: InstanceRow,
  flavor: FlavorRow,
  context: RequestContext,
  deadline: number,
  locality: 'affinity' | 'anti-affinity' | undefined,
): Promise<void> {
  const { store, transport, logger } = deps;
  const version = await store.datastores.getVersion(instance.datastoreVersionId);
  if (version === undefined) throw new CofferError('DatastoreVersionNotFound', 'The datastore version of this instance no longer exists.');

  // The host is recorded before the agent is asked, so a resumed task returns to the same agent
  // (createServer is idempotent) instead of leaving a half-made server behind on another one.
  const host = instance.host ?? (await pickHost(deps, version, handle.signal, deadline, await replicaGroupHosts(deps, instance, locality)));
  if (instance.host === null) await store.instances.update(instance.id, { host });
  else await checkResumedHost(deps, host);

  const agent = createRpcClient(transport, agentContract, agentTopic(host));
  const server = await retryTransient(
    `createServer on ${host}`,
    () =>
      agent.createServer(
        {
          instanceId: instance.id,
          engine: { manager: version.manager, version: version.name },
          flavor: { id: flavor.id, ramMb: flavor.ramMb, vcpus: flavor.vcpus },
          volumeSizeGb: instance.volumeSizeGb,
        },
        context,
      ),
    { deadline, signal: handle.signal, logger },
  );
  await store.instances.update(instance.id, { address: server.address, port: server.port });
}

/** A replica's group: the hosts its source and sibling replicas are on, and which way it leans. */
interface ReplicaGroupHosts {
  sourceHost: string | null;
  hosts: ReadonlySet<string>;
  locality: 'affinity' | 'anti-affinity';
}

async function replicaGroupHosts(deps: InstanceFlowDeps, instance: InstanceRow, locality: ReplicaGroupHosts['locality'] | undefined): Promise<ReplicaGroupHosts | undefined> {
  if (instance.replicaOfId == null) return undefined;
  const source = await deps.store.instances.get(instance.replicaOfId);
  if (source === undefined) return undefined;
  const siblings = (await deps.store.instances.listAll({ deleted: false, tenantId: source.tenantId })).filter((i) => i.replicaOfId === source.id && i.id !== instance.id);
  const hosts = new Set([source, ...siblings].map((i) => i.host).filter((host): host is string => host !== null));
  return { sourceHost: source.host, hosts, locality: locality ?? 'anti-affinity' };
}

/**
 * Anti-affinity (a replica's default): the hosts none of its group is on, when there are any;
 * affinity: its source's host when it can take it. Otherwise any: one host is still a replica.
 */
function preferredHosts<A extends { host: string }>(agents: A[], group: ReplicaGroupHosts): A[] {
  const preferred =
    group.locality === 'anti-affinity' ? agents.filter((agent) => !group.hosts.has(agent.host)) : agents.filter((agent) => agent.host === group.sourceHost);
  return preferred.length > 0 ? preferred : agents;
}

/**
 * The live agent, among those whose host can run the instance's engine version, whose host holds
 * the fewest instances (a random one among equals): instances spread over the hosts, and a host
 * that joins takes the next ones.
 */
async function pickHost(
  deps: InstanceFlowDeps,
  version: DatastoreVersionRow,
  signal: AbortSignal,
  buildDeadline: number,
  group?: ReplicaGroupHosts,
): Promise<string> {
  // An agent that is restarting comes back within seconds; none at all is a deployment mistake
  // that the user should hear about soon, not at the end of the build timeout.
  const deadline = Math.min(buildDeadline, Date.now() + deps.noHostWaitMs);
  const key = engineVersionKey(version.manager, version.name);
  for (;;) {
    const alive = await deps.store.agents.listAlive(new Date(Date.now() - deps.agentAliveWindowMs));
    const able = alive.filter((agent) => agent.engines.includes(key));
    const speaking = able.filter((agent) => unservedContracts(agent).length === 0);
    if (speaking.length > 0) {
      const preferred = group === undefined ? speaking : preferredHosts(speaking, group);
      const load = await deps.store.instances.countLiveByHost(preferred.map((agent) => agent.host));
      const least = Math.min(...load.values());
      const candidates = preferred.filter((agent) => load.get(agent.host) === least);
      return candidates[Math.floor(Math.random() * candidates.length)]!.host;
    }
    if (Date.now() >= deadline) {
      // an agent being upgraded may come round within the wait; after it, say what is mismatched
      if (able.length > 0) throw contractMismatch(able);
      throw new CofferError(
        'NoHostAvailable',
        alive.length === 0
          ? 'No compute agent is running: start one with `coffer agent` (or use `coffer serve`).'
          : `No running compute agent can run ${version.manager} ${version.name}: install its binaries on a host and restart that host's agent.`,
      );
    }
    await sleep(500, signal);
  }
}

/** A resumed task returns to its host: only if that agent, when alive, still speaks our contracts. */
async function checkResumedHost(deps: InstanceFlowDeps, host: string): Promise<void> {
  const alive = await deps.store.agents.listAlive(new Date(Date.now() - deps.agentAliveWindowMs));
  const agent = alive.find((a) => a.host === host);
  if (agent !== undefined && unservedContracts(agent).length > 0) throw contractMismatch([agent]);
}

/**
 * What a prepare restores from: the backup's chain, each object with its project's wrapped key,
 * and for a point in time where its instance's archived log is (recorded with the backup).
 */
async function restoreOf(store: InstanceFlowDeps['store'], backupId: string, restoreTime: string | undefined): Promise<NonNullable<PrepareInput['restore']>> {
  const backup = await store.backups.get(backupId);
  if (backup === undefined) throw new CofferError('NotFound', `Backup ${backupId} no longer exists.`);
  const wrappedKey = await store.projectKeys.get(backup.tenantId);
  if (wrappedKey === undefined) throw new CofferError('Conflict', `Backup ${backupId} cannot be decrypted: its project has no key.`);
  const restore = await chainOf(store, backup, wrappedKey);
  const log = archivedLogOf(backup, wrappedKey);
  // an incremental that is its instance's log (PostgreSQL's) is replayed from the archive too
  const logIncremental = backup.backupType === 'incremental' && log !== undefined;
  if (restoreTime === undefined && !logIncremental) return restore;
  if (log === undefined) {
    throw new CofferError('Conflict', `Backup ${backupId} cannot be rolled forward to a moment: its instance's log was not archived from it on.`);
  }
  return { ...restore, pointInTime: { ...(restoreTime === undefined ? {} : { time: restoreTime }), ...log } };
}

/**
 * What a new replica may start from instead of copying its source (the guest falls back to the
 * copy when it cannot): the source's newest completed backup, with the source's archived log
 * for the catch-up where it has one. None without a backup.
 */
async function replicaSeedOf(store: InstanceFlowDeps['store'], sourceId: string): Promise<Pick<PrepareInput, 'restore'>> {
  const backup = await store.backups.latestCompleted(sourceId);
  if (backup === undefined) return {};
  const wrappedKey = await store.projectKeys.get(backup.tenantId);
  if (wrappedKey === undefined) return {};
  const log = archivedLogOf(backup, wrappedKey);
  return { restore: { ...(await chainOf(store, backup, wrappedKey)), ...(log === undefined ? {} : { pointInTime: log }) } };
}

async function chainOf(store: InstanceFlowDeps['store'], backup: BackupRow, wrappedKey: string): Promise<NonNullable<PrepareInput['restore']>> {
  return { projectId: backup.tenantId, chain: restoreLinks(await backupChain(store, backup), wrappedKey) };
}

/** where the backup's instance archived its log from it on, if it did */
function archivedLogOf(backup: BackupRow, wrappedKey: string): { container: string; prefix: string; wrappedKey: string } | undefined {
  const container = backup.facts?.['wal-container'];
  const prefix = backup.facts?.['wal-prefix'];
  return container === undefined || prefix === undefined ? undefined : { container, prefix, wrappedKey };
}

/** A replica's part of its prepare: its source's backup to start from, when there is one, and its grant. */
async function replicaInput(
  deps: InstanceFlowDeps,
  replicaId: string,
  sourceId: string,
  context: RequestContext,
  deadline: number,
  signal: AbortSignal,
): Promise<Pick<PrepareInput, 'restore' | 'replicaOf'>> {
  const seed = await replicaSeedOf(deps.store, sourceId);
  const replicaOf = await replicaGrant(deps, replicaId, sourceId, seed.restore !== undefined, context, deadline, signal);
  return { ...seed, replicaOf };
}

/**
 * A replica's prepare carries what its primary's guest made for it (a role, a password, a slot):
 * asked once the replica is placed, since the primary lets it in from its address. Never
 * recorded (the task's payload is in the state database): a resumed task asks again, and the
 * primary gives the role a new password.
 */
async function replicaGrant(
  deps: InstanceFlowDeps,
  replicaId: string,
  sourceId: string,
  fromBackup: boolean,
  context: RequestContext,
  deadline: number,
  signal: AbortSignal,
): Promise<NonNullable<PrepareInput['replicaOf']>> {
  const [replica, source] = await Promise.all([deps.store.instances.get(replicaId), deps.store.instances.get(sourceId)]);
  if (source === undefined) throw new CofferError('InstanceNotFound', `Replica source ${sourceId} no longer exists.`);
  if (replica?.address == null) throw new CofferError('Internal', `Replica ${replicaId} has no address yet.`);
  const address = replica.address;
  const guest = createRpcClient(deps.transport, guestContract, guestTopic(source.id));
  return retryTransient(`addReplica on ${source.id}`, () => guest.addReplica({ replicaId, address, ...(fromBackup ? { fromBackup } : {}) }, { ...context, instanceId: source.id }), {
    deadline,
    signal,
    logger: deps.logger,
  });
}

async function sendPrepare(deps: InstanceFlowDeps, instance: InstanceRow, prepare: PrepareInput, context: RequestContext): Promise<void> {
  await createRpcClient(deps.transport, guestContract, guestTopic(instance.id)).prepare(prepare, context);
}

async function waitUntilReady(
  deps: InstanceFlowDeps,
  handle: TaskHandle,
  instance: InstanceRow,
  prepare: PrepareInput,
  context: RequestContext,
  deadline: number,
): Promise<void> {
  const { store } = deps;
  for (;;) {
    // Casts are durable, so a prepare is only lost with a whole in-process deployment; a guest
    // that never said a word gets it again (prepare is idempotent) each resend interval.
    const resendAt = Math.min(deadline, Date.now() + deps.prepareResendMs);
    const state = await deps.waiter.waitFor([instance.id], ([row]) => engineState(row!, 'BUILDING'), {
      timeoutMs: Math.max(0, resendAt - Date.now()),
      signal: handle.signal,
    });
    if (state === 'left') return;
    if (state === 'ready') {
      // prepare is a cast: a healthy engine after it is the guest's answer that it applied the
      // create. Recorded before the build ends, so an ACTIVE instance never shows it unapplied.
      if (prepare.generation !== undefined) await store.instances.recordAppliedGeneration(instance.id, prepare.generation);
      await store.instances.update(instance.id, { taskStatus: 'NONE', taskDescription: 'No tasks for the instance.', taskStartTime: null });
      return;
    }
    if (state === 'failed') throw await engineFailed(store, instance.id);
    if (Date.now() >= deadline) {
      throw new CofferError('GuestTimeout', 'Build error: the guest did not report a healthy engine in time.');
    }
    const status = await store.serviceStatuses.get(instance.id);
    if (status === undefined || status.status === 'NEW') await sendPrepare(deps, instance, prepare, context);
  }
}

/**
 * Puts the instance in ERROR with a fault saying why. The task ends as failed only after this is
 * written, so it keeps trying while the database is away (until the lease is lost, and then the
 * worker that takes the task over fails it again): a failed task never leaves its instance in BUILD.
 */
async function failBuild(deps: InstanceFlowDeps, signal: AbortSignal, instanceId: string, err: unknown): Promise<void> {
  const timedOut = err instanceof CofferError && err.code === 'GuestTimeout';
  const message = err instanceof Error ? err.message : String(err);
  deps.logger.error({ instanceId, err: message }, 'instance build failed');
  for (;;) {
    const now = new Date();
    try {
      await deps.store.transaction(async (tx) => {
        // Keep the guest's own fault (the conductor wrote it with the FAILED heartbeat) when it said why.
        const existing = await tx.faults.latest(instanceId);
        if (existing === undefined || existing.message !== message) {
          await tx.faults.record({ id: newUuid(), instanceId, message: message.slice(0, 255), details: message, createdAt: now });
        }
        if (timedOut) await tx.serviceStatuses.set({ instanceId, status: 'FAILED_TIMEOUT_GUESTAGENT', updatedAt: now });
        await tx.instances.update(instanceId, {
          taskStatus: timedOut ? 'BUILDING_ERROR_TIMEOUT_GA' : 'BUILDING_ERROR_SERVER',
          taskDescription: timedOut ? 'Build error: guestagent timeout.' : 'Build error: Server.',
        });
      });
      return;
    } catch (recordErr) {
      // A CofferError is an answer (the row is gone...), not the database being away.
      if (recordErr instanceof CofferError) throw recordErr;
      deps.logger.warn({ instanceId, err: recordErr }, 'could not record the build failure; retrying');
      await sleep(1000, signal);
    }
  }
}
