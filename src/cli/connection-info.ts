import type { InstanceView } from './api-types.js';

export interface ConnectionInfo {
  host: string;
  port: number | undefined;
  /** whether `command` and `url` connect over TLS, verifying the instance with its CA */
  tls?: boolean;
  /** A client command line for the engine, when the CLI knows the engine's client. */
  command: string | undefined;
  /** A connection URL; never with a password in it (it would end up in shell history and logs). */
  url: string | undefined;
}

const defaultPorts: Record<string, number> = { postgresql: 5432, mysql: 3306, mariadb: 3306, redis: 6379 };

/** The address a client should use: a public one first, as Trove lists private and public. */
function instanceHost(instance: InstanceView): string | undefined {
  const addresses = instance.addresses ?? [];
  const preferred = addresses.find((a) => a.type === 'public') ?? addresses[0];
  return instance.hostname ?? preferred?.address ?? instance.ip?.[0];
}

export function instancePort(instance: InstanceView): number | undefined {
  const withPort = instance.addresses?.find((a) => typeof a.port === 'number');
  return withPort?.port ?? instance.port ?? defaultPorts[instance.datastore?.type ?? ''];
}

/** The placeholder for the CA file in a connect line, when the CLI was not told where it is. */
export const caFilePlaceholder = '<ca-file>';

/**
 * How to connect to a freshly created instance as `user` to `database` (either may be unknown).
 * When the instance shows its CA (Coffer's `tls`), over TLS verifying the server against the CA
 * saved at `caFile`.
 */
export function connectionInfo(instance: InstanceView, user?: string, database?: string, caFile?: string): ConnectionInfo | undefined {
  const host = instanceHost(instance);
  if (host === undefined) return undefined;
  const tlsPort = instance.tls?.port ?? undefined;
  if (typeof instance.tls?.ca_certificate === 'string' && tlsPort !== undefined) {
    return tlsConnectionInfo(instance, host, tlsPort, caFile ?? caFilePlaceholder, user, database);
  }
  const port = instancePort(instance);
  const urlHost = `${host.includes(':') ? `[${host}]` : host}${port === undefined ? '' : `:${port}`}`;
  const shownUser = user ?? '<user>';
  const userPart = user === undefined ? '<user>' : encodeURIComponent(user);
  const dbPart = database === undefined ? '' : `/${encodeURIComponent(database)}`;
  const portArg = (flag: string) => (port === undefined ? [] : [flag, String(port)]);
  switch (instance.datastore?.type) {
    case 'postgresql': {
      const db = database ?? 'postgres';
      return {
        host,
        port,
        command: shellLine(['psql', '-h', host, ...portArg('-p'), '-U', shownUser, '-d', db]),
        url: `postgresql://${userPart}@${urlHost}/${encodeURIComponent(db)}`,
      };
    }
    case 'mysql':
    case 'mariadb':
      return {
        host,
        port,
        command: shellLine([
          'mysql', '-h', host, ...portArg('-P'), '-u', shownUser, '-p', ...(database === undefined ? [] : [database]),
        ]),
        url: `mysql://${userPart}@${urlHost}${dbPart}`,
      };
    case 'redis':
      // every Redis instance wants a user: its `default` user is off until root is enabled
      return {
        host,
        port,
        command: shellLine(['redis-cli', '-h', host, ...portArg('-p'), '--user', shownUser, '--askpass']),
        url: `redis://${userPart}@${urlHost}`,
      };
    default:
      return { host, port, command: undefined, url: undefined };
  }
}

/** The engines' own clients, verifying the server's certificate and address as `sslmode=verify-full` does. */
function tlsConnectionInfo(
  instance: InstanceView,
  host: string,
  port: number,
  caFile: string,
  user: string | undefined,
  database: string | undefined,
): ConnectionInfo {
  const urlHost = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const shownUser = user ?? '<user>';
  const userPart = user === undefined ? '<user>' : encodeURIComponent(user);
  const base = { host, port, tls: true };
  switch (instance.datastore?.type) {
    case 'postgresql': {
      const db = database ?? 'postgres';
      const conninfo = `host=${host} port=${port} user=${shownUser} dbname=${db} sslmode=verify-full sslrootcert=${caFile}`;
      return {
        ...base,
        command: shellLine(['psql', conninfo]),
        url: `postgresql://${userPart}@${urlHost}/${encodeURIComponent(db)}?sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}`,
      };
    }
    case 'mysql':
    case 'mariadb': {
      // MariaDB's client verifies with --ssl-verify-server-cert, MySQL's with --ssl-mode=VERIFY_IDENTITY
      const verify = instance.datastore.type === 'mariadb' ? ['--ssl-verify-server-cert'] : ['--ssl-mode=VERIFY_IDENTITY'];
      return {
        ...base,
        command: shellLine([
          'mysql', '-h', host, '-P', String(port), '-u', shownUser, '-p', `--ssl-ca=${caFile}`, ...verify,
          ...(database === undefined ? [] : [database]),
        ]),
        url: `mysql://${userPart}@${urlHost}${database === undefined ? '' : `/${encodeURIComponent(database)}`}`,
      };
    }
    case 'redis':
      return {
        ...base,
        command: shellLine(['redis-cli', '-h', host, '-p', String(port), '--tls', '--cacert', caFile, '--user', shownUser, '--askpass']),
        url: `rediss://${userPart}@${urlHost}`,
      };
    default:
      return { ...base, command: undefined, url: undefined };
  }
}

function shellLine(args: string[]): string {
  return args.map(shellQuote).join(' ');
}

function shellQuote(arg: string): string {
  if (arg === '<user>' || arg === caFilePlaceholder || /^[A-Za-z0-9_.@%+=:,/-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}
