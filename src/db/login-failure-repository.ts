import { sql } from 'kysely';
import type { RepositoryContext } from './repository-context.js';
import { toDate } from './row-codec.js';
import type { LoginFailureRepository, LoginFailureRow } from './state-store.js';

export class SqlLoginFailureRepository implements LoginFailureRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async get(subject: string): Promise<LoginFailureRow | undefined> {
    const r = await this.ctx.db.selectFrom('login_failures').selectAll().where('subject', '=', subject).executeTakeFirst();
    return r && { subject: r.subject, failures: Number(r.failures), lastFailureAt: toDate(r.last_failure_at) };
  }

  async recordFailure(subject: string, now: Date, restartBefore: Date): Promise<LoginFailureRow> {
    await this.ctx.dialect.insertIfAbsent(
      this.ctx.db.insertInto('login_failures').values({ subject, failures: 0, last_failure_at: now }),
    );
    // One UPDATE that reads and writes the count, so two API processes counting at once both count.
    await this.ctx.db
      .updateTable('login_failures')
      .set({
        failures: sql<number>`case when ${sql.ref('last_failure_at')} < ${restartBefore} then 1 else ${sql.ref('failures')} + 1 end`,
        last_failure_at: now,
      })
      .where('subject', '=', subject)
      .execute();
    const row = await this.get(subject);
    return row ?? { subject, failures: 1, lastFailureAt: now };
  }

  async clear(subject: string): Promise<void> {
    await this.ctx.db.deleteFrom('login_failures').where('subject', '=', subject).execute();
  }
}
