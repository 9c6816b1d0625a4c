import { randomUUID } from 'node:crypto';
import fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { BackupStorage } from '../backup/index.js';
import type { Transport } from '../bus/index.js';
import { CofferError, WebhookTargetGuard } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { StateStore } from '../db/index.js';
import { dashboardRoutes } from './dashboard/dashboard-routes.js';
import { healthRoutes, roleReadiness, type Readiness } from '../metrics/index.js';
import { builtInCallers, type CallerValidator } from './auth-context.js';
import { computePlugin } from './compute/index.js';
import { imagePlugin } from './image/image-plugin.js';
import { publicBase } from './base-url.js';
import { keystoneErrorReply, troveErrorReply } from './error-replies.js';
import { identityPlugin } from './identity/identity-plugin.js';
import { LoginLimiter, noLoginLimits, type LoginLimits } from './identity/login-limiter.js';
import { TokenService } from './identity/token-service.js';
import { externalIdentityPlugin } from './keystone/external-identity-plugin.js';
import { stripFormatSuffix } from './format-suffix.js';
import { maxBodyBytes, registerJsonBody } from './json-body.js';
import { noPasswordPolicy, type PasswordPolicy } from './password-policy.js';
import { RateLimiter, troveRateLimitRules } from './rate-limiter.js';
import { unlimitedQuotas, type QuotaLimits } from './trove/quota-enforcement.js';
import { trovePlugin } from './trove/trove-plugin.js';

export interface ApiOptions {
  store: StateStore;
  transport: Transport;
  logger: Logger;
  /** base URL clients should use, e.g. http://127.0.0.1:8779; default from the request Host */
  publicUrl?: string;
  /** default 'RegionOne' */
  region?: string;
  /** default 86400 */
  tokenTtlSeconds?: number;
  /** default 10 (Trove max_accepted_volume_size) */
  maxVolumeSizeGb?: number;
  /** default 90 (Trove agent_heartbeat_expiry) */
  heartbeatExpirySeconds?: number;
  /** where backups live; without it backup requests are refused (501) */
  backupStorage?: BackupStorage;
  /** the container a backup goes to when neither the request nor a strategy names one (Trove's backup_swift_container) */
  defaultBackupContainer?: string;
  /** hard limits of projects without their own; default none (the config gives Trove's defaults) */
  quotaDefaults?: QuotaLimits;
  /** requests per minute per verb and project (Trove: 200); default 0, no rate limiting */
  rateLimitPerMinute?: number;
  /**
   * An external Keystone in place of the built-in identity (see src/api/keystone): tokens are
   * validated by `callers`, and /identity only says to authenticate at `url` instead.
   */
  externalIdentity?: { callers: CallerValidator; url: string };
  /** failed-login lockout and per-address limits; default none (the config gives Coffer's defaults) */
  loginLimits?: LoginLimits;
  /** what passwords users choose must be; default any (the config gives Coffer's default policy) */
  passwordPolicy?: PasswordPolicy;
  /** serve HTTPS with this certificate (chain) and key, PEM; default plain HTTP */
  https?: { cert: string; key: string };
  /** what /readyz asks; default: the state store and the bus above answer */
  readiness?: Readiness;
  /** takes every request's route pattern, status and duration (the role's /metrics) */
  requestObserver?: HttpRequestObserver;
  /**
   * which addresses a project's webhook may point at; default: the built-in refusals only
   * (loopback, link-local, unspecified), with no control-plane endpoints named
   */
  webhookGuard?: WebhookTargetGuard;
}

/** What takes the API's request timings: the process's metrics, or a test. */
export interface HttpRequestObserver {
  /** `route` is the route's pattern (`/v1.0/:tenantId/instances/:instanceId`), undefined when none matched */
  observeHttpRequest(request: { method: string; route: string | undefined; status: number; seconds: number }): void;
}


