import { CofferError } from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import type { RepositoryContext } from './repository-context.js';
import type { RoleAssignmentRepository, RoleAssignmentRow, RoleRow } from './state-store.js';

export class SqlRoleAssignmentRepository implements RoleAssignmentRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async grant(row: RoleAssignmentRow): Promise<void> {
    await mapConstraintErrors(
      () =>
        this.ctx.dialect.insertIfAbsent(
          this.ctx.db
            .insertInto('role_assignments')
            .values({ user_id: row.userId, project_id: row.projectId, role_id: row.roleId }),
        ),
      {
        foreignKey: (cause) =>
          new CofferError(
            'NotFound',
            `Cannot grant role ${row.roleId} to user ${row.userId} on project ${row.projectId}: one of them does not exist.`,
            { cause },
          ),
      },
    );
  }

  async revoke(row: RoleAssignmentRow): Promise<void> {
    await this.ctx.db
      .deleteFrom('role_assignments')
      .where('user_id', '=', row.userId)
      .where('project_id', '=', row.projectId)
      .where('role_id', '=', row.roleId)
      .execute();
  }

  async rolesOf(userId: string, projectId: string): Promise<RoleRow[]> {
    return this.ctx.db
      .selectFrom('role_assignments')
      .innerJoin('roles', 'roles.id', 'role_assignments.role_id')
      .select(['roles.id', 'roles.name'])
      .where('role_assignments.user_id', '=', userId)
      .where('role_assignments.project_id', '=', projectId)
      .orderBy('roles.name')
      .execute();
  }

  async list(filter: { userId?: string; projectId?: string; roleId?: string } = {}): Promise<RoleAssignmentRow[]> {
    let query = this.ctx.db
      .selectFrom('role_assignments')
      .select(['user_id as userId', 'project_id as projectId', 'role_id as roleId']);
    if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
    if (filter.projectId !== undefined) query = query.where('project_id', '=', filter.projectId);
    if (filter.roleId !== undefined) query = query.where('role_id', '=', filter.roleId);
    return query.orderBy('user_id').orderBy('project_id').orderBy('role_id').execute();
  }
}
