// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import { escapeId } from 'mysql2';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { runEngineConformance } from './engine-conformance.suite.js';
import { cleanUpMysqlFamily, connectTenant, connectTenantTls, tlsSocketOf } from './mysql-family-fixture.js';

// The engine conformance suite for MariaDB, through mysql2 as a tenant's client would connect.

type Row = RowDataPacket & Record<string, unknown>;

/** one table per user: a table another user created is not writable without a grant */
async function tableOf(connection: Connection): Promise<string> {
  const [rows] = await connection.query<Row[]>("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AS user");
  return `conformance ${String(rows[0]!.user)}`.slice(0, 64);
}

runEngineConformance<Connection>({
  engine: 'mariadb',
  loopbackPrefix: '127.92',
  connect: (options) => connectTenant(options),
  connectTls: (options) => connectTenantTls(options),
  serverCertificateSerial: (connection) => tlsSocketOf(connection).getPeerCertificate().serialNumber,
  async write(connection, key, value) {
    const table = escapeId(await tableOf(connection), true);
    await connection.query(`CREATE TABLE IF NOT EXISTS ${table} (k VARCHAR(100) PRIMARY KEY, v TEXT) CHARACTER SET utf8mb4`);
    await connection.query(`INSERT INTO ${table} (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)`, [key, value]);
  },
  async read(connection, key) {
    const table = await tableOf(connection);
    const [exists] = await connection.query<Row[]>(
      'SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
      [table],
    );
    if (exists.length === 0) return undefined;
    const [rows] = await connection.query<Row[]>(`SELECT v FROM ${escapeId(table, true)} WHERE k = ?`, [key]);
    return rows[0] === undefined ? undefined : String(rows[0].v);
  },
  async memorySetting(connection) {
    const [rows] = await connection.query<Row[]>('SELECT @@innodb_buffer_pool_size AS size');
    return String(rows[0]!.size);
  },
  adminUser: 'os_admin',
  rootUser: 'root',
  characterSet: { characterSet: 'latin1', collate: 'latin1_german2_ci' },
  configuration: {
    // Coffer renders no wait_timeout: the server's default until a group sets one
    dynamic: { name: 'wait_timeout', value: 5, live: '5', initial: '28800' },
    restartOnly: { name: 'performance_schema', value: true, live: '1', initial: '0' },
    rejected: { name: 'sql_mode', value: 'NOT_A_REAL_MODE' },
    async setting(connection, name) {
      const [rows] = await connection.query<Row[]>(`SELECT @@GLOBAL.${escapeId(name)} AS value`);
      return String(rows[0]!.value);
    },
  },
  cleanUp: cleanUpMysqlFamily,
});
