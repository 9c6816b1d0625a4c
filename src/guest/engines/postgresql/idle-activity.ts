// Whether anyone but the guest uses a PostgreSQL server, read by the health check's own query
// (one round trip, as before: it replaces `SELECT 1`). While the server is idle the guest asks it
// only once a minute and looks at the postmaster's pid in between (probe-spacing.ts): a dead
// postmaster is still seen at the next check, a hung one within a minute. Nothing else depends
// on it (PostgreSQL has no timer to slow down, unlike Redis's hz: idle-hz.ts), so a session that
// came and went unseen costs only that a hang is seen later.

/**
 * The health check's query. `sessions`: client sessions ever opened, all databases (PostgreSQL 14
 * and later; null before: every check then takes the server as used). `busy`: other client
 * sessions (not the guest's own role) in a statement or a transaction now. `checked_at`: the
 * server's clock now; `changed_at`: the most recent change of state of any other client session
 * (null with none). Both are the server's times, in seconds to the microsecond: compared with
 * each other only, never with the guest's clock, whose milliseconds could put a statement that
 * ended just after one check before it (and the next check would not see it).
 */
export const activityQuery = `SELECT
  (SELECT sum(sessions)::text FROM pg_stat_database) AS sessions,
  count(*) FILTER (WHERE state IS DISTINCT FROM 'idle') AS busy,
  extract(epoch FROM clock_timestamp())::float8 AS checked_at,
  extract(epoch FROM max(state_change))::float8 AS changed_at
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename IS DISTINCT FROM current_user`;

export interface ServerActivity {
  sessions: string | null;
  busy: number;
  /** the server's clock at the check, seconds since the epoch */
  checkedAt: number;
  /** the server's time of the most recent change of state of another client session */
  changedAt: number | null;
}

/** The row of activityQuery as the pg client returns it. */
export function parseActivity(row: { sessions: string | null; busy: string | number; checked_at: number; changed_at: number | null }): ServerActivity {
  return { sessions: row.sessions, busy: Number(row.busy), checkedAt: row.checked_at, changedAt: row.changed_at };
}

/**
 * Idle means: since the previous probe no client session was opened (the guest's kept one stays
 * open), none of another role's is in a statement or transaction, and none changed state. Unknown
 * (undefined) until two readings, and after a probe that read nothing.
 */
export class IdleActivity {
  private previous: ServerActivity | undefined;
  idle: boolean | undefined;

  observe(activity: ServerActivity | undefined): void {
    const previous = this.previous;
    this.previous = activity;
    if (activity === undefined || previous === undefined || activity.sessions === null) {
      this.idle = undefined;
      return;
    }
    this.idle =
      activity.sessions === previous.sessions &&
      activity.busy === 0 &&
      (activity.changedAt === null || activity.changedAt <= previous.checkedAt);
  }
}
