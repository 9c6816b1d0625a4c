import { randomBytes } from 'node:crypto';
import { CofferError } from '../common/index.js';
import type { RepositoryContext } from './repository-context.js';
import { toDate } from './row-codec.js';
import { enqueueWebhookDeliveries } from './webhook-repository.js';
import type { InstanceEventRepository, InstanceEventRow, InstanceEventType } from './state-store.js';

/**
 * How many events an instance keeps: an instance that crashes and restarts in a loop records two
 * a minute, and its history must not grow without bound.
 */
export const instanceEventsKept = 500;

let sequence = 0;

/**
 * Event ids sort as the events were recorded within a process: the time, a counter, then
 * randomness. Events of the same millisecond come out by id, so the counter keeps one process's
 * events of a millisecond (a task ending and its status beat) in the order they happened.
 */
function eventId(createdAt: Date): string {
  sequence = (sequence + 1) % 0x1000000;
  const time = createdAt.getTime().toString(16).padStart(12, '0');
  return `${time}-${sequence.toString(16).padStart(6, '0')}-${randomBytes(8).toString('hex')}`;
}

export class SqlInstanceEventRepository implements InstanceEventRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async record(row: Omit<InstanceEventRow, 'id'>): Promise<void> {
    const id = eventId(row.createdAt);
    await this.ctx.db
      .insertInto('instance_events')
      .values({
        id,
        instance_id: row.instanceId,
        type: row.type,
        name: row.name,
        message: row.message,
        created_at: row.createdAt,
      })
      .execute();
    await enqueueWebhookDeliveries(this.ctx, { ...row, id });
    const oldestKept = await this.ctx.db
      .selectFrom('instance_events')
      .select('created_at')
      .where('instance_id', '=', row.instanceId)
      .orderBy('created_at', 'desc')
      .offset(instanceEventsKept - 1)
      .limit(1)
      .executeTakeFirst();
    if (oldestKept !== undefined) {
      await this.ctx.db
        .deleteFrom('instance_events')
        .where('instance_id', '=', row.instanceId)
        .where('created_at', '<', oldestKept.created_at)
        .execute();
    }
  }

  async list(instanceId: string, page: { limit: number; after?: string }): Promise<InstanceEventRow[]> {
    let query = this.ctx.db.selectFrom('instance_events').selectAll().where('instance_id', '=', instanceId);
    const marker =
      page.after === undefined
        ? undefined
        : await this.ctx.db.selectFrom('instance_events').select(['id', 'created_at']).where('instance_id', '=', instanceId).where('id', '=', page.after).executeTakeFirst();
    if (page.after !== undefined && marker === undefined) throw new CofferError('BadRequest', `Invalid marker: ${page.after}.`);
    if (marker !== undefined) {
      query = query.where((eb) =>
        eb.or([eb('created_at', '<', marker.created_at), eb.and([eb('created_at', '=', marker.created_at), eb('id', '<', marker.id)])]),
      );
    }
    // events of the same millisecond come out by id, the best order left to us
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(page.limit).execute();
    return rows.map((r) => ({
      id: r.id,
      instanceId: r.instance_id,
      type: r.type as InstanceEventType,
      name: r.name,
      message: r.message,
      createdAt: toDate(r.created_at),
    }));
  }
}
