// Whether anyone but the guest uses a PostgreSQL server, read by the health check's own query
// (one round trip, as before: it replaces `SELECT 1`). While the server is idle the guest asks it
// only once a minute and looks at the postmaster's pid in between (probe-spacing.ts): a dead
// postmaster is still seen at the next check, a hung one within a minute. Nothing else depends
// on it (PostgreSQL has no timer to slow down, unlike Redis's hz: idle-hz.ts), so a session that
// came and went unseen costs only that a hang is seen later.

/**
 * The health check's query. `sessions`: client sessions ever opened, all databases (PostgreSQL 14
 * and later; null before: every check then takes the server as used). `busy`: other client
 * sessions (not the guest's own role) in a statement or a transaction now. `quiet_s`: seconds
 * since the most recent change of state of any other client session (null with none).
 */
export const activityQuery = `SELECT
  (SELECT sum(sessions)::text FROM pg_stat_database) AS sessions,
  count(*) FILTER (WHERE state IS DISTINCT FROM 'idle') AS busy,
  extract(epoch FROM clock_timestamp() - max(state_change))::float8 AS quiet_s
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename IS DISTINCT FROM current_user`;

export interface ServerActivity {
  sessions: string | null;
  busy: number;
  quietSeconds: number | null;
}

/** The row of activityQuery as the pg client returns it. */
export function parseActivity(row: { sessions: string | null; busy: string | number; quiet_s: number | null }): ServerActivity {
  return { sessions: row.sessions, busy: Number(row.busy), quietSeconds: row.quiet_s };
}

/**
 * Idle means: since the previous probe no client session was opened (the guest's kept one stays
 * open), none of another role's is in a statement or transaction, and none changed state. Unknown
 * (undefined) until two readings, and after a probe that read nothing.
 */
export class IdleActivity {
  private previous: { at: number; sessions: string | null } | undefined;
  idle: boolean | undefined;

  observe(activity: ServerActivity | undefined, now = Date.now()): void {
    const previous = this.previous;
    this.previous = activity === undefined ? undefined : { at: now, sessions: activity.sessions };
    if (activity === undefined || previous === undefined || activity.sessions === null) {
      this.idle = undefined;
      return;
    }
    const sinceSeconds = (now - previous.at) / 1000;
    this.idle =
      activity.sessions === previous.sessions &&
      activity.busy === 0 &&
      (activity.quietSeconds === null || activity.quietSeconds >= sinceSeconds);
  }
}