/** The HTTP API, ready to listen; the caller listens (and closes it). */
export async function buildApiServer(options: ApiOptions): Promise<FastifyInstance> {
  const external = options.externalIdentity;
  // Where a 401's WWW-Authenticate sends the client to authenticate.
  const identityUri = (request: FastifyRequest) => external?.url ?? `${publicBase(request, options.publicUrl)}/identity`;
  // A URL that is not percent-encoded UTF-8 fails in the router, before any route or error
  // handler: answered in the API's shapes all the same, Keystone's under /identity.
  const answerFrameworkError = (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const context = { requestId: request.id, identityUri: identityUri(request) };
    const out = (request.url.startsWith('/identity') ? keystoneErrorReply : troveErrorReply)(err, context);
    reply.code(out.status).headers({ ...out.headers, 'x-openstack-request-id': request.id }).send(out.body);
  };
  const app = fastify({
    ...(options.https === undefined ? {} : { https: { cert: options.https.cert, key: options.https.key } }),
    loggerInstance: options.logger,
    // Every response names its request (X-OpenStack-Request-ID); a client cannot choose the id.
    genReqId: () => `req-${randomUUID()}`,
    requestIdHeader: false,
    // Fastify logs every request and response at info, which buries everything else in the log
    // file of `coffer serve`; the hooks below log them at debug instead.
    logController: new LogController({ disableRequestLogging: true }),
    // Ids longer than find-my-way's default of 100 encoded characters are answered by the routes
    // (404 for an unknown one, as Trove does), not with a bare 414: a user path id `name@host` in
    // non-ASCII letters passes 100 once percent-encoded.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 2048 },
    bodyLimit: maxBodyBytes,
    rewriteUrl: (req) => stripFormatSuffix(req.url ?? '/'),
    frameworkErrors: (err, request, reply) => answerFrameworkError(err, request as FastifyRequest, reply as FastifyReply),
    // Fastify types an instance by its logger; pino's Logger is a FastifyBaseLogger, so the
    // narrower default-typed instance is what plugins and callers see.
  }) as unknown as FastifyInstance;
  const tokens = new TokenService(options.store, options.tokenTtlSeconds ?? 86_400, options.logger);
  const region = options.region ?? 'RegionOne';
  const passwordPolicy = options.passwordPolicy ?? noPasswordPolicy;
  const loginLimiter = new LoginLimiter(options.store, options.loginLimits ?? noLoginLimits, options.logger);

  app.decorateRequest('auth', null);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-openstack-request-id', request.id);
    request.log.debug({ method: request.method, url: request.url }, 'incoming request');
    // As in bodies (json-body.ts): a NUL in an id or a query reaches the state store's lookups.
    if (/%00/.test(request.url)) throw new CofferError('BadRequest', 'The URL cannot contain NUL characters.');
  });
  const observer = options.requestObserver;
  app.addHook('onResponse', async (request, reply) => {
    request.log.debug({ statusCode: reply.statusCode, responseTime: reply.elapsedTime }, 'request completed');
    // the route's pattern, never the URL: ids in paths would make a series per object
    observer?.observeHttpRequest({ method: request.method, route: request.routeOptions.url, status: reply.statusCode, seconds: reply.elapsedTime / 1000 });
  });
  registerJsonBody(app);

  app.setErrorHandler((err, request, reply) => {
    const out = troveErrorReply(err, {
      requestId: request.id,
      identityUri: identityUri(request),
    });
    if (out.internal) request.log.error({ err }, 'request failed');
    reply.code(out.status).headers(out.headers).send(out.body);
  });
  app.setNotFoundHandler((request, reply) => {
    const out = troveErrorReply(new CofferError('NotFound', 'The resource could not be found.'), {
      requestId: request.id,
      identityUri: identityUri(request),
    });
    reply.code(out.status).send(out.body);
  });

  // Probes for a load balancer or an orchestrator; /metrics is not here but on the operator's
  // own address (--metrics-address): request counts per route and heartbeats per instance and
  // project are the operator's business, not every tenant's.
  await app.register(healthRoutes({ readiness: options.readiness ?? roleReadiness({ stateDatabase: options.store, bus: options.transport }, options.logger) }));
  await app.register(
    external === undefined
      ? identityPlugin({ store: options.store, tokens, loginLimiter, passwordPolicy, publicUrl: options.publicUrl, region })
      : externalIdentityPlugin(external.url),
    { prefix: '/identity' },
  );
  const callers = external?.callers ?? builtInCallers(tokens);
  const rateLimiter =
    options.rateLimitPerMinute === undefined || options.rateLimitPerMinute === 0
      ? undefined
      : new RateLimiter(troveRateLimitRules(options.rateLimitPerMinute));
  const heartbeatExpirySeconds = options.heartbeatExpirySeconds ?? 90;
  await app.register(
    trovePlugin({
      store: options.store,
      transport: options.transport,
      logger: options.logger,
      callers,
      publicUrl: options.publicUrl,
      region,
      maxVolumeSizeGb: options.maxVolumeSizeGb ?? 10,
      heartbeatExpirySeconds,
      backups: { storage: options.backupStorage, defaultContainer: options.defaultBackupContainer ?? 'database_backups' },
      quotaDefaults: options.quotaDefaults ?? unlimitedQuotas,
      passwordPolicy,
      webhookGuard: options.webhookGuard ?? new WebhookTargetGuard({ instanceCidrs: [], controlPlane: [] }),
      rateLimiter,
    }),
  );
  // Nova's compute view of the same instances (read-only), for tools that look for the server
  await app.register(computePlugin({ store: options.store, callers, publicUrl: options.publicUrl, identityUri, heartbeatExpirySeconds, rateLimiter }));
  // an empty image service, without which OpenStack's client cannot show or list servers
  await app.register(imagePlugin({ callers, publicUrl: options.publicUrl }), { prefix: '/image' });
  await app.register(dashboardRoutes);
  return app;
}
