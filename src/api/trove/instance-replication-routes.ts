import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ReplicationStatusSpec } from '../../bus/index.js';
import { CofferError } from '../../common/index.js';
import type { InstanceRow } from '../../db/index.js';
import { parseTroveBody } from '../parse-body.js';
import { loadGuestTarget, type InstanceParams } from './guest-target.js';
import type { TroveDeps } from './trove-deps.js';

// An instance's replication as its engine reports it now (Coffer's, beside Trove's API): on a
// source, each replica with whether it streams and how far it trails (WAL bytes not replayed,
// seconds of replay lag); on a replica, its own. The guest is asked, as Trove's show asks it for
// the volume's usage: lag changes by the second, a heartbeat's would be stale.
//
// A group's settings are its primary's, and PATCH changes them there: `failover` (on by
// default: a replica takes over when the primary is lost) and `synchronous` (a commit waits
// until a replica holds it, so a failover loses none; applied to the engine at once).

function replicationView(instance: InstanceRow, status: ReplicationStatusSpec) {
  const lag = (value: { lagBytes?: number | undefined; lagSeconds?: number | undefined }) => ({
    lag_bytes: value.lagBytes ?? null,
    lag_seconds: value.lagSeconds ?? null,
  });
  const settings = { failover: instance.failover !== false, synchronous: instance.synchronousReplication === true };
  switch (status.role) {
    case 'standalone':
      return { role: 'standalone', ...settings };
    case 'source':
      return {
        role: 'source',
        ...settings,
        position: status.position ?? null,
        replicas: status.replicas.map((replica) => ({ id: replica.replicaId, streaming: replica.connected, ...lag(replica) })),
      };
    case 'replica':
      return { role: 'replica', replica_of: instance.replicaOfId ?? null, streaming: status.streaming, position: status.position ?? null, ...lag(status) };
  }
}

const replicationSettingsSchema = z.object({
  replication: z
    .object({ failover: z.boolean().optional(), synchronous: z.boolean().optional() })
    .strict(),
});

export async function instanceReplicationRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  app.get<{ Params: InstanceParams }>('/instances/:instanceId/replication', async (request: FastifyRequest<{ Params: InstanceParams }>) => {
    const target = await loadGuestTarget(deps, request, 'instance:replication', (capabilities) => capabilities.replication, 'Replication status needs');
    const status = await target.guest.getReplicationStatus({}, target.context);
    return { replication: replicationView(target.instance, status) };
  });

  app.patch<{ Params: InstanceParams }>('/instances/:instanceId/replication', async (request: FastifyRequest<{ Params: InstanceParams }>) => {
    const input = parseTroveBody(replicationSettingsSchema, request.body).replication;
    const target = await loadGuestTarget(deps, request, 'instance:update_replication', (capabilities) => capabilities.replication, 'Changing replication needs');
    const { instance } = target;
    if (instance.replicaOfId != null) {
      throw new CofferError('BadRequest', `Instance ${instance.id} is a replica of ${instance.replicaOfId}: its group's settings are changed on its primary.`);
    }
    if (instance.taskStatus !== 'NONE' && instance.taskStatus !== 'RESTART_REQUIRED') {
      throw new CofferError('UnprocessableEntity', `Instance ${instance.id} is not available for this action, task status was ${instance.taskStatus}.`);
    }
    if (input.synchronous !== undefined && input.synchronous !== (instance.synchronousReplication === true)) {
      // with no replica a synchronous commit would wait for ever
      if (input.synchronous && (instance.replicaIds?.length ?? 0) === 0) {
        throw new CofferError('BadRequest', `Instance ${instance.id} has no replicas: create one before making its commits wait for one.`);
      }
      await target.guest.setSynchronous({ synchronous: input.synchronous }, target.context);
    }
    await deps.store.instances.update(instance.id, {
      // turned on again: the lease renewed before it was turned off is stale, and would be taken
      // for a lapsed one; no failover until the primary renews (its guest looks again within 30 s)
      ...(input.failover === true && instance.failover === false ? { leaseRenewedAt: null } : {}),
      ...(input.failover === undefined ? {} : { failover: input.failover }),
      ...(input.synchronous === undefined ? {} : { synchronousReplication: input.synchronous }),
    });
    const updated = (await deps.store.instances.get(instance.id)) ?? instance;
    const status = await target.guest.getReplicationStatus({}, target.context);
    return { replication: replicationView(updated, status) };
  });
}
