import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { EngineMetrics } from '../../../common/index.js';

// What the guest measures of a MariaDB or MySQL instance (EngineMetrics), over its kept
// health-check connection: the server's status counters, the tenant's schemas' size as
// information_schema counts it, and a replica's Seconds_Behind_Master. The guest's own
// connection and schemas are left out.

type Row = RowDataPacket & Record<string, unknown>;

const systemSchemas = ['mysql', 'information_schema', 'performance_schema', 'sys'];

export async function mysqlFamilyMetrics(connection: Connection, ownSchema: string): Promise<EngineMetrics> {
  const [status] = await connection.query<Row[]>(
    "SELECT UPPER(VARIABLE_NAME) AS name, VARIABLE_VALUE AS value FROM information_schema.GLOBAL_STATUS WHERE UPPER(VARIABLE_NAME) IN ('THREADS_CONNECTED', 'QUESTIONS', 'INNODB_BUFFER_POOL_READ_REQUESTS', 'INNODB_BUFFER_POOL_READS')",
  );
  const counter = (name: string) => Number(status.find((row) => row.name === name)?.value ?? 0);
  const [[size]] = await connection.query<Row[]>(
    'SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS bytes FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN (?)',
    [[...systemSchemas, ownSchema]],
  );
  const [replica] = await connection.query<Row[]>('SHOW SLAVE STATUS');
  const lag = replica[0]?.Seconds_Behind_Master;
  const requests = counter('INNODB_BUFFER_POOL_READ_REQUESTS');
  return {
    // the guest's own connection is one of them
    connections: Math.max(0, counter('THREADS_CONNECTED') - 1),
    databaseBytes: Number(size?.bytes ?? 0),
    operations: counter('QUESTIONS'),
    ...(requests > 0 ? { cacheHitRatio: Math.min(1, Math.max(0, 1 - counter('INNODB_BUFFER_POOL_READS') / requests)) } : {}),
    ...(lag === null || lag === undefined ? {} : { replicationLagSeconds: Number(lag) }),
  };
}
