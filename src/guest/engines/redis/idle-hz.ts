import { ReplyError, type Redis } from 'ioredis';
import type { ConfigurationValue } from '../../../common/index.js';
import { adminUser } from './acl.js';
import { infoFields } from './admin.js';
import { redisParameterTable } from './parameters.js';

// Redis wakes `hz` times a second whether anyone uses it or not. At the standard 10 an idle
// redis-server costs about 0.09 % of a core here, 90 % of a core per 1,000 idle instances, and at
// 1 about a seventeenth of that (bench/results/density.md). Lowering it for good would stretch
// what the timer does for a server in use (active expiry in longer slices, client timeouts,
// statistics), so the guest lowers it only while nobody uses the instance, and gives it back at
// the first health check that sees a client of the tenant's at work. A configuration group that
// sets `hz` is obeyed as it is: the guest never changes a value somebody chose.

/** what an idle instance runs with */
export const idleHz = 1;

const standardHz = Number(redisParameterTable.find((parameter) => parameter.name === 'hz')?.standard);

/** The server's state as one check reads it. */
export interface ServerActivity {
  /** the running value (CONFIG GET hz) */
  hz: number;
  /** INFO stats' total_connections_received: it grows with every connection, closed or not */
  connectionsReceived: number;
  /** seconds since each open connection that is not the guest's own last sent a command */
  tenantIdleSeconds: number[];
}

/** Parses CLIENT LIST: the idle seconds of every connection not logged in as the guest's user. */
export function tenantIdleSeconds(clientList: string): number[] {
  return clientList
    .split('\n')
    .map((line) => new Map(line.trim().split(' ').map((field) => field.split('=', 2) as [string, string])))
    .filter((fields) => fields.has('idle') && fields.get('user') !== adminUser)
    .map((fields) => Number(fields.get('idle')));
}

/**
 * One round trip: PING, whose PONG is the health check's answer (a server still loading its data
 * answers it with an error), and the activity the hz policy reads. `activity` is undefined where
 * the server refused a part of it; a broken connection rejects, as any query over the kept one does.
 */
export async function readProbe(client: Redis): Promise<{ answers: boolean; activity: ServerActivity | undefined }> {
  const results =
    (await client.pipeline().call('PING').call('CONFIG', 'GET', 'hz').call('INFO', 'stats').call('CLIENT', 'LIST').exec()) ?? [];
  // a pipeline on a closed connection answers each command with the connection's error: thrown,
  // so that the kept connection is replaced; the server's own refusal (LOADING) is its answer
  const broken = results.find(([err]) => err !== null && !(err instanceof ReplyError))?.[0];
  if (broken !== undefined && broken !== null) throw broken;
  const [pong, hz, stats, clients] = results.map(([err, value]) => (err === null ? value : undefined)) as [
    string | undefined,
    string[] | undefined,
    string | undefined,
    string | undefined,
  ];
  if (pong !== 'PONG') return { answers: false, activity: undefined };
  if (hz === undefined || stats === undefined || clients === undefined) return { answers: true, activity: undefined };
  return {
    answers: true,
    activity: {
      hz: Number(hz[1]),
      connectionsReceived: Number(infoFields(stats).get('total_connections_received')),
      tenantIdleSeconds: tenantIdleSeconds(clients),
    },
  };
}

/**
 * Decides, one health check at a time, the `hz` an instance should run with. Idle means: since
 * the previous check no connection was opened (the guest keeps its own open) and no open one
 * of the tenant's sent a command. The first check after the guest starts has nothing to compare
 * with and changes nothing.
 */
export class IdleHzPolicy {
  private previous: { at: number; connectionsReceived: number } | undefined;
  /**
   * Whether the last two readings found the server unused; undefined until there are two, and
   * after a reading could not be taken (`unknown`). The guest probes such a server less often.
   */
  idle: boolean | undefined;

  /** a check that could not read the server's activity: it is not known to be idle */
  unknown(): void {
    this.idle = undefined;
  }

  /**
   * The hz to set now, or undefined to leave the server as it is. `groupHz`: the value a
   * configuration group sets, if any (asked only when a change is due: it reads the spec).
   */
  async next(activity: ServerActivity, groupHz: () => Promise<ConfigurationValue | undefined>, now = Date.now()): Promise<number | undefined> {
    const previous = this.previous;
    this.previous = { at: now, connectionsReceived: activity.connectionsReceived };
    if (previous === undefined || !Number.isFinite(activity.hz)) {
      this.idle = undefined;
      return undefined;
    }
    // CLIENT LIST rounds idle time down: a connection whose count is under the time since the
    // previous check may have been quiet since before it, and is taken as used all the same. A
    // count of 0 says "used within the last second", which checks less than a second apart
    // (two in the same millisecond, even) cannot place before or after the previous one: used.
    const sinceSeconds = Math.max((now - previous.at) / 1000, 1);
    const busy =
      activity.connectionsReceived !== previous.connectionsReceived ||
      activity.tenantIdleSeconds.some((idle) => !(idle >= sinceSeconds));
    this.idle = !busy;
    const wanted = busy ? standardHz : idleHz;
    if (activity.hz === wanted || (busy && activity.hz !== idleHz)) return undefined;
    if ((await groupHz()) !== undefined) return undefined;
    return wanted;
  }
}
