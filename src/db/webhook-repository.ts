import type { Selectable } from 'kysely';
import { newUuid } from '../common/index.js';
import type { RepositoryContext } from './repository-context.js';
import { fromJson, toBool, toDate, toNullableDate } from './row-codec.js';
import type { WebhookDeliveriesTable, WebhooksTable } from './schema.js';
import type {
  DueWebhookDelivery,
  InstanceEventRow,
  WebhookAttemptOutcome,
  WebhookDeliveryRow,
  WebhookDeliveryState,
  WebhookRepository,
  WebhookRow,
} from './state-store.js';
import { webhookEventTypes } from './webhook-event-types.js';

/** How many deliveries a webhook's log keeps: a busy project's log must not grow without bound. */
export const webhookDeliveriesKept = 1000;

function toWebhook(r: Selectable<WebhooksTable>): WebhookRow {
  return { id: r.id, tenantId: r.tenant_id, url: r.url, secret: r.secret, events: fromJson<string[]>(r.events), createdAt: toDate(r.created_at) };
}

function toDelivery(r: Selectable<WebhookDeliveriesTable>): WebhookDeliveryRow {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    eventId: r.event_id,
    eventType: r.event_type,
    instanceId: r.instance_id,
    instanceName: r.instance_name,
    eventName: r.event_name,
    message: r.message,
    eventTime: toDate(r.event_time),
    state: r.state as WebhookDeliveryState,
    attempts: Number(r.attempts),
    nextAttemptAt: toDate(r.next_attempt_at),
    lastStatusCode: r.last_status_code === null ? null : Number(r.last_status_code),
    lastError: r.last_error,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
    deliveredAt: toNullableDate(r.delivered_at),
  };
}

/**
 * Gives each webhook of the instance's project that takes the event's type a pending delivery,
 * due now. Called as the event is recorded, so a hook gets exactly the events recorded while it
 * exists, whichever process recorded them.
 */
export async function enqueueWebhookDeliveries(ctx: RepositoryContext, event: InstanceEventRow): Promise<void> {
  const instance = await ctx.db.selectFrom('instances').select(['tenant_id', 'name', 'internal']).where('id', '=', event.instanceId).executeTakeFirst();
  // Coffer's internal instances (a verification's scratch copy) are not the project's to hear of
  if (instance === undefined || toBool(instance.internal)) return;
  const type = webhookEventTypes[event.type];
  const hooks = (await ctx.db.selectFrom('webhooks').selectAll().where('tenant_id', '=', instance.tenant_id).execute())
    .map(toWebhook)
    .filter((hook) => hook.events === null || hook.events.includes(type));
  if (hooks.length === 0) return;
  const now = new Date();
  await ctx.db
    .insertInto('webhook_deliveries')
    .values(
      hooks.map((hook) => ({
        id: newUuid(),
        webhook_id: hook.id,
        event_id: event.id,
        event_type: type,
        instance_id: event.instanceId,
        instance_name: instance.name,
        event_name: event.name,
        message: event.message,
        event_time: event.createdAt,
        state: 'pending',
        attempts: 0,
        next_attempt_at: now,
        lease_owner: null,
        lease_until: null,
        last_status_code: null,
        last_error: null,
        created_at: now,
        updated_at: now,
        delivered_at: null,
      })),
    )
    .execute();
  for (const hook of hooks) await pruneDeliveries(ctx, hook.id);
}

async function pruneDeliveries(ctx: RepositoryContext, webhookId: string): Promise<void> {
  const oldestKept = await ctx.db
    .selectFrom('webhook_deliveries')
    .select('created_at')
    .where('webhook_id', '=', webhookId)
    .orderBy('created_at', 'desc')
    .offset(webhookDeliveriesKept - 1)
    .limit(1)
    .executeTakeFirst();
  if (oldestKept === undefined) return;
  await ctx.db.deleteFrom('webhook_deliveries').where('webhook_id', '=', webhookId).where('created_at', '<', oldestKept.created_at).execute();
}

export class SqlWebhookRepository implements WebhookRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(row: WebhookRow): Promise<void> {
    await this.ctx.db
      .insertInto('webhooks')
      .values({ id: row.id, tenant_id: row.tenantId, url: row.url, secret: row.secret, events: row.events === null ? null : JSON.stringify(row.events), created_at: row.createdAt })
      .execute();
  }

  async get(id: string, scope: { tenantId?: string } = {}): Promise<WebhookRow | undefined> {
    let query = this.ctx.db.selectFrom('webhooks').selectAll().where('id', '=', id);
    if (scope.tenantId !== undefined) query = query.where('tenant_id', '=', scope.tenantId);
    const r = await query.executeTakeFirst();
    return r && toWebhook(r);
  }

  async list(tenantId: string): Promise<WebhookRow[]> {
    const rows = await this.ctx.db.selectFrom('webhooks').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at').orderBy('id').execute();
    return rows.map(toWebhook);
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.ctx.db.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst();
    await this.ctx.db.deleteFrom('webhook_deliveries').where('webhook_id', '=', id).execute();
    return result.numDeletedRows > 0n;
  }

  async deliveries(webhookId: string, limit: number): Promise<WebhookDeliveryRow[]> {
    const rows = await this.ctx.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('webhook_id', '=', webhookId)
      .orderBy('created_at', 'desc')
      .orderBy('event_id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toDelivery);
  }

  async listDue(now: Date, limit: number): Promise<DueWebhookDelivery[]> {
    const rows = await this.ctx.db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
      .selectAll('d')
      .select(['w.tenant_id as hook_tenant_id', 'w.url as hook_url', 'w.secret as hook_secret'])
      .where('d.state', '=', 'pending')
      .where('d.next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('d.lease_until', 'is', null), eb('d.lease_until', '<', now)]))
      .orderBy('d.next_attempt_at')
      .orderBy('d.event_id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ ...toDelivery(r), tenantId: r.hook_tenant_id, url: r.hook_url, secret: r.hook_secret }));
  }

  // As a task claim: every engine re-checks the WHERE clause against the row as the winner left
  // it, so of several taskmanagers that read the same due delivery, one takes it.
  async claim(id: string, owner: string, leaseMs: number, now: Date): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('webhook_deliveries')
      .set({ lease_owner: owner, lease_until: new Date(now.getTime() + leaseMs) })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async recordAttempt(id: string, owner: string, outcome: WebhookAttemptOutcome, now: Date): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('webhook_deliveries')
      .set((eb) => ({
        state: outcome.state,
        attempts: eb('attempts', '+', 1),
        next_attempt_at: outcome.nextAttemptAt,
        last_status_code: outcome.statusCode,
        last_error: outcome.error,
        lease_owner: null,
        lease_until: null,
        updated_at: now,
        delivered_at: outcome.state === 'delivered' ? now : null,
      }))
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}
