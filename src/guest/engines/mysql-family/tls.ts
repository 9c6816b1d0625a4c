import type { Connection } from 'mysql2/promise';
import type { TlsFiles } from '../tls-files.js';
import { optionValue } from './config.js';
import type { MysqlFamilyFlavor } from './flavor.js';

// TLS of the MySQL family, in one place: the my.cnf options that serve the instance's
// certificate and refuse plaintext clients, and how the running server takes a change. Both
// MariaDB and MySQL name the options alike; they differ only in the reload statement (the
// flavor's `reloadTlsStatement`). The guest's own login over the Unix socket counts as secure
// transport, so requiring TLS never locks the guest out.

/** my.cnf lines; `files` undefined: no certificate installed yet, plaintext only */
export function mysqlTlsOptions(files: TlsFiles | undefined, requireTls: boolean): string[] {
  if (files === undefined) return [];
  return [
    `ssl_cert = ${optionValue(files.certFile)}`,
    `ssl_key = ${optionValue(files.keyFile)}`,
    `require_secure_transport = ${requireTls ? 'ON' : 'OFF'}`,
  ];
}

/** the server reads its certificate and key again, for new connections */
export async function reloadTls(connection: Connection, flavor: MysqlFamilyFlavor): Promise<void> {
  await connection.query(flavor.reloadTlsStatement);
}

export async function setRequireSecureTransport(connection: Connection, requireTls: boolean): Promise<void> {
  await connection.query(`SET GLOBAL require_secure_transport = ${requireTls ? 'ON' : 'OFF'}`);
}
