import type { Selectable } from 'kysely';
import { CofferError } from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import type { RepositoryContext } from './repository-context.js';
import { runReusable } from './reusable-query.js';
import { toBool, toDate } from './row-codec.js';
import type { BackupsTable } from './schema.js';
import {
  runningBackupStates,
  type BackupPatch,
  type BackupRepository,
  type BackupRow,
  type BackupState,
  type NewBackup,
} from './state-store.js';

const toNumber = (value: number | string | null): number | null => (value === null ? null : Number(value));

function toRow(r: Selectable<BackupsTable>): BackupRow {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    name: r.name,
    description: r.description,
    instanceId: r.instance_id,
    parentId: r.parent_id,
    datastoreVersionId: r.datastore_version_id,
    backupType: r.backup_type === 'incremental' ? 'incremental' : 'full',
    state: r.state as BackupState,
    container: r.container,
    objectName: r.object_name,
    sizeBytes: toNumber(r.size_bytes),
    dataBytes: toNumber(r.data_bytes),
    sha256: r.sha256,
    facts: r.facts === null ? null : (JSON.parse(r.facts) as Record<string, string>),
    failReason: r.fail_reason,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
    deleted: toBool(r.deleted),
    scheduleId: r.schedule_id,
  };
}

function columnsOf(patch: BackupPatch) {
  return {
    ...(patch.state !== undefined && { state: patch.state }),
    ...(patch.sizeBytes !== undefined && { size_bytes: patch.sizeBytes }),
    ...(patch.dataBytes !== undefined && { data_bytes: patch.dataBytes }),
    ...(patch.sha256 !== undefined && { sha256: patch.sha256 }),
    ...(patch.facts !== undefined && { facts: patch.facts === null ? null : JSON.stringify(patch.facts) }),
    ...(patch.failReason !== undefined && { fail_reason: patch.failReason }),
    updated_at: new Date(),
  };
}

