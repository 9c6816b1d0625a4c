import {
  createRpcClient,
  guestContract,
  guestTopic,
  replicaSourceTaskPayload,
  type ReplicaSourceTaskPayload,
  type RequestContext,
  type RpcClient,
} from '../bus/index.js';
import { CofferError, newUuid, sleep, type Logger } from '../common/index.js';
import type { InstancePatch, InstanceRow, Repositories, TaskStatusName } from '../db/index.js';
import { type ActionFlowDeps, callGuest, messageOf, noTask } from './action-flow-support.js';
import { runSteps } from './flow-steps.js';
import type { TaskHandle } from './task-runner.js';

// A replication group's primary changes hands (reference 3.6 "Promote" and "Eject"; issue 11).
//
// Switchover (promote_to_replica_source, on the replica to promote): the old primary is fenced
// first (its engine stops taking writes and answers the last position it wrote), the replica is
// promoted once it has received all of it, and the old primary and the other replicas follow the
// new one. Nothing acknowledged is lost.
//
// Failover (eject_replica_source, on a primary that is lost): the primary was fenced when the
// failover claimed it (its guest stops its engine when its lease runs out, before the claim can
// happen; see common/primary-lease.ts). The replica furthest ahead is promoted and the others
// follow it. The old primary stays fenced until its host is back; it then rejoins as a replica
// (rejoin_replica), or stays stopped when it holds writes the new primary lacks and its engine
// cannot undo them.
//
// The state database switches the group in one transaction as soon as the new primary takes
// writes, before the others follow: the API shows the new primary at once, and its guest is
// granted its own lease when it asks.

/** how long a switchover waits for the replica to receive all the fenced primary wrote */
const catchUpMs = 60_000;
/** a replica that does not answer within this is passed over by a failover */
const statusTimeoutMs = 3_000;

type Guest = RpcClient<typeof guestContract>;

interface GroupContext {
  deps: ActionFlowDeps;
  handle: TaskHandle;
  log: Logger;
  requestId: string;
}

function guestOf(group: GroupContext, instanceId: string, timeoutMs?: number): { guest: Guest; context: RequestContext } {
  return {
    guest: createRpcClient(group.deps.transport, guestContract, guestTopic(instanceId), timeoutMs === undefined ? {} : { timeoutMs }),
    context: { requestId: group.requestId, instanceId },
  };
}

/** The new primary makes room for `member` and `member` follows it. */
async function follow(group: GroupContext, source: InstanceRow, member: InstanceRow): Promise<void> {
  if (member.address == null) throw new CofferError('Internal', `Instance ${member.id} has no address.`);
  const address = member.address;
  const primary = guestOf(group, source.id);
  const grant = await callGuest(group.deps, group.handle, `addReplica on ${source.id}`, group.log, () =>
    primary.guest.addReplica({ replicaId: member.id, address }, primary.context),
  );
  const follower = guestOf(group, member.id);
  await callGuest(group.deps, group.handle, `followSource on ${member.id}`, group.log, () => follower.guest.followSource({ grant }, follower.context));
}

/** Each of `members` follows the new primary; one that cannot keeps a fault saying why, and the others go on. */
async function followAll(group: GroupContext, sourceId: string, members: readonly string[]): Promise<string[]> {
  const source = await group.deps.store.instances.get(sourceId);
  if (source === undefined) throw new CofferError('InstanceNotFound', `Instance ${sourceId} cannot be found.`);
  const failed: string[] = [];
  for (const memberId of members) {
    const member = await group.deps.store.instances.get(memberId);
    if (member === undefined) continue;
    try {
      await follow(group, source, member);
      group.log.info({ memberId }, 'follows the new primary');
    } catch (err) {
      if (group.handle.signal.aborted) throw err;
      failed.push(memberId);
      const message = `Could not follow the new primary ${sourceId}: ${messageOf(err)}`;
      group.log.error({ err, memberId }, 'a member of the group could not follow the new primary');
      await group.deps.store.faults.record({ id: newUuid(), instanceId: memberId, message: message.slice(0, 255), details: message, createdAt: new Date() });
    }
  }
  return failed;
}

/**
 * The group's rows as they are once `newPrimaryId` takes writes: it is the primary and carries the
 * group's settings, every other member names it as its source.
 */
