// What operators watch a role by: Prometheus metrics (CofferMetrics, one registry per process,
// which `coffer serve` shares between its roles), /healthz and /readyz (healthRoutes), and the
// small listener that serves them on an address of the operator's choosing (startMetricsListener),
// apart from the API's public port. prom-client stays inside this folder: the roles see only
// the narrow observer interfaces they declare themselves, which CofferMetrics implements.
export { CofferMetrics, metricNames, type AdoptionSource, type HeartbeatSource, type WarmPoolSource } from './coffer-metrics.js';
export { Readiness, roleReadiness, type Pingable, type ReadinessCheck, type ReadinessReport } from './readiness.js';
export { healthRoutes, type HealthRoutesOptions } from './health-routes.js';
export { startMetricsListener, type MetricsListener, type MetricsListenerOptions } from './metrics-listener.js';
export { parseListenAddress, type ListenAddress } from './listen-address.js';
