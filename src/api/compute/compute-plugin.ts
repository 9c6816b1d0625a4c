import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { CofferError } from '../../common/index.js';
import { authenticateWith } from '../auth-context.js';
import { publicBase } from '../base-url.js';
import { computeErrorReply } from '../error-replies.js';
import { replyIfRateLimited } from '../trove/rate-limit-reply.js';
import type { ComputeDeps, ComputeParams } from './compute-deps.js';
import { flavorRoutes } from './flavor-routes.js';
import { formatMicroversion, maxMicroversion, microversionHeaders, minMicroversion, requestedMicroversion } from './microversion.js';
import { serverRoutes } from './server-routes.js';

// A read-only subset of Nova's compute API v2.1 (issue 11): tools built for OpenStack look up an
// instance's server and check its flavor after a resize. Served under /v2.1 and, as Nova still
// allows, /v2.1/{project_id}; listed in the catalog as service type `compute`.

function versionedRoutes(deps: ComputeDeps): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.decorateRequest('computeVersion', null);
    app.setErrorHandler((err, request, reply) => {
      const out = computeErrorReply(err, { requestId: request.id, identityUri: deps.identityUri(request) });
      if (out.internal) request.log.error({ err }, 'request failed');
      reply.code(out.status).headers(out.headers).send(out.body);
    });
    app.addHook('onRequest', async (request, reply) => {
      const auth = await authenticateWith(request, deps.callers);
      const { tenantId } = request.params as ComputeParams;
      // Nova's wsgi.Resource: a project id in the URL must be the token's, admins included
      if (tenantId !== undefined && tenantId !== auth.projectId) {
        throw new CofferError(
          'BadRequest',
          `Malformed request URL: URL's project_id '${tenantId.slice(0, 64)}' doesn't match Context's project_id '${auth.projectId}'`,
        );
      }
      if (deps.rateLimiter !== undefined && replyIfRateLimited(request, reply, deps.rateLimiter, auth.projectId)) return reply;
      const version = requestedMicroversion(request);
      request.computeVersion = version;
      reply.headers(microversionHeaders(version));
      return undefined;
    });
    await serverRoutes(app, deps);
    await flavorRoutes(app, deps);
  };
}

export function computePlugin(deps: ComputeDeps): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    // Nova's version document, for clients discovering the endpoint; no token needed
    app.get('/v2.1', async (request) => ({
      version: {
        id: 'v2.1',
        status: 'CURRENT',
        version: formatMicroversion(maxMicroversion),
        min_version: formatMicroversion(minMicroversion),
        updated: '2013-07-23T11:33:21Z',
        links: [
          { rel: 'self', href: `${publicBase(request, deps.publicUrl)}/v2.1/` },
          { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' },
        ],
        'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
      },
    }));
    await app.register(versionedRoutes(deps), { prefix: '/v2.1' });
    await app.register(versionedRoutes(deps), { prefix: '/v2.1/:tenantId' });
  };
}
