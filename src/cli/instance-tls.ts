import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { InstanceView } from './api-types.js';
import { CliError } from './cli-error.js';
import { connectionInfo } from './connection-info.js';
import type { Cell } from './table-format.js';

// What `instance show` and `instance create` say about an instance's TLS (Coffer's `tls` in the
// view): whether it is required, the port, the certificate's expiry, and the CA certificate,
// written to the file `--ca-file` names so that the connect line can point clients at it.

/** Writes the instance's CA certificate to `path` (a certificate is no secret: 0644); answers the absolute path. */
export async function saveCaCertificate(instance: InstanceView, path: string): Promise<string> {
  const pem = instance.tls?.ca_certificate;
  if (typeof pem !== 'string') {
    throw new CliError(
      `Instance ${instance.name} (${instance.id}) has not reported its CA certificate yet.`,
      'It does once its engine has started: try again when `coffer instance show` says ACTIVE.',
    );
  }
  const absolute = resolve(path);
  try {
    await writeFile(absolute, pem, { mode: 0o644 });
  } catch (err) {
    throw new CliError(`Cannot write the CA certificate to ${absolute}: ${(err as Error).message}`);
  }
  return absolute;
}

export function tlsFields(instance: InstanceView, caFile: string | undefined): Array<[string, Cell]> {
  const tls = instance.tls;
  if (tls === undefined) return [];
  const reported = typeof tls.ca_certificate === 'string';
  return [
    ['TLS', tls.required === true ? 'required (plaintext refused)' : 'available (plaintext allowed)'],
    ['TLS port', tls.port ?? undefined],
    ['Certificate expires', tls.expires ?? undefined],
    ['CA certificate', !reported ? 'not reported yet' : caFile !== undefined ? `written to ${caFile}` : 'below (or save it with --ca-file <path>)'],
    ['Connect', reported ? connectionInfo(instance, undefined, undefined, caFile)?.command : undefined],
  ];
}

/** The CA certificate itself, printed after the fields when it was not written to a file. */
export function caCertificateText(instance: InstanceView, caFile: string | undefined): string {
  const pem = instance.tls?.ca_certificate;
  if (caFile !== undefined || typeof pem !== 'string') return '';
  return `\nCA certificate of ${instance.name} (verify the instance with it):\n${pem.endsWith('\n') ? pem : `${pem}\n`}`;
}
