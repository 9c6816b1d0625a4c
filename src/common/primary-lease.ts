/**
 * The primary lease (issue 11's fencing). A primary with replicas and failover on may take writes
 * only while its guest holds a lease the control plane renews: the guest asks every `renewMs`,
 * and counts a granted lease from the moment it *sent* the request, for `ttlMs`; when that runs
 * out unrenewed it stops its engine itself. The control plane records the renewal when it
 * *receives* the request, and starts a failover only once `failoverAfterMs` passed since: the
 * guest's deadline always falls first, by the margin between the two, which covers a stop of the
 * engine and a busy event loop. Shared by the conductor (grants), the guest (fences) and the
 * taskmanager (fails over), so the three cannot disagree.
 */
export interface PrimaryLeaseTimes {
  renewMs: number;
  ttlMs: number;
  failoverAfterMs: number;
  /**
   * the longest lease a guest may ask for once when its agent stops for a restart (an upgrade):
   * the engine runs on, and no failover happens, while the agent comes back within it
   */
  restartHoldMs: number;
}

// The margin between the guest's deadline and a failover (3 s) covers a guest whose timer fires
// late on a loaded host (seen: 1.3 s on a busy 2-core machine) and the watchdog's grace behind it.
export const primaryLeaseTimes: PrimaryLeaseTimes = { renewMs: 1_000, ttlMs: 4_000, failoverAfterMs: 7_000, restartHoldMs: 30_000 };
