import type { Redis } from 'ioredis';
import { CofferError } from '../../../common/index.js';
import { liveValue, type RedisSetting } from './config.js';
import type { RedisParameter } from './parameters.js';

// A configuration group's values on the running server, over the guest's own connection (the
// tenant's users and root have no CONFIG SET). What runs is compared with what was rendered,
// not with the previous rendering, so an apply also repairs a server that drifted (a crash
// between writing redis.conf and CONFIG SET) and reports as pending exactly what still runs
// with another value.

/** The running server's values of `names`, as CONFIG GET answers them. */
export async function readLiveSettings(client: Redis, names: readonly string[]): Promise<Map<string, string>> {
  const reply = (await client.call('CONFIG', ['GET', ...names])) as string[];
  const live = new Map<string, string>();
  for (let i = 0; i + 1 < reply.length; i += 2) live.set(reply[i]!, reply[i + 1]!);
  return live;
}

export interface LivePlan {
  /** what CONFIG SET changes now */
  set: RedisSetting[];
  /** restart-only parameters whose running value differs from the rendered one */
  pendingRestart: string[];
}

/**
 * What it takes for the running server to run `settings`, as far as `parameters` go. A value
 * CONFIG GET shows in another form than it was given (notify-keyspace-events' letters in
 * Redis's order, sizes as bytes) is set again: harmless, as CONFIG SET of the running value is.
 */
export function planLiveChanges(settings: readonly RedisSetting[], live: ReadonlyMap<string, string>, parameters: readonly RedisParameter[]): LivePlan {
  const wanted = new Map(settings);
  const plan: LivePlan = { set: [], pendingRestart: [] };
  for (const { name, restartRequired } of parameters) {
    const value = wanted.get(name);
    if (value === undefined || live.get(name) === liveValue(value)) continue;
    if (restartRequired) plan.pendingRestart.push(name);
    else plan.set.push([name, value]);
  }
  return plan;
}

/** Redis's reason without its error prefix, e.g. "ERR CONFIG SET failed (…) - argument must be…". */
function reasonOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/^ERR\s+/, '');
}

/**
 * Sets every one of `settings` in one CONFIG SET: Redis 7 applies it wholly or not at all, so
 * a value it refuses leaves every other one as it was. The error names the parameter Redis
 * blamed (all of them when it named none of them).
 */
export async function setLive(client: Redis, settings: readonly RedisSetting[]): Promise<void> {
  if (settings.length === 0) return;
  try {
    await client.call('CONFIG', ['SET', ...settings.flatMap(([name, value]) => [name, liveValue(value)])]);
  } catch (err) {
    const reason = reasonOf(err);
    const blamed = /argument '([^']+)'/.exec(reason)?.[1];
    const names = settings.map(([name]) => name);
    const named = blamed !== undefined && names.includes(blamed) ? blamed : names.join(', ');
    throw new CofferError('EngineError', `Redis refused the value of ${named}: ${reason}`, { cause: err });
  }
}
