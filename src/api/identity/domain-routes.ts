import type { FastifyInstance } from 'fastify';
import { authenticate } from '../auth-context.js';
import { queryParam } from '../query-param.js';
import { notFound, resolveDomainId, v3Base, type IdentityDeps } from './identity-deps.js';
import { domainView, listLinks } from './keystone-views.js';

// Coffer has only the default domain; clients still look it up by id or name (osc-lib tries
// GET /domains/<x> and then GET /domains?name=<x>).

export async function domainRoutes(app: FastifyInstance, deps: IdentityDeps): Promise<void> {
  app.get<{ Params: { domainId: string } }>('/v3/domains/:domainId', async (request) => {
    await authenticate(request, deps.tokens);
    if (resolveDomainId({ id: request.params.domainId }) === undefined) throw notFound('domain', request.params.domainId);
    return { domain: domainView(v3Base(request, deps)) };
  });

  app.get('/v3/domains', async (request) => {
    await authenticate(request, deps.tokens);
    const name = queryParam(request.query, 'name');
    const base = v3Base(request, deps);
    const matches = name === undefined || resolveDomainId({ name }) !== undefined;
    return { domains: matches ? [domainView(base)] : [], links: listLinks(`${base}/domains`) };
  });
}
