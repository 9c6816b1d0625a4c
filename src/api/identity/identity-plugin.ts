import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { CofferError } from '../../common/index.js';
import { publicBase } from '../base-url.js';
import { keystoneErrorReply } from '../error-replies.js';
import { discoveryRoutes } from './discovery-routes.js';
import { domainRoutes } from './domain-routes.js';
import type { IdentityDeps } from './identity-deps.js';
import { projectRoutes } from './project-routes.js';
import { roleRoutes } from './role-routes.js';
import { tokenRoutes } from './token-routes.js';
import { userRoutes } from './user-routes.js';

// The Keystone v3 subset the OpenStack clients need, mounted under /identity. Errors here use
// Keystone's body, `{"error":{"code","title","message"}}`, not Trove's.

export function identityPlugin(deps: IdentityDeps): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.setErrorHandler((err, request, reply) => {
      const out = keystoneErrorReply(err, {
        requestId: request.id,
        identityUri: `${publicBase(request, deps.publicUrl)}/identity`,
      });
      if (out.internal) request.log.error({ err }, 'identity request failed');
      reply.code(out.status).headers(out.headers).send(out.body);
    });
    app.setNotFoundHandler((request, reply) => {
      const out = keystoneErrorReply(new CofferError('NotFound', 'The resource could not be found.'), {
        requestId: request.id,
        identityUri: `${publicBase(request, deps.publicUrl)}/identity`,
      });
      reply.code(out.status).send(out.body);
    });
    await discoveryRoutes(app, deps);
    await tokenRoutes(app, deps);
    await userRoutes(app, deps);
    await projectRoutes(app, deps);
    await roleRoutes(app, deps);
    await domainRoutes(app, deps);
  };
}
