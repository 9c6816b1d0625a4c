import type { Selectable } from 'kysely';
import type { RepositoryContext } from './repository-context.js';
import type { FlavorsTable } from './schema.js';
import type { FlavorRepository, FlavorRow } from './state-store.js';

function toRow(r: Selectable<FlavorsTable>): FlavorRow {
  return {
    id: r.id,
    name: r.name,
    ramMb: r.ram_mb,
    vcpus: r.vcpus,
    diskGb: r.disk_gb,
    ephemeralGb: r.ephemeral_gb,
  };
}

export class SqlFlavorRepository implements FlavorRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async upsert(row: FlavorRow): Promise<void> {
    const fields = {
      name: row.name,
      ram_mb: row.ramMb,
      vcpus: row.vcpus,
      disk_gb: row.diskGb,
      ephemeral_gb: row.ephemeralGb,
    };
    await this.ctx.dialect.upsert(this.ctx.db.insertInto('flavors').values({ id: row.id, ...fields }), ['id'], fields);
  }

  async get(id: string): Promise<FlavorRow | undefined> {
    const r = await this.ctx.db.selectFrom('flavors').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toRow(r);
  }

  async list(): Promise<FlavorRow[]> {
    const rows = await this.ctx.db.selectFrom('flavors').selectAll().orderBy('ram_mb').orderBy('id').execute();
    return rows.map(toRow);
  }
}
