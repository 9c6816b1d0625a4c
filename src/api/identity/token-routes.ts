import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CofferError } from '../../common/index.js';
import { authenticate, headerValue } from '../auth-context.js';
import { publicBase } from '../base-url.js';
import { parseKeystoneBody } from '../parse-body.js';
import { queryParam } from '../query-param.js';
import { forbidden, type IdentityDeps } from './identity-deps.js';
import { tokenView } from './keystone-views.js';
import { authRequestSchema, resolveAuthRequest } from './resolve-auth-request.js';
import type { TokenSession } from './token-service.js';

// Issue (POST), validate (GET/HEAD) and revoke (DELETE) tokens: /identity/v3/auth/tokens.

export async function tokenRoutes(app: FastifyInstance, deps: IdentityDeps): Promise<void> {
  const catalogOptions = (request: FastifyRequest) =>
    queryParam(request.query, 'nocatalog') === undefined
      ? { publicBase: publicBase(request, deps.publicUrl), region: deps.region }
      : null;

  app.post('/v3/auth/tokens', async (request, reply) => {
    const body = parseKeystoneBody(authRequestSchema, request.body);
    const now = new Date();
    const resolved = await resolveAuthRequest(deps.store, deps.tokens, body, now, { limiter: deps.loginLimiter, address: request.ip });
    const { token, session } = await deps.tokens.issue({ ...resolved, now });
    reply.code(201).header('x-subject-token', token);
    return tokenView(session, catalogOptions(request));
  });

  /** The subject token, when the caller may see it: its own token, or any token for an admin. */
  async function subject(request: FastifyRequest, action: string): Promise<{ token: string; session: TokenSession }> {
    const auth = await authenticate(request, deps.tokens);
    const token = headerValue(request, 'x-subject-token') ?? '';
    const session = await deps.tokens.validate(token, new Date());
    if (session === undefined) throw new CofferError('NotFound', 'Could not find the token given in X-Subject-Token.');
    if (!auth.isAdmin && session.user.id !== auth.userId) throw forbidden(action);
    return { token, session };
  }

  // Fastify answers HEAD from this GET with the same status and headers and no body.
  app.get('/v3/auth/tokens', async (request, reply) => {
    const { token, session } = await subject(request, 'identity:validate_token');
    reply.header('x-subject-token', token);
    return tokenView(session, catalogOptions(request));
  });

  app.delete('/v3/auth/tokens', async (request, reply) => {
    const { token } = await subject(request, 'identity:revoke_token');
    await deps.tokens.revoke(token);
    reply.code(204).send();
  });
}
