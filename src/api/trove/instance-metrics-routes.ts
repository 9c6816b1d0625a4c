import type { FastifyInstance, FastifyRequest } from 'fastify';
import { troveTimestamp } from '../../common/index.js';
import { serviceApiStatus } from './instance-status.js';
import { loadTenantInstance } from './tenant-instance.js';
import type { TenantParams, TroveDeps } from './trove-deps.js';

// An instance's engine metrics (Coffer's, beside Trove's API): what its guest last measured
// (src/common/engine-metrics.ts), as the conductor kept it, read from the state database
// without asking the guest. Scoped like every instance route: another project's instance is 404.

type InstanceParams = { Params: TenantParams & { instanceId: string } };

export async function instanceMetricsRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  app.get<InstanceParams>('/instances/:instanceId/metrics', async (request: FastifyRequest<InstanceParams>) => {
    const instance = await loadTenantInstance(deps.store, request, 'instance:metrics');
    const status = await deps.store.serviceStatuses.get(instance.id);
    const sample = status?.engineMetrics;
    const values = sample?.values;
    return {
      metrics: {
        instance_id: instance.id,
        operating_status: status === undefined ? null : serviceApiStatus[status.status],
        up: status?.status === 'HEALTHY',
        measured: sample === undefined ? null : troveTimestamp(sample.measuredAt),
        connections: values?.connections ?? null,
        database_bytes: values?.databaseBytes ?? null,
        operations_total: values?.operations ?? null,
        cache_hit_ratio: values?.cacheHitRatio ?? null,
        replication_lag_seconds: values?.replicationLagSeconds ?? null,
      },
    };
  });
}
