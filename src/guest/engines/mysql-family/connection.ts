import { createConnection, type Connection } from 'mysql2/promise';
import type { KeptProbeOps } from '../kept-probe.js';
import { adminSessionSettings, adminUser } from './sql.js';

// The guest's own session: over the instance's Unix socket as os_admin, which exists only at
// `localhost` (the socket) and so never logs in over TCP.

export interface AdminEndpoint {
  socketPath: string;
  password: string;
}

async function openAdminConnection(endpoint: AdminEndpoint, timeoutMs = 10_000): Promise<Connection> {
  const connection = await createConnection({
    socketPath: endpoint.socketPath,
    user: adminUser,
    password: endpoint.password,
    connectTimeout: timeoutMs,
    charset: 'utf8mb4_bin',
    multipleStatements: false,
    supportBigNumbers: true,
  });
  // a server that dies under an open connection emits 'error'; unhandled, it would kill the agent
  connection.on('error', () => undefined);
  try {
    await connection.query(adminSessionSettings);
  } catch (err) {
    connection.destroy();
    throw err;
  }
  return connection;
}

export async function withAdminConnection<T>(endpoint: AdminEndpoint, work: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = await openAdminConnection(endpoint);
  try {
    return await work(connection);
  } finally {
    await connection.end().catch(() => connection.destroy());
  }
}

/**
 * `SELECT 1` as the administrative user: `yes` when the server answers, `denied` when it
 * answers but refuses the guest's login (a tenant's root changed or dropped os_admin), `no`
 * when it does not answer.
 */
export async function probeServer(endpoint: AdminEndpoint, timeoutMs: number): Promise<'yes' | 'denied' | 'no'> {
  try {
    const connection = await openAdminConnection(endpoint, timeoutMs);
    try {
      await connection.query('SELECT 1');
      return 'yes';
    } finally {
      connection.destroy();
    }
  } catch (err) {
    return (err as { code?: string }).code === 'ER_ACCESS_DENIED_ERROR' ? 'denied' : 'no';
  }
}

/** How long a closing session may take to say goodbye before its socket is cut (a hung server never answers). */
const closeGraceMs = 1_000;

/**
 * The health check's session, kept between checks (kept-probe.ts): `SELECT 1` as the
 * administrative user. A configuration group's wait_timeout (down to 1 s) would end it between
 * checks, so the session keeps the server's default for itself.
 */
export function healthProbeOps(endpoint: () => Promise<AdminEndpoint>): KeptProbeOps<Connection> {
  return {
    open: async (timeoutMs) => {
      const connection = await openAdminConnection(await endpoint(), timeoutMs);
      try {
        await connection.query('SET SESSION wait_timeout = 28800');
      } catch (err) {
        connection.destroy();
        throw err;
      }
      return connection;
    },
    ask: async (connection) => {
      await connection.query('SELECT 1');
      return true;
    },
    close: (connection) => {
      const cut = setTimeout(() => connection.destroy(), closeGraceMs);
      cut.unref();
      connection.end().then(
        () => clearTimeout(cut),
        () => undefined,
      );
    },
  };
}
