import { z } from 'zod';

// What a guest measures of its engine now and then (guest.ts, every minute at most, with a
// healthy heartbeat): one schema for the conductor contract that carries it and the state
// database row that keeps it, read back by the API (GET /instances/{id}/metrics) and the roles'
// Prometheus endpoints.

export const engineMetrics = z.object({
  /** tenants' open connections (the guest's own left out) */
  connections: z.number().int().nonnegative(),
  /** bytes of the tenant's data as the engine counts it: its databases (PostgreSQL, MariaDB) or its dataset in memory (Redis) */
  databaseBytes: z.number().nonnegative(),
  /**
   * a counter since the engine started: transactions ended (PostgreSQL: commits and rollbacks),
   * statements (MariaDB: `Questions`), commands (Redis); its rate is the load
   */
  operations: z.number().nonnegative(),
  /** reads served from the engine's cache over all reads, 0–1, since it started; absent before any read */
  cacheHitRatio: z.number().min(0).max(1).optional(),
  /** a replica's: how far it trails its primary, as its engine tells */
  replicationLagSeconds: z.number().nonnegative().optional(),
});
export type EngineMetrics = z.infer<typeof engineMetrics>;

/** As stored and served: with when the guest measured it. */
export interface EngineMetricsSample {
  values: EngineMetrics;
  measuredAt: Date;
}
