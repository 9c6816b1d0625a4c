import type { Selectable } from 'kysely';
import { CofferError } from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import type { RepositoryContext } from './repository-context.js';
import { runReusable } from './reusable-query.js';
import { toDate } from './row-codec.js';
import type { InstanceFaultsTable } from './schema.js';
import type { InstanceFaultRepository, InstanceFaultRow } from './state-store.js';

function toRow(r: Selectable<InstanceFaultsTable>): InstanceFaultRow {
  return { id: r.id, instanceId: r.instance_id, message: r.message, details: r.details, createdAt: toDate(r.created_at) };
}

export class SqlInstanceFaultRepository implements InstanceFaultRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async record(row: InstanceFaultRow): Promise<void> {
    await mapConstraintErrors(
      () =>
        this.ctx.db
          .insertInto('instance_faults')
          .values({
            id: row.id,
            instance_id: row.instanceId,
            message: row.message,
            details: row.details,
            created_at: row.createdAt,
          })
          .execute(),
      {
        unique: (cause) => new CofferError('Conflict', `Fault ${row.id} is already recorded.`, { cause }),
      },
    );
  }

  /** faults recorded in the same millisecond come out by id, the best order left to us */
  async latest(instanceId: string): Promise<InstanceFaultRow | undefined> {
    const r = await this.ctx.db
      .selectFrom('instance_faults')
      .selectAll()
      .where('instance_id', '=', instanceId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r && toRow(r);
  }

  async latestOf(instanceIds: readonly string[]): Promise<Map<string, InstanceFaultRow>> {
    if (instanceIds.length === 0) return new Map();
    // each instance's newest only (a failing instance may have many faults): ranked per
    // instance in the same order as `latest`, which all three engines' window functions do
    const rows = await runReusable(this.ctx, 'instance_faults.latestOf', [instanceIds] as const, ([instanceIds]) => {
      const ranked = this.ctx.db
        .selectFrom('instance_faults')
        .selectAll()
        .select((eb) =>
          eb.fn
            .agg<number>('row_number')
            .over((ob) => ob.partitionBy('instance_id').orderBy('created_at', 'desc').orderBy('id', 'desc'))
            .as('rank'),
        )
        .where('instance_id', 'in', instanceIds);
      return this.ctx.db
        .selectFrom(ranked.as('ranked'))
        .select(['id', 'instance_id', 'message', 'details', 'created_at'])
        .where('rank', '=', 1);
    });
    return new Map(rows.map((r) => [r.instance_id, toRow(r)]));
  }

  async clear(instanceId: string): Promise<void> {
    await this.ctx.db.deleteFrom('instance_faults').where('instance_id', '=', instanceId).execute();
  }
}
