import type { FastifyInstance } from 'fastify';
import { CofferError, newPassword } from '../../common/index.js';
import { requireAuth } from '../auth-context.js';
import { parseTroveBody } from '../parse-body.js';
import { checkPasswordPolicy } from '../password-policy.js';
import { validatePassword } from './database-user-rules.js';
import { enableRootSchema } from './database-user-schemas.js';
import { loadGuestTarget, type InstanceParams } from './guest-target.js';
import type { TroveDeps } from './trove-deps.js';

// The engine's root user (reference 2.5). Whether root was ever enabled is answered from the
// root_enabled_history table, not the guest: it stays true after root is disabled again.

type Params = { Params: InstanceParams };

export async function rootRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const root = (request: Parameters<typeof loadGuestTarget>[1], action: string) =>
    loadGuestTarget(deps, request, `instance:extension:root:${action}`, (c) => c.root);

  app.get<Params>('/instances/:instanceId/root', async (request) => {
    const target = await root(request, 'index');
    return { rootEnabled: (await deps.store.rootHistory.get(target.instance.id)) !== undefined };
  });

  app.post<Params>('/instances/:instanceId/root', async (request) => {
    const body = parseTroveBody(enableRootSchema, request.body);
    const target = await root(request, 'create');
    const password =
      body?.password === undefined
        ? newPassword()
        : checkPasswordPolicy(validatePassword(body.password, 'root'), deps.passwordPolicy, 'root');
    const { name } = await target.guest.enableRoot({ password }, target.context);
    await deps.store.rootHistory.record({ instanceId: target.instance.id, userId: requireAuth(request).userId, createdAt: new Date() });
    return { user: { name, password } };
  });

  app.delete<Params>('/instances/:instanceId/root', async (request, reply) => {
    const target = await root(request, 'delete');
    if ((await deps.store.rootHistory.get(target.instance.id)) === undefined) {
      throw new CofferError('RootHistoryNotFound', 'Root user has never been enabled on the instance.');
    }
    await target.guest.disableRoot({}, target.context);
    reply.code(204).type('application/json').send();
  });
}
