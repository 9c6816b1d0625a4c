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

export const primaryLeaseTimes: PrimaryLeaseTimes = { renewMs: 1_000, ttlMs: 4_000, failoverAfterMs: 5_500, restartHoldMs: 30_000 };
