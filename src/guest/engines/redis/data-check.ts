import type { Redis } from 'ioredis';
import type { DataCheckResult } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import { runCheckTool } from '../checked-tool.js';
import { withAdminClient } from './admin.js';
import { info, snapshot, type RdbSource } from './backup.js';

// Redis's own check of an instance's data: every key of every keyspace reached by a full SCAN
// (and counted against DBSIZE), then a fresh snapshot (BGSAVE, as a backup takes one) read whole
// by redis-check-rdb, which decodes every value and checks the file's CRC. The tool runs as the
// engine's OS user in the data directory, with no secret: it reads a file, not the server.

const checkTimeoutMs = 6 * 60 * 60 * 1000;
const scanCount = 1000;
const rdbName = 'dump.rdb';

/** DBSIZE of each keyspace INFO lists (`db0:keys=3,expires=0,avg_ttl=0`) */
function keyspaces(fields: Map<string, string>): Map<number, number> {
  const found = new Map<number, number>();
  for (const [name, value] of fields) {
    const db = /^db(\d+)$/.exec(name)?.[1];
    const keys = /(?:^|,)keys=(\d+)/.exec(value)?.[1];
    if (db !== undefined && keys !== undefined) found.set(Number(db), Number(keys));
  }
  return found;
}

async function scanAll(client: Redis, db: number, signal: AbortSignal): Promise<number> {
  await client.call('SELECT', [String(db)]);
  const seen = new Set<string>();
  let cursor = '0';
  do {
    signal.throwIfAborted();
    const [next, keys] = (await client.call('SCAN', [cursor, 'COUNT', String(scanCount)])) as [string, string[]];
    // SCAN may return a key twice while the table is rehashed; each is counted once
    for (const key of keys) seen.add(key);
    cursor = next;
  } while (cursor !== '0');
  return seen.size;
}

/** redis-check-rdb's report: the lines between its error banner and its closing `[info]` lines. */
export function rdbCheckProblems(stdout: string): string[] {
  const lines = stdout.split('\n').map((line) => line.trim());
  const at = lines.indexOf('--- RDB ERROR DETECTED ---');
  if (at < 0) return [];
  const details = lines.slice(at + 1).filter((line) => line !== '' && !line.startsWith('[info]'));
  return [details.join(' ') || 'redis-check-rdb found an error in the snapshot.'];
}

export async function checkRedisData(source: RdbSource, signal: AbortSignal): Promise<DataCheckResult> {
  if ((await source.running()) === undefined) throw new CofferError('EngineError', 'Redis is not running: its data cannot be checked.');
  const problems: string[] = [];
  const { keys, scanned, databases } = await withAdminClient(
    await source.endpoint(),
    async (client) => {
      const sizes = keyspaces(await info(client, 'keyspace'));
      let total = 0;
      let reached = 0;
      for (const [db, size] of sizes) {
        const found = await scanAll(client, db, signal);
        if (found !== size) problems.push(`keyspace ${db}: DBSIZE says ${size} keys, a full SCAN reached ${found}.`);
        total += size;
        reached += found;
      }
      await snapshot(client, signal, Date.now() + checkTimeoutMs);
      return { keys: total, scanned: reached, databases: sizes.size };
    },
    checkTimeoutMs / 6,
  );
  const run = await runCheckTool(source.runner, source.program('redis-check-rdb'), [rdbName], { cwd: source.dataDir, timeoutMs: checkTimeoutMs, signal });
  const rdbProblems = rdbCheckProblems(run.stdout);
  if (run.failure !== undefined && rdbProblems.length === 0) throw run.failure;
  problems.push(...rdbProblems);
  return { checks: { databases, keys, keys_scanned: scanned, errors: problems.length }, problems };
}
