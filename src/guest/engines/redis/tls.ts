import type { Redis } from 'ioredis';
import type { ConfigurationValue } from '../../../common/index.js';
import type { TlsFiles } from '../tls-files.js';

// Redis's TLS, in one place. Redis cannot serve TLS and plaintext on one port, so TLS has a
// port of its own, the standard port + 1 (6380), always, and the plaintext port closes
// (`port 0`) when TLS is required: a client's TLS address never changes with the requirement.
// A running server reads a renewed certificate when its file settings are set again (CONFIG SET,
// even to the same paths), and opens or closes its plaintext port the same way.

export function redisTlsPort(port: number): number {
  return port + 1;
}

/** redis.conf settings; `files` undefined: no certificate installed yet, plaintext only */
export function redisTlsSettings(files: TlsFiles | undefined, port: number, requireTls: boolean): [string, ConfigurationValue][] {
  if (files === undefined) return [['port', port]];
  return [
    ['port', requireTls ? 0 : port],
    ['tls-port', redisTlsPort(port)],
    ['tls-cert-file', files.certFile],
    ['tls-key-file', files.keyFile],
    // clients prove who they are with passwords, not certificates
    ['tls-auth-clients', 'no'],
    ['tls-protocols', 'TLSv1.2 TLSv1.3'],
  ];
}

/** the running server's TLS: the certificate files read again, the plaintext port opened or closed */
export async function applyTls(client: Redis, files: TlsFiles, port: number, requireTls: boolean): Promise<void> {
  await client.call('CONFIG', [
    'SET',
    'tls-cert-file', files.certFile,
    'tls-key-file', files.keyFile,
    'tls-port', String(redisTlsPort(port)),
    'port', requireTls ? '0' : String(port),
  ]);
}