export class SqlBackupRepository implements BackupRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(row: NewBackup): Promise<void> {
    await mapConstraintErrors(
      () =>
        this.ctx.db
          .insertInto('backups')
          .values({
            id: row.id,
            tenant_id: row.tenantId,
            name: row.name,
            description: row.description,
            instance_id: row.instanceId,
            parent_id: row.parentId,
            datastore_version_id: row.datastoreVersionId,
            backup_type: row.backupType,
            state: row.state,
            container: row.container,
            object_name: row.objectName,
            size_bytes: null,
            data_bytes: null,
            sha256: null,
            facts: null,
            fail_reason: null,
            created_at: row.createdAt,
            updated_at: row.updatedAt,
            deleted: false,
            deleted_at: null,
            schedule_id: row.scheduleId ?? null,
          })
          .execute(),
      { unique: (cause) => new CofferError('Conflict', `Backup ${row.id} already exists.`, { cause }) },
    );
  }

  async get(id: string, scope: { tenantId?: string } = {}): Promise<BackupRow | undefined> {
    let query = this.ctx.db.selectFrom('backups').selectAll().where('id', '=', id).where('deleted', '=', false);
    if (scope.tenantId !== undefined) query = query.where('tenant_id', '=', scope.tenantId);
    const r = await query.executeTakeFirst();
    return r && toRow(r);
  }

  async list(filter: {
    tenantId?: string;
    instanceId?: string;
    datastoreVersionIds?: string[];
    limit: number;
    offset: number;
  }): Promise<BackupRow[]> {
    let query = this.ctx.db.selectFrom('backups').selectAll().where('deleted', '=', false);
    if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
    if (filter.instanceId !== undefined) query = query.where('instance_id', '=', filter.instanceId);
    if (filter.datastoreVersionIds !== undefined) {
      if (filter.datastoreVersionIds.length === 0) return [];
      query = query.where('datastore_version_id', 'in', filter.datastoreVersionIds);
    }
    const rows = await query.orderBy('updated_at', 'desc').orderBy('id').limit(filter.limit).offset(filter.offset).execute();
    return rows.map(toRow);
  }

  async update(id: string, patch: BackupPatch): Promise<void> {
    await this.ctx.db.updateTable('backups').set(columnsOf(patch)).where('id', '=', id).execute();
  }

  async updateIfState(id: string, from: readonly BackupState[], patch: BackupPatch): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('backups')
      .set(columnsOf(patch))
      .where('id', '=', id)
      .where('deleted', '=', false)
      .where('state', 'in', [...from])
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async markDeleted(id: string, now: Date): Promise<void> {
    await this.ctx.db
      .updateTable('backups')
      .set({ deleted: true, deleted_at: now, updated_at: now })
      .where('id', '=', id)
      .where('deleted', '=', false)
      .execute();
  }

  async children(id: string): Promise<BackupRow[]> {
    const rows = await this.ctx.db
      .selectFrom('backups')
      .selectAll()
      .where('parent_id', '=', id)
      .where('deleted', '=', false)
      .orderBy('created_at')
      .execute();
    return rows.map(toRow);
  }

  async latestCompleted(instanceId: string): Promise<BackupRow | undefined> {
    const r = await this.ctx.db
      .selectFrom('backups')
      .selectAll()
      .where('instance_id', '=', instanceId)
      .where('deleted', '=', false)
      .where('state', '=', 'COMPLETED')
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst();
    return r && toRow(r);
  }

  async running(instanceId: string): Promise<BackupRow[]> {
    const rows = await this.ctx.db
      .selectFrom('backups')
      .selectAll()
      .where('instance_id', '=', instanceId)
      .where('deleted', '=', false)
      .where('state', 'in', [...runningBackupStates])
      .execute();
    return rows.map(toRow);
  }

  async completedFullOf(instanceIds: readonly string[]): Promise<BackupRow[]> {
    if (instanceIds.length === 0) return [];
    const rows = await runReusable(this.ctx, 'backups.completedFullOf', [instanceIds] as const, ([instanceIds]) =>
      this.ctx.db
        .selectFrom('backups')
        .selectAll()
        .where('instance_id', 'in', instanceIds)
        .where('deleted', '=', false)
        .where('state', '=', 'COMPLETED')
        .where('backup_type', '=', 'full'),
    );
    return rows.map(toRow);
  }

  async instancesWithRunning(instanceIds: readonly string[]): Promise<Set<string>> {
    if (instanceIds.length === 0) return new Set();
    const rows = await runReusable(this.ctx, 'backups.instancesWithRunning', [instanceIds] as const, ([instanceIds]) =>
      this.ctx.db
        .selectFrom('backups')
        .select('instance_id')
        .distinct()
        .where('instance_id', 'in', instanceIds)
        .where('deleted', '=', false)
        .where('state', 'in', [...runningBackupStates]),
    );
    return new Set(rows.map((r) => r.instance_id));
  }

  async countLive(tenantId: string): Promise<number> {
    const r = await this.ctx.db
      .selectFrom('backups')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('tenant_id', '=', tenantId)
      .where('deleted', '=', false)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async listScheduled(filter: { scheduleId?: string } = {}): Promise<BackupRow[]> {
    let query = this.ctx.db.selectFrom('backups').selectAll().where('deleted', '=', false);
    query = filter.scheduleId === undefined ? query.where('schedule_id', 'is not', null) : query.where('schedule_id', '=', filter.scheduleId);
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
    return rows.map(toRow);
  }

  async containers(): Promise<string[]> {
    const rows = await this.ctx.db.selectFrom('backups').select('container').distinct().execute();
    return rows.map((r) => r.container);
  }

  async byObjectNames(container: string, objectNames: readonly string[]): Promise<BackupRow[]> {
    const rows: BackupRow[] = [];
    // in slices: an IN list of thousands is past what some drivers bind in one statement
    for (let i = 0; i < objectNames.length; i += 500) {
      const slice = objectNames.slice(i, i + 500);
      const found = await this.ctx.db.selectFrom('backups').selectAll().where('container', '=', container).where('object_name', 'in', slice).execute();
      rows.push(...found.map(toRow));
    }
    return rows;
  }
}
