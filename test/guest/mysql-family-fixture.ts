import { readdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createConnection, type Connection } from 'mysql2/promise';
import { serversIn } from '../../src/guest/engines/mysql-family/server.js';
import type { EngineConnectOptions } from './engine-conformance.suite.js';

// Shared by the MariaDB tests: a tenant's client connection, and the clean-up that kills
// whatever server a failing test left behind.

/** Logs in over TCP as a tenant's client would; resolves once the server accepted the login. */
export async function connectTenant(login: EngineConnectOptions): Promise<Connection> {
  const connection = await createConnection({
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
  });
  connection.on('error', () => undefined);
  return connection;
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
