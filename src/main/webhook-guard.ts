import { WebhookTargetGuard, type ControlPlaneEndpoint } from '../common/index.js';
import { parseListenAddress } from '../metrics/index.js';

// The webhook guard of a role (api: at registration; taskmanager: before every attempt), from
// its config: the control-plane endpoints it knows of are refused whatever the allowed ranges
// say. Each role names what it knows; the API's address reaches a taskmanager by --public-url.

const defaultPorts: Record<string, number> = { 'amqp:': 5672, 'amqps:': 5671, 'mysql:': 3306, 'mariadb:': 3306, 'postgres:': 5432, 'postgresql:': 5432, 'http:': 80, 'https:': 443 };

/** host and port of a URL (sqlite: and unparsable ones name none) */
function endpointOf(text: string | undefined): ControlPlaneEndpoint[] {
  if (text === undefined) return [];
  try {
    const url = new URL(text);
    const port = url.port === '' ? defaultPorts[url.protocol] : Number(url.port);
    return url.hostname === '' || port === undefined ? [] : [{ host: url.hostname, port }];
  } catch {
    return [];
  }
}

export interface WebhookGuardConfig {
  webhookAllowedCidrs?: readonly string[] | undefined;
  addressPool: string;
  /** serve's --host-address: its instances listen there, on ports of their own */
  hostAddress?: string | undefined;
  databaseUrl?: string;
  busUrl?: string;
  metricsAddress?: string | undefined;
  publicUrl?: string | undefined;
  /** where this role's API listens (serve, api) */
  host?: string;
  port?: number;
}

export function webhookGuard(config: WebhookGuardConfig): WebhookTargetGuard {
  const controlPlane: ControlPlaneEndpoint[] = [
    ...(config.host !== undefined && config.port !== undefined ? [{ host: config.host, port: config.port }] : []),
    ...endpointOf(config.publicUrl),
    ...endpointOf(config.busUrl),
    ...endpointOf(config.databaseUrl),
    ...(config.metricsAddress === undefined ? [] : [parseListenAddress(config.metricsAddress)]),
  ];
  return new WebhookTargetGuard({ allowedCidrs: config.webhookAllowedCidrs, instanceCidrs: [config.addressPool, ...(config.hostAddress === undefined ? [] : [`${config.hostAddress}/32`])], controlPlane });
}
