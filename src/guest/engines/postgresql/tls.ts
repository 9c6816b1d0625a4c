import type { ConfigurationValue } from '../../../common/index.js';
import type { TlsFiles } from '../tls-files.js';

// PostgreSQL's TLS, in one place: the postgresql.conf settings that serve the instance's
// certificate, and the pg_hba connection type that makes TLS required. A reload
// (pg_reload_conf) makes the postmaster read a renewed certificate for new connections.

/** postgresql.conf settings; `files` undefined: no certificate installed yet, plaintext only */
export function postgresqlTlsSettings(files: TlsFiles | undefined): [string, ConfigurationValue][] {
  if (files === undefined) return [['ssl', false]];
  return [
    ['ssl', true],
    ['ssl_cert_file', files.certFile],
    ['ssl_key_file', files.keyFile],
    ['ssl_min_protocol_version', 'TLSv1.2'],
  ];
}

/** the pg_hba type of tenants' lines: `hostssl` matches TLS connections only, so plaintext finds no line and is refused */
export function tenantConnectionType(requireTls: boolean): 'host' | 'hostssl' {
  return requireTls ? 'hostssl' : 'host';
}