async function switchRows(
  tx: Repositories,
  oldPrimary: InstanceRow,
  newPrimaryId: string,
  members: readonly string[],
  oldPrimaryPatch: InstancePatch,
): Promise<void> {
  await tx.instances.update(newPrimaryId, {
    replicaOfId: null,
    failover: oldPrimary.failover !== false,
    synchronousReplication: oldPrimary.synchronousReplication === true,
    leaseRenewedAt: null,
    fencedAt: null,
  });
  for (const memberId of members) await tx.instances.update(memberId, { replicaOfId: newPrimaryId });
  await tx.instances.update(oldPrimary.id, { replicaOfId: newPrimaryId, leaseRenewedAt: null, ...oldPrimaryPatch });
}

/** Ends the group's task status on each of `ids` still in `expected`. */
async function endGroup(deps: ActionFlowDeps, ids: readonly string[], expected: TaskStatusName): Promise<void> {
  for (const id of ids) await deps.store.instances.updateIfTask(id, [expected], noTask);
}

async function recordFault(deps: ActionFlowDeps, instanceId: string, message: string): Promise<void> {
  await deps.store.faults.record({ id: newUuid(), instanceId, message: message.slice(0, 255), details: message, createdAt: new Date() });
}

/**
 * promote_to_replica_source (switchover), on the replica to promote; the API set PROMOTING on it,
 * its primary and the other replicas.
 */
export function promoteFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const payload: ReplicaSourceTaskPayload = replicaSourceTaskPayload.parse(handle.task.payload ?? {});
    const candidateId = handle.task.instanceId;
    const candidate = await deps.store.instances.get(candidateId);
    const log = deps.logger.child({ instanceId: candidateId, taskId: handle.task.id, kind: handle.task.kind });
    if (candidate === undefined || candidate.taskStatus !== 'PROMOTING') {
      log.info('instance no longer PROMOTING; nothing to do');
      return;
    }
    const group: GroupContext = { deps, handle, log, requestId: payload.requestId ?? `req-${newUuid()}` };
    // the API named the old primary: once the group switched, the rows no longer do
    const oldPrimaryId = payload.sourceId ?? candidate.replicaOfId;
    if (oldPrimaryId == null) {
      await endGroup(deps, [candidateId], 'PROMOTING');
      return;
    }
    const oldPrimary = await deps.store.instances.get(oldPrimaryId);
    if (oldPrimary === undefined) throw new CofferError('InstanceNotFound', `Instance ${oldPrimaryId} cannot be found.`);
    const siblings = (payload.replicaIds ?? oldPrimary.replicaIds ?? []).filter((id) => id !== candidateId);
    const everyone = [candidateId, oldPrimaryId, ...siblings];
    const began = performance.now();
    let position = payload.position;
    try {
      await runSteps(handle, [
        {
          name: 'fenced',
          run: async () => {
            const source = guestOf(group, oldPrimaryId);
            position = (await callGuest(deps, handle, `fenceSource on ${oldPrimaryId}`, log, () => source.guest.fenceSource({}, source.context))).position;
            log.info({ oldPrimaryId, position }, 'old primary fenced');
          },
          payload: () => ({ ...payload, position }),
        },
        {
          name: 'caught-up',
          repeatable: true,
          run: () => waitForPosition(group, candidateId, position ?? 0),
        },
        {
          name: 'promoted',
          run: async () => {
            const replica = guestOf(group, candidateId);
            await callGuest(deps, handle, `detachReplica on ${candidateId}`, log, () => replica.guest.detachReplica({}, replica.context));
            await deps.store.transaction(async (tx) => {
              await switchRows(tx, oldPrimary, candidateId, siblings, {});
              await tx.instanceEvents.record({
                instanceId: candidateId,
                type: 'replication.promoted',
                name: candidateId,
                message: `Promoted in place of ${oldPrimaryId} (a switchover): writes accepted ${Math.round(performance.now() - began)} ms after the old primary was asked to stop.`,
                createdAt: new Date(),
              });
            });
            log.info({ ms: Math.round(performance.now() - began) }, 'replica promoted; the group switched to it');
          },
        },
        {
          name: 'followed',
          run: async () => {
            await followAll(group, candidateId, [oldPrimaryId, ...siblings]);
            if (oldPrimary.synchronousReplication === true) await setSynchronous(group, candidateId);
          },
        },
        {
          name: 'ended',
          repeatable: true,
          run: () => endGroup(deps, everyone, 'PROMOTING'),
        },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      const message = `Promoting ${candidateId} failed: ${messageOf(err)}`;
      log.error({ err }, 'switchover failed');
      // not promoted yet: the old primary takes writes again (a fence, even one that failed half
      // way, left its engine held stopped; starting a running one is a no-op)
      const current = await deps.store.instances.get(candidateId);
      if (current?.replicaOfId === oldPrimaryId) {
        const source = guestOf(group, oldPrimaryId);
        await callGuest(deps, handle, `startDb on ${oldPrimaryId}`, log, () => source.guest.startDb({}, source.context)).catch((startErr: unknown) =>
          log.error({ err: startErr }, 'the fenced primary could not be started again'),
        );
      }
      await recordFault(deps, candidateId, message);
      await endGroup(deps, everyone, 'PROMOTING');
      throw err;
    }
  };
}

