import type { InstanceView } from './api-types.js';

export interface ConnectionInfo {
  host: string;
  port: number | undefined;
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

/** How to connect to a freshly created instance as `user` to `database` (either may be unknown). */
export function connectionInfo(instance: InstanceView, user?: string, database?: string): ConnectionInfo | undefined {
  const host = instanceHost(instance);
  if (host === undefined) return undefined;
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

function shellLine(args: string[]): string {
  return args.map(shellQuote).join(' ');
}

function shellQuote(arg: string): string {
  if (arg === '<user>' || /^[A-Za-z0-9_.@%+=:,/-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}
