import { CofferError } from '../common/index.js';
import type { AuthContext } from './auth-context.js';

// Trove's policy defaults (reference 8.3), for the actions the API serves, and Nova's for the compute view. `any` is the empty
// rule (anyone authenticated); `admin_or_owner` passes for admins and for the project that owns
// the target. Actions not listed fall back to Trove's `default` rule, admin_or_owner.

type Rule = 'any' | 'admin' | 'admin_or_owner';

const rules: Readonly<Record<string, Rule>> = {
  'flavor:index': 'any',
  'flavor:show': 'any',
  'datastore:index': 'any',
  'datastore:show': 'any',
  'datastore:version_index': 'any',
  'datastore:version_show': 'any',
  'datastore:version_show_by_uuid': 'any',
  'datastore:delete': 'admin',
  'instance:reset_status': 'admin',
  // Nova's defaults for the compute view (src/api/compute): flavors for anyone, every project's
  // servers for admins only
  'os_compute_api:flavors': 'any',
  'os_compute_api:servers:index:get_all_tenants': 'admin',
  'os_compute_api:servers:detail:get_all_tenants': 'admin',
};

/** Throws PolicyNotAuthorized (403) when `auth` may not perform `action` on `targetTenant`'s object. */
export function enforce(auth: AuthContext, action: string, targetTenant: string): void {
  const rule = rules[action] ?? 'admin_or_owner';
  const allowed =
    rule === 'any' || auth.isAdmin || (rule === 'admin_or_owner' && auth.projectId === targetTenant);
  if (!allowed) {
    throw new CofferError('PolicyNotAuthorized', `Policy doesn't allow ${action} to be performed.`);
  }
}
