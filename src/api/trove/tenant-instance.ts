import type { FastifyRequest } from 'fastify';
import { errors } from '../../common/index.js';
import type { InstanceRow, StateStore } from '../../db/index.js';
import { requireAuth } from '../auth-context.js';
import { enforce } from '../policy.js';
import type { TenantParams } from './trove-deps.js';

/**
 * The instance a tenant's request names, then the policy for `action` on its project. Another
 * project's instance is 404 for non-admins; admins reach any id through their own tenant path.
 */
export async function loadTenantInstance(
  store: StateStore,
  request: FastifyRequest<{ Params: TenantParams & { instanceId: string } }>,
  action: string,
): Promise<InstanceRow> {
  const auth = requireAuth(request);
  const { instanceId } = request.params;
  const instance = await store.instances.get(instanceId, auth.isAdmin ? {} : { tenantId: auth.projectId });
  if (instance === undefined) throw errors.notFound(instanceId);
  enforce(auth, action, instance.tenantId);
  return instance;
}