/** Waits until the replica has received everything up to `position` (a switchover's fenced primary wrote). */
async function waitForPosition(group: GroupContext, replicaId: string, position: number): Promise<void> {
  const replica = guestOf(group, replicaId, statusTimeoutMs);
  const deadline = Date.now() + catchUpMs;
  for (;;) {
    const status = await replica.guest.getReplicationStatus({}, replica.context).catch(() => undefined);
    if (status?.role === 'replica' && (status.position ?? -1) >= position) return;
    if (Date.now() >= deadline) {
      throw new CofferError('GuestTimeout', `Replica ${replicaId} did not receive all its primary wrote (position ${position}) within ${catchUpMs / 1000} s.`);
    }
    await sleep(200, group.handle.signal);
  }
}

async function setSynchronous(group: GroupContext, primaryId: string): Promise<void> {
  const primary = guestOf(group, primaryId);
  await callGuest(group.deps, group.handle, `setSynchronous on ${primaryId}`, group.log, () => primary.guest.setSynchronous({ synchronous: true }, primary.context)).catch(
    async (err: unknown) => {
      group.log.error({ err }, 'the new primary could not be made synchronous');
      await recordFault(group.deps, primaryId, `Synchronous replication could not be turned on: ${messageOf(err)}`);
    },
  );
}

/** The replica furthest ahead among those that answer: the one a failover promotes. */
async function furthestReplica(group: GroupContext, replicaIds: readonly string[]): Promise<{ id: string; position: number } | undefined> {
  const answers = await Promise.all(
    replicaIds.map(async (id) => {
      const replica = guestOf(group, id, statusTimeoutMs);
      const status = await replica.guest.getReplicationStatus({}, replica.context).catch((err: unknown) => {
        group.log.warn({ replicaId: id, err: messageOf(err) }, 'replica passed over: it did not answer');
        return undefined;
      });
      return status?.role === 'replica' ? { id, position: status.position ?? 0 } : undefined;
    }),
  );
  const candidates = answers.filter((answer) => answer !== undefined);
  // ties go to the first by id, so that every run of the same state chooses the same replica
  return candidates.sort((a, b) => b.position - a.position || a.id.localeCompare(b.id))[0];
}

/**
 * eject_replica_source (failover), on the lost primary, which is EJECTING and fenced: the claim
 * (automatic) or the API set both.
 */
