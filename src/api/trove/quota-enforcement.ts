import { CofferError } from '../../common/index.js';
import type { QuotaResource, Repositories } from '../../db/index.js';

// Trove's quotas (reference 7.1): a hard limit per project and resource, -1 for unlimited, from
// the project's own row or else the configured default. What a project uses is counted from its
// live instances at check time, not kept in a usage table that could drift.

/** In Trove's order (GET /mgmt/quotas lists them so). */
export const quotaResources: readonly QuotaResource[] = ['instances', 'ram', 'backups', 'volumes'];

export type QuotaLimits = Readonly<Record<QuotaResource, number>>;

/** Trove's defaults: max_instances_per_tenant, max_ram_per_tenant, max_backups_per_tenant, max_volumes_per_tenant. */
export const troveDefaultQuotas: QuotaLimits = Object.freeze({ instances: 10, ram: -1, backups: 50, volumes: 40 });

export const unlimitedQuotas: QuotaLimits = Object.freeze({ instances: -1, ram: -1, backups: -1, volumes: -1 });

export function isQuotaResource(name: string): name is QuotaResource {
  return (quotaResources as readonly string[]).includes(name);
}

/** The project's hard limits: its own rows over the configured defaults. */
export async function quotaLimits(repos: Repositories, tenantId: string, defaults: QuotaLimits): Promise<QuotaLimits> {
  const limits: Record<QuotaResource, number> = { ...defaults };
  for (const row of await repos.quotas.list(tenantId)) limits[row.resource] = row.hardLimit;
  return limits;
}

const units: Readonly<Record<QuotaResource, string>> = { instances: '', ram: ' MB', backups: '', volumes: ' GB' };

interface Overrun {
  resource: QuotaResource;
  limit: number;
  used: number;
  adds: number;
}

function quotaExceeded(tenantId: string, over: readonly Overrun[]): CofferError {
  // Trove prints the Python list of the sorted resource names; what follows is Coffer's.
  const sorted = [...over].sort((a, b) => a.resource.localeCompare(b.resource));
  const list = sorted.map((o) => `'${o.resource}'`).join(', ');
  const details = sorted
    .map(({ resource, limit, used, adds }) => {
      const unit = units[resource];
      return `${resource}: limit ${limit}${unit}, in use ${used}${unit}, this request adds ${adds}${unit}`;
    })
    .join('; ');
  const [first] = sorted;
  return new CofferError(
    'QuotaExceeded',
    `Quota exceeded for resources: [${list}]. ${details}. ` +
      `An admin can raise the project's limit: \`openstack database quota update ${tenantId} ${first?.resource ?? 'instances'} <limit>\` ` +
      `(PUT /v1.0/<project>/mgmt/quotas/${tenantId}), or the default for every project (--max-*-per-tenant).`,
  );
}

/**
 * Checks that `deltas` fit the project's quotas, for the write that follows in the same
 * transaction. Call it inside `store.transaction` with the transaction's repositories, and write
 * the rows the deltas stand for (the instance insert, the instance's new volumeSizeGb …) in that
 * transaction after it: it takes the project's quota lock, so two requests of one project check
 * and write one after the other on every state database, and neither counts without the other's
 * write. Usage is counted from the instance rows, so a change the rows do not show yet (a size
 * only a task will write later) is invisible to the next check. Only positive deltas are checked
 * (as Trove): shrinking never fails. Throws QuotaExceeded (413) naming every resource over.
 *
 * A resize-volume, say, passes `{ volumes: newSize - current.volumeSizeGb }` for the instance's
 * project and sets the instance's volumeSizeGb to newSize in the same transaction.
 */
export async function enforceQuota(
  tx: Repositories,
  tenantId: string,
  defaults: QuotaLimits,
  deltas: Partial<Record<QuotaResource, number>>,
): Promise<void> {
  const increases = quotaResources.filter((r) => (deltas[r] ?? 0) > 0);
  if (increases.length === 0) return;
  await tx.quotas.lockTenant(tenantId, new Date());
  const limits = await quotaLimits(tx, tenantId, defaults);
  const checked = increases.filter((r) => limits[r] >= 0);
  if (checked.length === 0) return;
  const usage = await tx.quotas.usage(tenantId);
  const over = checked
    .map((resource) => ({ resource, limit: limits[resource], used: usage[resource], adds: deltas[resource] ?? 0 }))
    .filter(({ limit, used, adds }) => used + adds > limit);
  if (over.length > 0) throw quotaExceeded(tenantId, over);
}
