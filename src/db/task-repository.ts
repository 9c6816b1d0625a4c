import type { ExpressionBuilder, Selectable } from 'kysely';
import { CofferError } from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import type { RepositoryContext } from './repository-context.js';
import { runReusable } from './reusable-query.js';
import { fromJson, toDate, toJson, toNullableDate } from './row-codec.js';
import type { Database, TasksTable } from './schema.js';
import type { TaskKind, TaskProgress, TaskRepository, TaskRow, TaskState } from './state-store.js';

function toRow(r: Selectable<TasksTable>): TaskRow {
  return {
    id: r.id,
    instanceId: r.instance_id,
    kind: r.kind as TaskKind,
    step: r.step,
    state: r.state as TaskState,
    owner: r.owner,
    leaseExpiresAt: toNullableDate(r.lease_expires_at),
    payload: fromJson(r.payload),
    attempts: r.attempts,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
    progress:
      r.progress_step === null || r.progress_percent === null || r.progress_updated_at === null
        ? null
        : { step: r.progress_step, percent: r.progress_percent, updatedAt: toDate(r.progress_updated_at) },
  };
}

/** pending, or running under a lease that has run out (its worker died) */
function claimable(now: Date) {
  return (eb: ExpressionBuilder<Database, 'tasks'>) =>
    eb.or([
      eb('state', '=', 'pending'),
      eb.and([eb('state', '=', 'running'), eb('lease_expires_at', '<=', now)]),
    ]);
}

export class SqlTaskRepository implements TaskRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(row: TaskRow): Promise<void> {
    await mapConstraintErrors(
      () =>
        this.ctx.db
          .insertInto('tasks')
          .values({
            id: row.id,
            instance_id: row.instanceId,
            kind: row.kind,
            step: row.step,
            state: row.state,
            owner: row.owner,
            lease_expires_at: row.leaseExpiresAt,
            payload: toJson(row.payload),
            attempts: row.attempts,
            created_at: row.createdAt,
            updated_at: row.updatedAt,
          })
          .execute(),
      {
        unique: (cause) => new CofferError('Conflict', `Task ${row.id} already exists.`, { cause }),
      },
    );
  }

  async get(id: string): Promise<TaskRow | undefined> {
    const r = await this.ctx.db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toRow(r);
  }

  // One conditional UPDATE decides the race: every engine re-checks the WHERE clause against
  // the row as the winner left it, so exactly one of several concurrent claims changes it.
  async claim(id: string, owner: string, leaseMs: number, now: Date): Promise<TaskRow | undefined> {
    const result = await this.ctx.db
      .updateTable('tasks')
      .set((eb) => ({
        state: 'running',
        owner,
        lease_expires_at: new Date(now.getTime() + leaseMs),
        attempts: eb('attempts', '+', 1),
        updated_at: now,
      }))
      .where('id', '=', id)
      .where(claimable(now))
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) return undefined;
    const row = await this.get(id);
    // A lease shorter than the round trip could already have passed to someone else.
    return row?.owner === owner ? row : undefined;
  }

  async listClaimable(now: Date, limit: number): Promise<TaskRow[]> {
    const rows = await this.ctx.db
      .selectFrom('tasks')
      .selectAll()
      .where(claimable(now))
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toRow);
  }

  async renewLease(id: string, owner: string, leaseMs: number, now: Date): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('tasks')
      .set({ lease_expires_at: new Date(now.getTime() + leaseMs), updated_at: now })
      .where('id', '=', id)
      .where('owner', '=', owner)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async recordStep(id: string, owner: string, step: string, payload?: unknown): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('tasks')
      .set({ step, updated_at: new Date(), ...(payload !== undefined && { payload: toJson(payload) }) })
      .where('id', '=', id)
      .where('owner', '=', owner)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async finish(id: string, owner: string, state: 'done' | 'failed'): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('tasks')
      .set({
        state,
        owner: null,
        lease_expires_at: null,
        payload: null,
        updated_at: new Date(),
        progress_step: null,
        progress_percent: null,
        progress_updated_at: null,
      })
      .where('id', '=', id)
      .where('owner', '=', owner)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  // The task's `updated_at` is left alone: it says when the taskmanager last moved the task.
  async recordProgress(instanceId: string, progress: TaskProgress): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('tasks')
      .set({ progress_step: progress.step, progress_percent: progress.percent, progress_updated_at: progress.updatedAt })
      .where('instance_id', '=', instanceId)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async activeForInstance(instanceId: string): Promise<TaskRow | undefined> {
    const r = await this.ctx.db
      .selectFrom('tasks')
      .selectAll()
      .where('instance_id', '=', instanceId)
      .where('state', 'in', ['pending', 'running'])
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r && toRow(r);
  }

  async activeForInstances(instanceIds: readonly string[]): Promise<Map<string, TaskRow>> {
    if (instanceIds.length === 0) return new Map();
    // an instance has at most a few unfinished tasks: the newest of each is picked here, in
    // the order `activeForInstance` uses
    const rows = await runReusable(this.ctx, 'tasks.activeForInstances', [instanceIds] as const, ([instanceIds]) =>
      this.ctx.db
        .selectFrom('tasks')
        .selectAll()
        .where('instance_id', 'in', instanceIds)
        .where('state', 'in', ['pending', 'running'])
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc'),
    );
    const active = new Map<string, TaskRow>();
    for (const r of rows) {
      if (!active.has(r.instance_id)) active.set(r.instance_id, toRow(r));
    }
    return active;
  }
}
