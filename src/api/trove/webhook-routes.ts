import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { CofferError, newUuid, troveTimestamp } from '../../common/index.js';
import { webhookEventTypeNames, type WebhookDeliveryRow, type WebhookRow } from '../../db/index.js';
import { requireAuth } from '../auth-context.js';
import { parseTroveBody } from '../parse-body.js';
import { enforce } from '../policy.js';
import type { TenantParams, TroveDeps } from './trove-deps.js';

// A project's webhooks (Coffer's extension, in Trove's style; issue 12): POST registers a URL
// and answers the signing secret, this once only; GET lists and shows hooks without it; DELETE
// removes a hook and its delivery log; GET …/deliveries is the log. The URL is checked here
// (and again before every attempt, by the taskmanager) against the addresses hooks may reach.
// Another project's hook is 404 for non-admins; admins reach any id through their own path.

type HookParams = { Params: TenantParams & { webhookId: string } };

/** hooks per project: each event costs one delivery per hook */
export const maxWebhooksPerProject = 10;
const deliveriesShown = 100;

const webhookSchema = z.object({
  webhook: z.strictObject({
    url: z.string().min(1).max(2048),
    // printable ASCII: the receiver keeps it in a config file or an environment variable
    secret: z.string().min(16).max(256).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').optional(),
    events: z
      .array(z.enum(webhookEventTypeNames as [string, ...string[]]))
      .min(1)
      .max(webhookEventTypeNames.length)
      .refine((list) => new Set(list).size === list.length, 'must not name a type twice')
      .optional(),
  }),
});

export function webhookView(hook: WebhookRow) {
  return { id: hook.id, url: hook.url, events: hook.events, created: troveTimestamp(hook.createdAt) };
}

export function webhookDeliveryView(d: WebhookDeliveryRow) {
  return {
    id: d.id,
    event_id: d.eventId,
    type: d.eventType,
    instance_id: d.instanceId,
    state: d.state,
    attempts: d.attempts,
    last_status_code: d.lastStatusCode,
    last_error: d.lastError,
    created: troveTimestamp(d.createdAt),
    updated: troveTimestamp(d.updatedAt),
    delivered: d.deliveredAt === null ? null : troveTimestamp(d.deliveredAt),
    next_attempt: d.state === 'pending' ? troveTimestamp(d.nextAttemptAt) : null,
  };
}

async function loadTenantHook(deps: TroveDeps, request: FastifyRequest<HookParams>, action: string): Promise<WebhookRow> {
  const auth = requireAuth(request);
  const { webhookId } = request.params;
  const hook = await deps.store.webhooks.get(webhookId, auth.isAdmin ? {} : { tenantId: auth.projectId });
  if (hook === undefined) throw new CofferError('NotFound', `Webhook ${webhookId} cannot be found.`);
  enforce(auth, action, hook.tenantId);
  return hook;
}

export async function webhookRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;

  app.post<{ Params: TenantParams }>('/webhooks', async (request, reply) => {
    const auth = requireAuth(request);
    enforce(auth, 'webhook:create', auth.projectId);
    const input = parseTroveBody(webhookSchema, request.body).webhook;
    const target = await deps.webhookGuard.resolve(input.url);
    if ((await store.webhooks.list(auth.projectId)).length >= maxWebhooksPerProject) {
      throw new CofferError('OverLimit', `A project has at most ${maxWebhooksPerProject} webhooks: delete one first.`);
    }
    const secret = input.secret ?? randomBytes(32).toString('base64url');
    const hook: WebhookRow = { id: newUuid(), tenantId: auth.projectId, url: target.url.href, secret, events: input.events ?? null, createdAt: new Date() };
    await store.webhooks.create(hook);
    // the one time the secret leaves Coffer: it is never shown again, nor logged
    reply.code(202);
    return { webhook: { ...webhookView(hook), secret } };
  });

  app.get<{ Params: TenantParams }>('/webhooks', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'webhook:index', auth.projectId);
    return { webhooks: (await store.webhooks.list(auth.projectId)).map(webhookView) };
  });

  app.get<HookParams>('/webhooks/:webhookId', async (request) => {
    return { webhook: webhookView(await loadTenantHook(deps, request, 'webhook:show')) };
  });

  app.delete<HookParams>('/webhooks/:webhookId', async (request, reply) => {
    const hook = await loadTenantHook(deps, request, 'webhook:delete');
    await store.webhooks.delete(hook.id);
    reply.code(202).type('application/json').send();
  });

  app.get<HookParams>('/webhooks/:webhookId/deliveries', async (request) => {
    const hook = await loadTenantHook(deps, request, 'webhook:deliveries');
    return { deliveries: (await store.webhooks.deliveries(hook.id, deliveriesShown)).map(webhookDeliveryView) };
  });
}
