import type { Client } from 'pg';
import type { EngineMetrics } from '../../../common/index.js';

// What the guest measures of a PostgreSQL instance (EngineMetrics), in one query over its kept
// health-check connection. The `postgres` database is the guest's own (its checks run there) and
// is left out of the tenant's counts, as templates are.

const query = `
SELECT
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename IS DISTINCT FROM current_user)::int AS connections,
  (SELECT coalesce(sum(pg_database_size(oid)), 0) FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres')::float8 AS bytes,
  coalesce(sum(xact_commit + xact_rollback), 0)::float8 AS operations,
  coalesce(sum(blks_hit), 0)::float8 AS hits,
  coalesce(sum(blks_read), 0)::float8 AS reads,
  CASE
    WHEN NOT pg_is_in_recovery() THEN NULL
    -- a replica that replayed all it received is not behind, however long ago its primary last wrote
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
  END::float8 AS lag
FROM pg_stat_database
WHERE datname IS NOT NULL AND datname <> 'postgres'`;

interface Row {
  connections: number;
  bytes: number;
  operations: number;
  hits: number;
  reads: number;
  lag: number | null;
}

export async function postgresqlMetrics(client: Client): Promise<EngineMetrics> {
  const row = (await client.query<Row>(query)).rows[0]!;
  const lookups = row.hits + row.reads;
  return {
    connections: row.connections,
    databaseBytes: row.bytes,
    operations: row.operations,
    ...(lookups > 0 ? { cacheHitRatio: row.hits / lookups } : {}),
    ...(row.lag === null ? {} : { replicationLagSeconds: Math.max(0, row.lag) }),
  };
}
