import type { Redis } from 'ioredis';
import type { EngineMetrics } from '../../../common/index.js';

// What the guest measures of a Redis instance (EngineMetrics), from INFO over its kept
// health-check connection (which is one of the connected clients). A replica's lag is not among
// them: a replica cannot see its source's offset (its source reports it, replication.ts).

function infoFields(info: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of info.split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields.set(line.slice(0, at), line.slice(at + 1));
  }
  return fields;
}

export async function redisMetrics(client: Redis): Promise<EngineMetrics> {
  const fields = infoFields(String(await client.call('INFO')));
  const number = (name: string) => Number(fields.get(name) ?? 0);
  const lookups = number('keyspace_hits') + number('keyspace_misses');
  return {
    connections: Math.max(0, number('connected_clients') - 1),
    databaseBytes: number('used_memory_dataset'),
    operations: number('total_commands_processed'),
    ...(lookups > 0 ? { cacheHitRatio: number('keyspace_hits') / lookups } : {}),
  };
}
