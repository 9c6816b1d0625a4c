import type { Instance } from './types.js';

const defaultPorts: Record<string, number> = { postgresql: 5432, mysql: 3306, mariadb: 3306, redis: 6379 };

/** where clients reach the instance */
export function endpointOf(instance: Instance): { host: string; port: number | undefined } | undefined {
  const preferred = instance.addresses?.find((a) => a.type === 'public') ?? instance.addresses?.[0];
  const host = instance.hostname ?? preferred?.address ?? instance.ip?.[0];
  if (host === undefined) return undefined;
  const port = instance.addresses?.find((a) => typeof a.port === 'number')?.port ?? instance.port ?? defaultPorts[instance.datastore?.type ?? ''];
  return { host, port };
}

export function addressText(instance: Instance): string {
  const endpoint = endpointOf(instance);
  if (endpoint === undefined) return '';
  return endpoint.port === undefined ? endpoint.host : `${endpoint.host}:${endpoint.port}`;
}

/** a command line that connects as `user` (the client asks for the password) */
export function connectCommand(instance: Instance, user = '<user>', database?: string): string | undefined {
  const endpoint = endpointOf(instance);
  if (endpoint === undefined) return undefined;
  const { host, port } = endpoint;
  switch (instance.datastore?.type) {
    case 'postgresql':
      return `psql "host=${host} port=${port ?? 5432} user=${user} dbname=${database ?? 'postgres'}"`;
    case 'mariadb':
    case 'mysql':
      return `mariadb -h ${host} -P ${port ?? 3306} -u ${user} -p${database === undefined ? '' : ` ${database}`}`;
    case 'redis':
      return `redis-cli -h ${host} -p ${port ?? 6379} --user ${user} --askpass`;
    default:
      return undefined;
  }
}

/** Trove's times are UTC without saying so */
export function timeText(value: string | undefined | null): string {
  if (value === undefined || value === null) return '';
  return `${value.replace('T', ' ').replace(/\.\d+$/, '')} UTC`;
}

export function bytesText(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.round(bytes / 1e3)} kB`;
}
