import fastify from 'fastify';
import type { Logger } from '../common/index.js';
import type { CofferMetrics } from './coffer-metrics.js';
import { healthRoutes } from './health-routes.js';
import type { ListenAddress } from './listen-address.js';
import type { Readiness } from './readiness.js';

export interface MetricsListenerOptions {
  address: ListenAddress;
  metrics: CofferMetrics;
  readiness: Readiness;
  logger: Logger;
}

export interface MetricsListener {
  /** where it listens, the port resolved when 0 was asked for */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The operator's door to a role: /metrics, /healthz and /readyz on an address of its own, so a
 * firewall or a bind to loopback keeps the metrics from tenants without any credentials for
 * Prometheus to hold. Every role can have one; roles without HTTP have no other.
 */
export async function startMetricsListener(options: MetricsListenerOptions): Promise<MetricsListener> {
  const app = fastify({ logger: false });
  app.setNotFoundHandler((_request, reply) => {
    reply.code(404).send({ error: 'not found: this address serves /metrics, /healthz and /readyz' });
  });
  await app.register(healthRoutes({ readiness: options.readiness, metrics: options.metrics }));
  // exclusive: in a cluster worker (coffer api --api-workers) the listener is this process's own,
  // not a port shared with the other workers, so a scrape always reaches the same process
  await app.listen({ host: options.address.host, port: options.address.port, exclusive: true });
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : options.address.port;
  const host = options.address.host.includes(':') ? `[${options.address.host}]` : options.address.host;
  const url = `http://${host}:${port}`;
  options.logger.info({ url }, 'serving /metrics, /healthz and /readyz');
  return { url, close: () => app.close() };
}
