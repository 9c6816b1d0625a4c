import type { Logger } from '../../common/index.js';
import type { KeystoneClient } from './keystone-client.js';
import {
  endpointsBodySchema,
  serviceBodySchema,
  servicesBodySchema,
  type KeystoneEndpoint,
  type KeystoneService,
} from './keystone-schemas.js';

// Coffer's entry in Keystone's catalog, as Trove's deployments register it: one service of type
// `database` named `trove`, and in the configured region a public, an internal and an admin
// endpoint `<public url>/v1.0/$(tenant_id)s` (Keystone substitutes the token's project id, which
// the clients need in the URL). Run at every start and idempotent: what is right is left alone, a
// changed URL is updated in place. Two API processes starting together may both create an entry;
// each then keeps the one with the smallest id and deletes the others, so they converge on one.

export const databaseServiceType = 'database';
export const databaseServiceName = 'trove';
const interfaces = ['public', 'internal', 'admin'] as const;

export interface EndpointRegistration {
  /** Coffer's public URL, without a trailing slash */
  publicUrl: string;
  region: string;
}

export interface RegistrationResult {
  serviceId: string;
  /** endpoint ids by interface */
  endpoints: Record<(typeof interfaces)[number], string>;
  /** what this run changed: nothing on a restart with the same settings */
  changes: string[];
}

const bySmallestId = <T extends { id: string }>(items: T[]) => [...items].sort((a, b) => a.id.localeCompare(b.id));

export async function registerEndpoints(
  client: KeystoneClient,
  registration: EndpointRegistration,
  logger: Logger,
): Promise<RegistrationResult> {
  const changes: string[] = [];
  const url = `${registration.publicUrl.replace(/\/+$/, '')}/v1.0/$(tenant_id)s`;
  const region = registration.region;

  const regionReply = await client.call('GET', `/v3/regions/${encodeURIComponent(region)}`);
  if (regionReply.status === 404) {
    await client.expect('PUT', `/v3/regions/${encodeURIComponent(region)}`, 201, { region: { description: '' } });
    changes.push(`created region ${region}`);
  } else if (regionReply.status !== 200) {
    throw client.refused(`GET /v3/regions/${region}`, regionReply);
  }

  const listServices = async (): Promise<KeystoneService[]> => {
    const body = servicesBodySchema.parse(await client.expect('GET', `/v3/services?type=${databaseServiceType}`, 200));
    return bySmallestId(body.services.filter((s) => s.type === databaseServiceType && s.name === databaseServiceName));
  };
  let services = await listServices();
  if (services.length === 0) {
    const created = serviceBodySchema.parse(
      await client.expect('POST', '/v3/services', 201, {
        service: { type: databaseServiceType, name: databaseServiceName, description: 'Coffer: the Trove v1.0 API', enabled: true },
      }),
    );
    changes.push(`created service ${created.service.id}`);
    services = await listServices();
  }
  const [service, ...duplicates] = services;
  if (service === undefined) throw new Error('Keystone lists no database service right after creating it');
  for (const duplicate of duplicates) {
    await deleteIgnoringGone(client, `/v3/services/${duplicate.id}`);
    changes.push(`deleted duplicate service ${duplicate.id}`);
  }

  const listEndpoints = async (): Promise<KeystoneEndpoint[]> => {
    const query = `service_id=${encodeURIComponent(service.id)}&region_id=${encodeURIComponent(region)}`;
    const body = endpointsBodySchema.parse(await client.expect('GET', `/v3/endpoints?${query}`, 200));
    return body.endpoints.filter((e) => e.service_id === service.id && e.region_id === region);
  };
  let endpoints = await listEndpoints();
  const missing = interfaces.filter((iface) => !endpoints.some((e) => e.interface === iface));
  for (const iface of missing) {
    await client.expect('POST', '/v3/endpoints', 201, {
      endpoint: { service_id: service.id, interface: iface, region_id: region, url, enabled: true },
    });
    changes.push(`created ${iface} endpoint`);
  }
  if (missing.length > 0) endpoints = await listEndpoints();

  const ids = {} as RegistrationResult['endpoints'];
  for (const iface of interfaces) {
    const [endpoint, ...extra] = bySmallestId(endpoints.filter((e) => e.interface === iface));
    if (endpoint === undefined) throw new Error(`Keystone lists no ${iface} endpoint right after creating it`);
    for (const duplicate of extra) {
      await deleteIgnoringGone(client, `/v3/endpoints/${duplicate.id}`);
      changes.push(`deleted duplicate ${iface} endpoint ${duplicate.id}`);
    }
    if (endpoint.url !== url) {
      await client.expect('PATCH', `/v3/endpoints/${endpoint.id}`, 200, { endpoint: { url } });
      changes.push(`updated ${iface} endpoint from ${endpoint.url}`);
    }
    ids[iface] = endpoint.id;
  }
  logger.info({ serviceId: service.id, region, url, changes }, changes.length === 0 ? 'Keystone catalog entry is up to date' : 'registered in Keystone catalog');
  return { serviceId: service.id, endpoints: ids, changes };
}

/** Another API process may have deleted it first. */
async function deleteIgnoringGone(client: KeystoneClient, path: string): Promise<void> {
  const reply = await client.call('DELETE', path);
  if (reply.status !== 204 && reply.status !== 404) throw client.refused(`DELETE ${path}`, reply);
}
