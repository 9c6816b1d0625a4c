import { readdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { checkServerIdentity, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { createConnection, type Connection } from 'mysql2/promise';
import { serversIn } from '../../src/guest/engines/mysql-family/server.js';
import type { EngineConnectOptions } from './engine-conformance.suite.js';

// Shared by the MariaDB tests: a tenant's client connection, and the clean-up that kills
// whatever server a failing test left behind.

/** Logs in over TCP as a tenant's client would; resolves once the server accepted the login. */
export async function connectTenant(login: EngineConnectOptions): Promise<Connection> {
  const connection = await createConnection({
    ...mysqlConnectOptions(login),
  });
  connection.on('error', () => undefined);
  return connection;
}

/** The TLS socket under a connection that switched to TLS. */
export function tlsSocketOf(connection: Connection): TLSSocket {
  return (connection as unknown as { connection: { stream: TLSSocket } }).connection.stream;
}

/**
 * Logs in over TLS as `mariadb --ssl-ca … --ssl-verify-server-cert` would: the chain up to `ca`,
 * then the address in the certificate (mysql2 checks names only, not IP addresses: done here).
 * A new `ssl` object each time: mysql2 would otherwise resume an earlier TLS session, whose
 * certificate may be one the server no longer serves.
 */
export async function connectTenantTls(login: EngineConnectOptions & { ca: string }): Promise<Connection> {
  const connection = await createConnection({
    ...mysqlConnectOptions(login),
    ssl: { ca: login.ca, rejectUnauthorized: true, verifyIdentity: false },
  });
  connection.on('error', () => undefined);
  const mismatch = checkServerIdentity(login.address, tlsSocketOf(connection).getPeerCertificate());
  if (mismatch !== undefined) {
    connection.destroy();
    throw mismatch;
  }
  return connection;
}

function mysqlConnectOptions(login: EngineConnectOptions) {
  return {
    host: login.address,
    port: login.port,
    user: login.user,
    password: login.password,
    database: login.database,
    // mysql2 takes `localAddress` but does not bind to it: the socket is made here
    ...(login.localAddress === undefined
      ? {}
      : { stream: () => connect({ host: login.address, port: login.port, localAddress: login.localAddress }) }),
    connectTimeout: 10_000,
    charset: 'utf8mb4_general_ci',
  };
}

/** Kills every server working in a data directory under `root` (three levels down at most), then removes `root`. */
export async function cleanUpMysqlFamily(root: string): Promise<void> {
  const dirs: string[] = [];
  const visit = async (dir: string, depth: number): Promise<void> => {
    dirs.push(dir);
    if (depth === 0) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => visit(join(dir, e.name), depth - 1)));
  };
  await visit(root, 3);
  for (const dir of dirs) for (const pid of await serversIn(dir)) process.kill(pid, 'SIGKILL');
  await rm(root, { recursive: true, force: true });
}
