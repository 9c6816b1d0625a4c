import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { CofferError } from '../../common/index.js';
import { authenticateWith } from '../auth-context.js';
import { publicBase } from '../base-url.js';
import { backupRoutes } from './backup-routes.js';
import { instanceEventRoutes } from './instance-event-routes.js';
import { instanceMetricsRoutes } from './instance-metrics-routes.js';
import { mgmtHostRoutes } from './mgmt-host-routes.js';
import { instanceLogRoutes } from './instance-log-routes.js';
import { instanceReplicationRoutes } from './instance-replication-routes.js';
import { backupScheduleRoutes } from './backup-schedule-routes.js';
import { catalogRoutes } from './catalog-routes.js';
import { configurationParameterRoutes, mgmtConfigurationParameterRoutes } from './configuration-parameter-routes.js';
import { configurationRoutes } from './configuration-routes.js';
import { databaseRoutes } from './database-routes.js';
import { datastoreRoutes } from './datastore-routes.js';
import { flavorRoutes } from './flavor-routes.js';
import { instanceRoutes } from './instance-routes.js';
import { limitsRoutes } from './limits-routes.js';
import { mgmtDatastoreVersionRoutes } from './mgmt-datastore-version-routes.js';
import { mgmtRoutes } from './mgmt-routes.js';
import { quotaRoutes } from './quota-routes.js';
import { replyIfRateLimited } from './rate-limit-reply.js';
import { rootRoutes } from './root-routes.js';
import type { TenantParams, TroveDeps } from './trove-deps.js';
import { userRoutes } from './user-routes.js';
import { webhookRoutes } from './webhook-routes.js';

// The Trove v1.0 API. Everything under /v1.0/{tenant} passes keystonemiddleware's token check
// and then Trove's tenant check (reference 1.2), in that order, before its body is even parsed.

function v1Routes(deps: TroveDeps): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.addHook('onRequest', async (request, reply) => {
      const auth = await authenticateWith(request, deps.callers);
      const { tenantId } = request.params as TenantParams;
      // Even admins must use their own project in the URL.
      if (tenantId !== auth.projectId) {
        throw new CofferError('TenantMismatch', `User with tenant id ${auth.projectId} cannot access this resource.`);
      }
      if (deps.rateLimiter !== undefined && replyIfRateLimited(request, reply, deps.rateLimiter, auth.projectId)) {
        return reply;
      }
      return undefined;
    });
    await flavorRoutes(app, deps);
    await datastoreRoutes(app, deps);
    await instanceRoutes(app, deps);
    await instanceEventRoutes(app, deps);
    await instanceMetricsRoutes(app, deps);
    await mgmtHostRoutes(app, deps);
    await instanceReplicationRoutes(app, deps);
    await instanceLogRoutes(app, deps);
    await catalogRoutes(app, deps);
    await configurationParameterRoutes(app, deps);
    await configurationRoutes(app, deps);
    await mgmtConfigurationParameterRoutes(app, deps);
    await limitsRoutes(app, deps);
    await quotaRoutes(app, deps);
    await mgmtRoutes(app, deps);
    await mgmtDatastoreVersionRoutes(app, deps);
    await databaseRoutes(app, deps);
    await userRoutes(app, deps);
    await rootRoutes(app, deps);
    await backupRoutes(app, deps);
    await backupScheduleRoutes(app, deps);
    await webhookRoutes(app, deps);
  };
}

export function trovePlugin(deps: TroveDeps): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get('/', async (request) => ({
      versions: [
        {
          id: 'v1.0',
          status: 'CURRENT',
          updated: '2012-08-01T00:00:00Z',
          links: [{ rel: 'self', href: `${publicBase(request, deps.publicUrl)}/v1.0/` }],
        },
      ],
    }));
    await app.register(v1Routes(deps), { prefix: '/v1.0/:tenantId' });
  };
}
