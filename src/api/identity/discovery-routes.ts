import type { FastifyInstance, FastifyRequest } from 'fastify';
import { publicBase } from '../base-url.js';
import type { IdentityDeps } from './identity-deps.js';

// Version discovery, read by keystoneauth before it authenticates (reference 8.2.1). The
// unversioned root answers 300 Multiple Choices with a list, as Keystone does.

function v3Version(request: FastifyRequest, deps: IdentityDeps) {
  return {
    id: 'v3.14',
    status: 'stable',
    updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${publicBase(request, deps.publicUrl)}/identity/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  };
}

export async function discoveryRoutes(app: FastifyInstance, deps: IdentityDeps): Promise<void> {
  app.get('/', async (request, reply) => {
    reply.code(300);
    return { versions: { values: [v3Version(request, deps)] } };
  });
  app.get('/v3', async (request) => ({ version: v3Version(request, deps) }));
}
