import type { FastifyPluginAsync } from 'fastify';
import type { CofferMetrics } from './coffer-metrics.js';
import type { Readiness } from './readiness.js';

export interface HealthRoutesOptions {
  readiness: Readiness;
  /** serves /metrics too when given: on the metrics listener, never on the API's public port */
  metrics?: CofferMetrics;
}

/**
 * /healthz: the process is alive and its event loop answers (a liveness probe restarts it
 * otherwise); it asks nothing else, so a database outage never gets every role restarted.
 * /readyz: 200 when every dependency answers, else 503 naming the ones that do not.
 */
export function healthRoutes(options: HealthRoutesOptions): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      return { status: 'alive' };
    });
    app.get('/readyz', async (_request, reply) => {
      const report = await options.readiness.report();
      reply.code(report.ready ? 200 : 503).header('cache-control', 'no-store');
      return report.ready ? { status: 'ready', checks: report.checks } : { status: 'not ready', failing: report.failing, checks: report.checks };
    });
    const metrics = options.metrics;
    if (metrics !== undefined) {
      app.get('/metrics', async (_request, reply) => {
        reply.type(metrics.contentType).header('cache-control', 'no-store');
        return metrics.render();
      });
    }
  };
}
