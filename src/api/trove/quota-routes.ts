import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CofferError } from '../../common/index.js';
import type { QuotaResource } from '../../db/index.js';
import { requireAdmin } from '../admin-context.js';
import { requireAuth } from '../auth-context.js';
import { parseTroveBody } from '../parse-body.js';
import { isQuotaResource, quotaLimits, quotaResources } from './quota-enforcement.js';
import type { TenantParams, TroveDeps } from './trove-deps.js';

// GET and PUT /mgmt/quotas/{project} (reference 2.14). A member may read its own project's
// quotas; only admins may read another's (403) or change any (401, Trove's admin check).

type QuotaParams = { Params: TenantParams & { projectId: string } };

const quotaUpdateSchema = z.object({
  quotas: z.record(z.string(), z.number().int().min(-1).nullable()),
});

export async function quotaRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;

  app.get<QuotaParams>('/mgmt/quotas/:projectId', async (request) => {
    const auth = requireAuth(request);
    const { projectId } = request.params;
    if (projectId !== auth.projectId && !auth.isAdmin) {
      throw new CofferError('PolicyNotAuthorized', `Operation not allowed for tenant ${auth.projectId}.`);
    }
    const [limits, usage] = await Promise.all([
      quotaLimits(store, projectId, deps.quotaDefaults),
      store.quotas.usage(projectId),
    ]);
    return {
      quotas: quotaResources.map((resource) => ({
        resource,
        in_use: usage[resource],
        // Coffer reserves nothing: a check and the write it allows share one transaction.
        reserved: 0,
        limit: limits[resource],
      })),
    };
  });

  app.put<QuotaParams>('/mgmt/quotas/:projectId', async (request) => {
    requireAdmin(requireAuth(request));
    const { projectId } = request.params;
    const body = parseTroveBody(quotaUpdateSchema, request.body);
    const updates: [QuotaResource, number][] = [];
    for (const [resource, limit] of Object.entries(body.quotas)) {
      if (limit === null) continue;
      if (!isQuotaResource(resource)) throw new CofferError('NotFound', `Unknown quota resources ${resource}.`);
      updates.push([resource, limit]);
    }
    // Every name is checked before anything is written (Trove writes as it goes).
    await store.transaction(async (tx) => {
      for (const [resource, hardLimit] of updates) await tx.quotas.set({ tenantId: projectId, resource, hardLimit });
    });
    return { quotas: Object.fromEntries(updates) };
  });
}
