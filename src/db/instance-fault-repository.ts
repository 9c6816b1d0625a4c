import { CofferError } from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import type { RepositoryContext } from './repository-context.js';
import { toDate } from './row-codec.js';
import type { InstanceFaultRepository, InstanceFaultRow } from './state-store.js';

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
    return (
      r && {
        id: r.id,
        instanceId: r.instance_id,
        message: r.message,
        details: r.details,
        createdAt: toDate(r.created_at),
      }
    );
  }

  async clear(instanceId: string): Promise<void> {
    await this.ctx.db.deleteFrom('instance_faults').where('instance_id', '=', instanceId).execute();
  }
}
