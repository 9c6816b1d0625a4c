import type { FastifyRequest } from 'fastify';
import type { BackupStorage } from '../../backup/index.js';
import type { RequestContext, Transport } from '../../bus/index.js';
import type { Logger, WebhookTargetGuard } from '../../common/index.js';
import type { StateStore } from '../../db/index.js';
import { requireAuth, type CallerValidator } from '../auth-context.js';
import { troveLinkBase } from '../base-url.js';
import type { PasswordPolicy } from '../password-policy.js';
import type { RateLimiter } from '../rate-limiter.js';
import type { DatastoreViewContext } from './datastore-views.js';
import type { QuotaLimits } from './quota-enforcement.js';

export interface TroveDeps {
  store: StateStore;
  transport: Transport;
  logger: Logger;
  /** validates each request's X-Auth-Token: the built-in identity or an external Keystone */
  callers: CallerValidator;
  publicUrl: string | undefined;
  region: string;
  maxVolumeSizeGb: number;
  heartbeatExpirySeconds: number;
  /** hard limits of projects without their own (Trove's max_*_per_tenant) */
  quotaDefaults: QuotaLimits;
  /** undefined when rate limiting is off */
  rateLimiter: RateLimiter | undefined;
  /** what database user and root passwords given in a request must be */
  passwordPolicy: PasswordPolicy;
  /** where backups are stored (undefined: backups are refused with 501) and the container used when nothing names one */
  backups: { storage: BackupStorage | undefined; defaultContainer: string };
  /** which addresses a project's webhook may point at */
  webhookGuard: WebhookTargetGuard;
}

/** Route params of everything under /v1.0/{tenantId}. */
export interface TenantParams {
  tenantId: string;
}

export function viewContext(request: FastifyRequest): DatastoreViewContext {
  const auth = requireAuth(request);
  // The authentication hook has checked that the URL's tenant is the token's project.
  return { linkBase: troveLinkBase(request), tenantId: auth.projectId, isAdmin: auth.isAdmin };
}

/** The request context every bus message carries, so each log line names the request. */
export function busContext(request: FastifyRequest, instanceId?: string): RequestContext {
  const auth = requireAuth(request);
  return {
    requestId: request.id,
    projectId: auth.projectId,
    userId: auth.userId,
    ...(instanceId === undefined ? {} : { instanceId }),
  };
}