export function ejectFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const payload: ReplicaSourceTaskPayload = replicaSourceTaskPayload.parse(handle.task.payload ?? {});
    const oldPrimaryId = handle.task.instanceId;
    const log = deps.logger.child({ instanceId: oldPrimaryId, taskId: handle.task.id, kind: handle.task.kind });
    const oldPrimary = await deps.store.instances.get(oldPrimaryId);
    if (oldPrimary === undefined || oldPrimary.taskStatus !== 'EJECTING') {
      log.info('instance no longer EJECTING; nothing to do');
      return;
    }
    const group: GroupContext = { deps, handle, log, requestId: payload.requestId ?? `req-${newUuid()}` };
    const replicas = payload.replicaIds ?? oldPrimary.replicaIds ?? [];
    const began = Date.now();
    let candidateId = payload.candidateId;
    try {
      await runSteps(handle, [
        {
          name: 'chosen',
          run: async () => {
            const chosen = await furthestReplica(group, replicas);
            if (chosen === undefined) throw new CofferError('GuestTimeout', 'No replica answered: none could be promoted.');
            candidateId = chosen.id;
            log.info({ candidateId, position: chosen.position }, 'replica furthest ahead chosen');
          },
          payload: () => ({ ...payload, candidateId }),
        },
        {
          name: 'promoted',
          run: async () => {
            const newPrimaryId = candidateId!;
            const replica = guestOf(group, newPrimaryId);
            await callGuest(deps, handle, `detachReplica on ${newPrimaryId}`, log, () => replica.guest.detachReplica({}, replica.context));
            const now = new Date();
            const lostFor = oldPrimary.leaseRenewedAt == null ? undefined : now.getTime() - oldPrimary.leaseRenewedAt.getTime();
            const message =
              `${oldPrimaryId} was lost${payload.automatic === true ? ' (its lease was not renewed)' : ''}; ${newPrimaryId} takes writes ` +
              `${lostFor === undefined ? '' : `${(lostFor / 1000).toFixed(1)} s after the old primary's last lease renewal, `}` +
              `${((now.getTime() - began) / 1000).toFixed(1)} s after the failover began.`;
            await deps.store.transaction(async (tx) => {
              await switchRows(tx, oldPrimary, newPrimaryId, replicas.filter((id) => id !== newPrimaryId), noTask);
              await tx.serviceStatuses.set({ instanceId: oldPrimaryId, status: 'SHUTDOWN', updatedAt: now });
              for (const instanceId of [oldPrimaryId, newPrimaryId]) {
                await tx.instanceEvents.record({ instanceId, type: 'replication.failover', name: newPrimaryId, message, createdAt: now });
              }
              await tx.faults.record({
                id: newUuid(),
                instanceId: oldPrimaryId,
                message: `Replaced by ${newPrimaryId} in a failover; it rejoins as its replica once its host is back.`,
                details: message,
                createdAt: now,
              });
            });
            log.info({ newPrimaryId, lostForMs: lostFor }, 'failover: replica promoted; the group switched to it');
          },
        },
        {
          name: 'followed',
          run: async () => {
            const newPrimaryId = candidateId!;
            await followAll(group, newPrimaryId, replicas.filter((id) => id !== newPrimaryId));
            if (oldPrimary.synchronousReplication === true) await setSynchronous(group, newPrimaryId);
          },
        },
        {
          name: 'ended',
          repeatable: true,
          run: () => endGroup(deps, replicas, 'EJECTING'),
        },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'failover failed');
      const promoted = candidateId !== undefined && (await deps.store.instances.get(candidateId))?.replicaOfId == null;
      // Nobody promoted: the old primary is unfenced, and takes writes again once its host renews
      // its lease. Once a replica was promoted, the group has its new primary whatever failed after.
      if (!promoted) await deps.store.instances.update(oldPrimaryId, { fencedAt: null });
      await recordFault(deps, oldPrimaryId, `Failover failed: ${messageOf(err)}`);
      await endGroup(deps, [oldPrimaryId, ...replicas], 'EJECTING');
      throw err;
    }
  };
}

/**
 * rejoin_replica, on a former primary a failover fenced whose host is back: the new primary makes
 * room for it and it follows, its writes the new primary never received undone where its engine
 * can. Where it cannot (Conflict), it leaves the group as a standalone instance that stays
 * stopped, its data as it was, with a fault saying what to do.
 */
export function rejoinFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const payload: ReplicaSourceTaskPayload = replicaSourceTaskPayload.parse(handle.task.payload ?? {});
    const instanceId = handle.task.instanceId;
    const log = deps.logger.child({ instanceId, taskId: handle.task.id, kind: handle.task.kind });
    const instance = await deps.store.instances.get(instanceId);
    if (instance === undefined || instance.taskStatus !== 'EJECTING' || instance.replicaOfId == null) {
      log.info('instance no longer a fenced former primary; nothing to do');
      return;
    }
    const sourceId = instance.replicaOfId;
    const source = await deps.store.instances.get(sourceId);
    const group: GroupContext = { deps, handle, log, requestId: payload.requestId ?? `req-${newUuid()}` };
    try {
      if (source === undefined) throw new CofferError('InstanceNotFound', `Its new primary ${sourceId} is gone.`);
      await follow(group, source, instance);
      await deps.store.transaction(async (tx) => {
        if (!(await tx.instances.updateIfTask(instanceId, ['EJECTING'], { ...noTask, fencedAt: null }))) return;
        await tx.instanceEvents.record({ instanceId, type: 'replication.rejoined', name: sourceId, message: `Rejoined as a replica of ${sourceId}.`, createdAt: new Date() });
      });
      log.info({ sourceId }, 'former primary rejoined as a replica');
    } catch (err) {
      if (handle.signal.aborted) throw err;
      const conflict = err instanceof CofferError && err.code === 'Conflict';
      log.error({ err, conflict }, 'former primary could not rejoin');
      const message = conflict
        ? `It cannot rejoin ${sourceId} as a replica: ${messageOf(err)} It stays stopped with its data as it was, out of the group: start it to use it on its own, or delete it.`
        : `Rejoining ${sourceId} as a replica failed: ${messageOf(err)} It is tried again later.`;
      await deps.store.transaction(async (tx) => {
        await tx.instances.updateIfTask(instanceId, ['EJECTING'], { ...noTask, ...(conflict ? { replicaOfId: null } : {}) });
        await tx.faults.record({ id: newUuid(), instanceId, message: message.slice(0, 255), details: message, createdAt: new Date() });
      });
      throw err;
    }
  };
}
