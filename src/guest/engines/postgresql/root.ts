import { randomBytes } from 'node:crypto';
import type { RootAdmin } from '../engine.js';
import type { RootModule } from '../engine-modules.js';
import {
  disableRootStatement,
  enableRootStatement,
  exists,
  passwordSql,
  rootRole,
  withAdminClient,
  type AdminEndpoint,
  type AdminEndpointSource,
} from './admin.js';
import { terminateSessions } from './users.js';

// The root module. Root is the role `root` (as Trove 18 names it) as a superuser that logs in with the tenant's password.
// Disabled, it keeps existing (objects it created stay owned) but cannot log in.

export const postgresqlRoot: RootModule<AdminEndpointSource> = {
  create: (lifecycle) => new PostgresqlRootAdmin(() => lifecycle.endpoint()),
};

export class PostgresqlRootAdmin implements RootAdmin {
  constructor(private readonly endpoint: () => Promise<AdminEndpoint>) {}

  async enable(password: string): Promise<string> {
    const secret = await passwordSql(password);
    await withAdminClient(await this.endpoint(), 'postgres', async (client) => {
      const known = await exists(client, 'SELECT 1 FROM pg_roles WHERE rolname = $1', rootRole);
      await client.query(enableRootStatement(known, secret));
    });
    return rootRole;
  }

  async disable(): Promise<void> {
    // a password nobody knows, besides NOLOGIN: a later ALTER ROLE ... LOGIN alone opens nothing
    const secret = await passwordSql(randomBytes(32).toString('base64url'));
    await withAdminClient(await this.endpoint(), 'postgres', async (client) => {
      if (!(await exists(client, 'SELECT 1 FROM pg_roles WHERE rolname = $1', rootRole))) return;
      await client.query(disableRootStatement(secret));
      await terminateSessions(client, rootRole);
    });
  }
}
