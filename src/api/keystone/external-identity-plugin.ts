import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { CofferError } from '../../common/index.js';
import { keystoneErrorReply } from '../error-replies.js';

// With an external Keystone the built-in identity is off: every /identity route answers 404 in
// Keystone's shape and says where to authenticate instead, so that a client still pointed at
// Coffer's own identity learns the right OS_AUTH_URL rather than finding half an identity API.

export function externalIdentityPlugin(keystoneUrl: string): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const message = `This Coffer uses the Keystone at ${keystoneUrl} for identity: authenticate there (OS_AUTH_URL=${keystoneUrl}/v3).`;
    app.all('/', () => Promise.reject(new CofferError('NotFound', message)));
    app.all('/*', () => Promise.reject(new CofferError('NotFound', message)));
    app.setErrorHandler((err, request, reply) => {
      const out = keystoneErrorReply(err, { requestId: request.id, identityUri: keystoneUrl });
      if (out.internal) request.log.error({ err }, 'identity request failed');
      reply.code(out.status).headers(out.headers).send(out.body);
    });
  };
}
