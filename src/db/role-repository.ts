import { CofferError } from '../common/index.js';
import type { RepositoryContext } from './repository-context.js';
import type { RoleRepository, RoleRow } from './state-store.js';

export class SqlRoleRepository implements RoleRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  // Insert-if-absent then read: several roles starting at once all end up with the one row.
  async ensure(name: string, id: string): Promise<RoleRow> {
    await this.ctx.dialect.insertIfAbsent(this.ctx.db.insertInto('roles').values({ id, name }));
    const role = await this.getByName(name);
    if (role === undefined) {
      throw new CofferError('Conflict', `Role id ${id} is already taken by another role than ${name}.`);
    }
    return role;
  }

  async get(id: string): Promise<RoleRow | undefined> {
    return this.ctx.db.selectFrom('roles').select(['id', 'name']).where('id', '=', id).executeTakeFirst();
  }

  async getByName(name: string): Promise<RoleRow | undefined> {
    return this.ctx.db.selectFrom('roles').select(['id', 'name']).where('name', '=', name).executeTakeFirst();
  }

  async list(): Promise<RoleRow[]> {
    return this.ctx.db.selectFrom('roles').select(['id', 'name']).orderBy('name').execute();
  }
}
