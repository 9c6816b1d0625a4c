import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

// Every series here has labels from small, known sets (routes, contract methods, task kinds,
// outcomes), or from live instances and warm pool kinds, which leave with them. Nothing a
// request carries (a URL, an id in a path, a name) ever becomes a label value.

export const metricNames = {
  httpRequest: 'coffer_http_request_duration_seconds',
  busCall: 'coffer_bus_call_duration_seconds',
  task: 'coffer_task_duration_seconds',
  heartbeatAge: 'coffer_instance_heartbeat_age_seconds',
  warmPool: 'coffer_agent_warm_pool_clusters',
  adopting: 'coffer_agent_instances_adopting',
} as const;

/** Live instances' last heartbeats, read when Prometheus scrapes (the conductor's state DB). */
export type HeartbeatSource = () => Promise<Array<{ instanceId: string; tenantId: string; datastore: string; sentAt: number }>>;
/** Complete warm clusters per kind (e.g. postgresql-15), read when Prometheus scrapes. */
export type WarmPoolSource = () => Promise<Record<string, number>>;
/** How many instances an agent found at its start and has not re-adopted yet, read when Prometheus scrapes. */
export type AdoptionSource = () => number;

const httpMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export interface CofferMetricsOptions {
  /** Node's process metrics (CPU, memory, event loop lag, handles); default true */
  processMetrics?: boolean;
  /** the clock heartbeat ages are measured against; tests pass their own */
  now?: () => number;
}

/** One process's metrics: every role of the process records into the same registry. */
export class CofferMetrics {
  readonly registry = new Registry();
  private readonly now: () => number;
  private readonly http: Histogram<'method' | 'route' | 'status'>;
  private readonly bus: Histogram<'service' | 'method' | 'type' | 'outcome'>;
  private readonly tasks: Histogram<'kind' | 'outcome'>;
  private heartbeats: HeartbeatSource | undefined;
  private readonly warmPools = new Map<string, WarmPoolSource>();
  private readonly adoptions = new Map<string, AdoptionSource>();

  constructor(options: CofferMetricsOptions = {}) {
    this.now = options.now ?? Date.now;
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.http = new Histogram({
      name: metricNames.httpRequest,
      help: 'API requests by method, route pattern and status; its _count gives the request rate',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.bus = new Histogram({
      name: metricNames.busCall,
      help: 'Bus calls (until the reply) and casts (until the broker took them) sent by this process, by contract service and method',
      labelNames: ['service', 'method', 'type', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
    this.tasks = new Histogram({
      name: metricNames.task,
      help: 'Durable tasks run by this taskmanager, by kind and outcome (done, failed, or handed over to another worker)',
      labelNames: ['kind', 'outcome'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14_400, 86_400],
      registers: [this.registry],
    });
    const heartbeatAge: Gauge<'instance_id' | 'project_id' | 'datastore'> = new Gauge({
      name: metricNames.heartbeatAge,
      help: "Seconds since each live instance's guest sent its last heartbeat, as the conductors recorded it",
      labelNames: ['instance_id', 'project_id', 'datastore'],
      registers: [this.registry],
      collect: async () => {
        // read whole at each scrape: a deleted instance is gone from the next one
        heartbeatAge.reset();
        if (this.heartbeats === undefined) return;
        const now = this.now();
        // a state database that does not answer leaves the family empty; /readyz says why
        for (const beat of await this.heartbeats().catch(() => [])) {
          const labels = { instance_id: beat.instanceId, project_id: beat.tenantId, datastore: beat.datastore };
          heartbeatAge.set(labels, Math.max(0, (now - beat.sentAt) / 1000));
        }
      },
    });
    const warmPool: Gauge<'host' | 'kind'> = new Gauge({
      name: metricNames.warmPool,
      help: "Initialised clusters waiting in an agent's warm pool, per engine version",
      labelNames: ['host', 'kind'],
      registers: [this.registry],
      collect: async () => {
        warmPool.reset();
        for (const [host, source] of this.warmPools) {
          for (const [kind, count] of Object.entries(await source().catch(() => ({})))) warmPool.set({ host, kind }, count);
        }
      },
    });
    const adopting: Gauge<'host'> = new Gauge({
      name: metricNames.adopting,
      help: 'Instances an agent found at its start and has not re-adopted yet (it serves meanwhile; requests for them wait)',
      labelNames: ['host'],
      registers: [this.registry],
      collect: () => {
        adopting.reset();
        for (const [host, source] of this.adoptions) adopting.set({ host }, source());
      },
    });
  }

  /** The API's requests (src/api HttpRequestObserver). `route` is the pattern, undefined when none matched. */
  observeHttpRequest(request: { method: string; route: string | undefined; status: number; seconds: number }): void {
    this.http.observe(
      {
        method: httpMethods.has(request.method) ? request.method : 'other',
        route: request.route ?? 'unmatched',
        status: String(request.status),
      },
      request.seconds,
    );
  }

  /** What this process sent over the bus (src/bus BusCallObserver). */
  observeBusCall(call: { service: string; method: string; type: 'call' | 'cast'; outcome: string; seconds: number }): void {
    this.bus.observe({ service: call.service, method: call.method, type: call.type, outcome: call.outcome }, call.seconds);
  }

  /** A task run that ended (src/taskmanager TaskObserver). */
  observeTask(task: { kind: string; outcome: string; seconds: number }): void {
    this.tasks.observe({ kind: task.kind, outcome: task.outcome }, task.seconds);
  }

  /** The conductor's view of heartbeats; one source per process. */
  watchHeartbeats(source: HeartbeatSource): void {
    this.heartbeats = source;
  }

  /** An agent's warm pool, by its host name. */
  watchWarmPool(host: string, source: WarmPoolSource): void {
    this.warmPools.set(host, source);
  }

  /** An agent's re-adoption after its start, by its host name. */
  watchAdoption(host: string, source: AdoptionSource): void {
    this.adoptions.set(host, source);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of everything above. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
