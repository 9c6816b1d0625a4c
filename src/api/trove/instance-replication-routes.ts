import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ReplicationStatusSpec } from '../../bus/index.js';
import type { InstanceRow } from '../../db/index.js';
import { loadGuestTarget, type InstanceParams } from './guest-target.js';
import type { TroveDeps } from './trove-deps.js';

// An instance's replication as its engine reports it now (Coffer's, beside Trove's API): on a
// source, each replica with whether it streams and how far it trails (WAL bytes not replayed,
// seconds of replay lag); on a replica, its own. The guest is asked, as Trove's show asks it for
// the volume's usage: lag changes by the second, a heartbeat's would be stale.

function replicationView(instance: InstanceRow, status: ReplicationStatusSpec) {
  const lag = (value: { lagBytes?: number | undefined; lagSeconds?: number | undefined }) => ({
    lag_bytes: value.lagBytes ?? null,
    lag_seconds: value.lagSeconds ?? null,
  });
  switch (status.role) {
    case 'standalone':
      return { role: 'standalone' };
    case 'source':
      return { role: 'source', replicas: status.replicas.map((replica) => ({ id: replica.replicaId, streaming: replica.connected, ...lag(replica) })) };
    case 'replica':
      return { role: 'replica', replica_of: instance.replicaOfId ?? null, streaming: status.streaming, ...lag(status) };
  }
}

export async function instanceReplicationRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  app.get<{ Params: InstanceParams }>('/instances/:instanceId/replication', async (request: FastifyRequest<{ Params: InstanceParams }>) => {
    const target = await loadGuestTarget(deps, request, 'instance:replication', (capabilities) => capabilities.replication, 'Replication status needs');
    const status = await target.guest.getReplicationStatus({}, target.context);
    return { replication: replicationView(target.instance, status) };
  });
}
