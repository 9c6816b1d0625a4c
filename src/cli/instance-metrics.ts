import type { CliIo } from './cli-io.js';
import { timestampText } from './instance-format.js';
import { findInstance } from './instance-lookup.js';
import { openSession } from './session.js';
import { printJson, renderFields } from './table-format.js';

// `coffer instance metrics`: what the instance's guest last measured of its engine (Coffer's
// GET /instances/{id}/metrics).

export interface InstanceMetricsView {
  instance_id: string;
  operating_status: string | null;
  up: boolean;
  measured: string | null;
  connections: number | null;
  database_bytes: number | null;
  operations_total: number | null;
  cache_hit_ratio: number | null;
  replication_lag_seconds: number | null;
}

/** `812 kB`, `7.9 MB`, `1.3 GB` */
function dataSizeText(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.round(bytes / 1e3)} kB`;
}

export async function showInstanceMetrics(io: CliIo, idOrName: string, options: { json?: boolean }): Promise<void> {
  const client = await openSession(io);
  const { id, name } = await findInstance(client, idOrName);
  const body = await client.get<{ metrics: InstanceMetricsView }>(`/instances/${encodeURIComponent(id)}/metrics`);
  const metrics = body!.metrics;
  if (options.json === true) return printJson(io.stdout, metrics);
  if (metrics.measured === null) {
    io.stdout.write(`${name} has not been measured yet: its guest sends the figures with its first healthy heartbeat (within a minute).\n`);
    return;
  }
  const number = (value: number | null, unit = '') => (value === null ? undefined : `${value}${unit}`);
  io.stdout.write(
    renderFields([
      ['Status', metrics.operating_status ?? undefined],
      ['Measured', timestampText(metrics.measured)],
      ['Connections', number(metrics.connections)],
      ['Data', metrics.database_bytes === null ? undefined : dataSizeText(metrics.database_bytes)],
      ['Operations since start', number(metrics.operations_total)],
      ['Cache hit ratio', metrics.cache_hit_ratio === null ? undefined : `${(metrics.cache_hit_ratio * 100).toFixed(1)}%`],
      ['Replication lag', number(metrics.replication_lag_seconds, ' s')],
    ]),
  );
}
