import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineMetricsSample } from '../common/index.js';

// Every series here has labels from small, known sets (routes, contract methods, task kinds,
// outcomes), or from live instances and warm pool kinds, which leave with them. Nothing a
// request carries (a URL, an id in a path, a name) ever becomes a label value.

export const metricNames = {
  httpRequest: 'coffer_http_request_duration_seconds',
  busCall: 'coffer_bus_call_duration_seconds',
  task: 'coffer_task_duration_seconds',
  heartbeatAge: 'coffer_instance_heartbeat_age_seconds',
  instanceUp: 'coffer_instance_up',
  instanceConnections: 'coffer_instance_connections',
  instanceDatabaseBytes: 'coffer_instance_database_bytes',
  instanceOperations: 'coffer_instance_operations_total',
  instanceCacheHitRatio: 'coffer_instance_cache_hit_ratio',
  instanceReplicationLag: 'coffer_instance_replication_lag_seconds',
  warmPool: 'coffer_agent_warm_pool_clusters',
  adopting: 'coffer_agent_instances_adopting',
} as const;

/** Live instances' last heartbeats, with the status and engine metrics they left, read when Prometheus scrapes (the conductor's state DB). */
export type HeartbeatSource = () => Promise<
  Array<{ instanceId: string; tenantId: string; datastore: string; sentAt: number; status?: string; engineMetrics?: EngineMetricsSample }>
>;

type Heartbeat = Awaited<ReturnType<HeartbeatSource>>[number];
type InstanceLabels = 'instance_id' | 'project_id' | 'datastore';
const instanceLabels: InstanceLabels[] = ['instance_id', 'project_id', 'datastore'];
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
  private heartbeatsRead: Promise<Heartbeat[]> | undefined;
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
    // One gauge per measure of live instances, each read from the same rows: one read of the
    // state DB per scrape (Prometheus collects the families at once), and a deleted instance is
    // gone from the next scrape.
    const instanceGauge = (name: string, help: string, value: (beat: Heartbeat) => number | undefined) => {
      const gauge: Gauge<InstanceLabels> = new Gauge({
        name,
        help,
        labelNames: instanceLabels,
        registers: [this.registry],
        collect: async () => {
          gauge.reset();
          for (const beat of await this.readHeartbeats()) {
            const measured = value(beat);
            if (measured !== undefined) gauge.set({ instance_id: beat.instanceId, project_id: beat.tenantId, datastore: beat.datastore }, measured);
          }
        },
      });
    };
    instanceGauge(metricNames.heartbeatAge, "Seconds since each live instance's guest sent its last heartbeat, as the conductors recorded it", (beat) =>
      Math.max(0, (this.now() - beat.sentAt) / 1000),
    );
    // what the guests measured (src/common/engine-metrics.ts), as the conductors kept it
    instanceGauge(metricNames.instanceUp, "1 while the instance's guest reports its engine healthy, 0 otherwise", (beat) => (beat.status === 'HEALTHY' ? 1 : 0));
    instanceGauge(metricNames.instanceConnections, "Tenants' open connections to the engine, as its guest last measured", (beat) => beat.engineMetrics?.values.connections);
    instanceGauge(
      metricNames.instanceDatabaseBytes,
      "Bytes of the tenant's data as the engine counts it (its databases; Redis: its dataset in memory)",
      (beat) => beat.engineMetrics?.values.databaseBytes,
    );
    instanceGauge(
      metricNames.instanceOperations,
      'Operations since the engine started (PostgreSQL: transactions ended; MariaDB: statements; Redis: commands); its rate() is the load',
      (beat) => beat.engineMetrics?.values.operations,
    );
    instanceGauge(metricNames.instanceCacheHitRatio, "Reads served from the engine's cache over all reads since it started, 0-1", (beat) => beat.engineMetrics?.values.cacheHitRatio);
    instanceGauge(metricNames.instanceReplicationLag, 'How far a replica trails its primary, as its engine tells', (beat) => beat.engineMetrics?.values.replicationLagSeconds);
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

  /**
   * The heartbeats, read once for the gauges of one scrape (a scrape collects its families at
   * once, so they share the read in flight); a state DB that does not answer leaves them empty
   * (/readyz says why).
   */
  private readHeartbeats(): Promise<Heartbeat[]> {
    if (this.heartbeatsRead === undefined) {
      const rows = this.heartbeats === undefined ? Promise.resolve([]) : this.heartbeats().catch(() => []);
      this.heartbeatsRead = rows;
      void rows.finally(() => {
        if (this.heartbeatsRead === rows) this.heartbeatsRead = undefined;
      });
    }
    return this.heartbeatsRead;
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
