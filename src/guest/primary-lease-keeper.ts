import { randomUUID } from 'node:crypto';
import type { conductorContract, RpcClient } from '../bus/index.js';
import type { Logger, PrimaryLeaseTimes } from '../common/index.js';
import type { RoundOfChecks } from './check-round.js';
import { readEngineSpec } from './engines/engine-spec-file.js';
import type { LeaseWatchdog } from './lease-watchdog.js';

// The guest's half of the primary lease (common/primary-lease.ts). A primary with replicas may
// run its engine only while the control plane keeps renewing its lease; once the lease runs out
// unrenewed (its host cut off from the control plane, the control plane down) or the control
// plane says a failover replaced it, the keeper stops the engine itself, before any replica can
// be promoted, and keeps it stopped until a lease is granted again. So a partition never leaves
// two primaries taking writes: the replica is promoted only after the old primary's deadline.
//
// Whether the instance is such a primary comes from its saved engine spec (a source with
// replicas); every other instance needs no lease and is left alone.

/** Where the lease stands. `idle`: no lease needed; `unknown`: needed, not granted since the guest started. */
export type LeaseState = 'idle' | 'unknown' | 'held' | 'lost' | 'fenced';

/** how often an instance that needs no lease looks again at whether it does */
export const idleCheckMs = 30_000;

export interface PrimaryLeaseKeeperOptions {
  instanceId: string;
  /** the instance directory, with the saved engine spec */
  dir: string;
  conductor: RpcClient<typeof conductorContract>;
  logger: Logger;
  times: PrimaryLeaseTimes;
  /** stops the engine at once; called again on each tick while the lease is not held and the engine runs */
  fence(reason: string): Promise<void>;
  /** a lease was granted after none was held: the engine may be started again if it should run */
  regained(): void;
  /** the running engine's pid, for the watchdog */
  enginePid(): Promise<number | undefined>;
  /** kills the engine should the guest itself not stop it by the deadline (absent: tests of the keeper alone) */
  watchdog?: LeaseWatchdog;
  /**
   * The host's round of checks: while the instance needs no lease (nearly all do not), its slow
   * look at the spec is taken in the round's turns instead of on a timer of the keeper's own (a
   * thousand instances, a thousand timers). Its interval must not exceed `idleCheckMs`. Absent: a
   * timer of its own.
   */
  round?: RoundOfChecks;
  /** how often an instance that needs no lease looks again at whether it does; default 30 s */
  idleCheckMs?: number;
}

export class PrimaryLeaseKeeper {
  private state: LeaseState = 'idle';
  /** performance.now() when the held lease runs out */
  private deadline = 0;
  private timer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private ticking: Promise<void> = Promise.resolve();
  /**
   * The watchdog's file is gone since the last look: an instance that needs no lease (nearly all)
   * then removes nothing every 30 s. The first look after the guest starts removes one left by an
   * earlier lease (replicas removed while the guest was away).
   */
  private disarmed = false;
  private leaveRound: (() => void) | undefined;
  /** when an instance that needs no lease last looked (a round's turn looks again once idleCheckMs passed) */
  private idleLookedAt = 0;
  /** a look a round's turn started is still under way */
  private looking = false;

  constructor(private readonly options: PrimaryLeaseKeeperOptions) {}

  get current(): LeaseState {
    return this.state;
  }

  /** whether a stopped engine may be started: the instance needs no lease or holds one */
  mayStart(): boolean {
    return this.state === 'idle' || this.state === 'held';
  }

  /** whether a running engine must be stopped: the lease ran out, or a failover replaced the primary */
  mustStop(): boolean {
    return this.state === 'lost' || this.state === 'fenced';
  }

  start(): void {
    const round = this.options.round;
    if (round !== undefined) {
      // the turn only starts the look: a renewal it leads to must not hold one of the host's check places
      this.leaveRound = round.join(async () => {
        if (this.closed || this.looking || this.state !== 'idle' || Date.now() - this.idleLookedAt < this.idleCheckMs) return;
        this.looking = true;
        clearTimeout(this.timer);
        this.ticking = this.ticking
          .then(() => this.tick())
          .finally(() => {
            this.looking = false;
            this.scheduleNext();
          });
      });
    }
    this.schedule(0);
  }

  private get idleCheckMs(): number {
    return this.options.idleCheckMs ?? idleCheckMs;
  }

  /** asks now (a replica was just added, a promotion made this instance a source), then on the usual period */
  renewNow(): Promise<void> {
    clearTimeout(this.timer);
    this.ticking = this.ticking.then(() => this.tick()).finally(() => this.scheduleNext());
    return this.ticking;
  }

  /**
   * The agent stops for a restart: a held lease is stretched once, to restartHoldMs, so that the
   * engine runs on and nothing fails over while the agent comes back; the watchdog guards the
   * new deadline. Unanswered, the lease ends as it would have.
   */
  async holdForRestart(): Promise<void> {
    await this.ticking;
    if (this.state !== 'held' || this.closed) return;
    const { conductor, instanceId, times, logger } = this.options;
    const sentAt = performance.now();
    try {
      const answer = await conductor.renewLease({ instanceId, holdMs: times.restartHoldMs }, { requestId: `lease-${randomUUID()}`, instanceId });
      if (answer.lease !== 'held') return;
      this.deadline = sentAt + answer.ttlMs;
      this.disarmed = false;
      await this.options.watchdog?.arm(Date.now() + (this.deadline - performance.now()), await this.options.enginePid());
      logger.info({ holdMs: answer.ttlMs }, 'primary lease held through the agent restart');
    } catch (err) {
      logger.warn({ err: { message: (err as Error).message } }, 'primary lease not stretched for the restart');
    }
  }

  /** the guest stops (its agent does): the watchdog stays, and guards the engine until a guest renews again */
  async close(): Promise<void> {
    this.closed = true;
    this.leaveRound?.();
    clearTimeout(this.timer);
    clearTimeout(this.deadlineTimer);
    await this.ticking;
  }

  /** the instance is deleted: nothing is left to guard */
  async destroy(): Promise<void> {
    await this.close();
    await this.options.watchdog?.stop();
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.ticking = this.ticking.then(() => this.tick()).finally(() => this.scheduleNext());
    }, delayMs);
    this.timer.unref();
  }

  /**
   * An instance becomes a source with replicas through addReplica, which asks at once (renewNow):
   * until then a slow look at its spec is only a safety net.
   */
  private scheduleNext(): void {
    if (this.state === 'idle' && this.options.round !== undefined) {
      // the round's turns look again
      this.idleLookedAt = Date.now();
      clearTimeout(this.timer);
      return;
    }
    this.schedule(this.state === 'idle' ? this.idleCheckMs : this.options.times.renewMs);
  }

  private async needsLease(): Promise<boolean> {
    const spec = await readEngineSpec(this.options.dir).catch(() => undefined);
    return spec?.replication?.role === 'source' && spec.replication.replicas.length > 0;
  }

  private async tick(): Promise<void> {
    if (this.closed) return;
    const { logger, conductor, instanceId, times } = this.options;
    if (!(await this.needsLease())) {
      this.settle('idle');
      return;
    }
    if (this.state === 'idle') {
      // a running engine gets one lease's time to be granted one (a guest restarted beside it)
      this.state = 'unknown';
      this.deadline = performance.now() + times.ttlMs;
    }
    const sentAt = performance.now();
    try {
      const answer = await conductor.renewLease({ instanceId }, { requestId: `lease-${randomUUID()}`, instanceId });
      if (answer.lease === 'held') {
        const regained = this.state !== 'held';
        this.deadline = sentAt + answer.ttlMs;
        this.state = 'held';
        this.armDeadline();
        this.disarmed = false;
      await this.options.watchdog?.arm(Date.now() + (this.deadline - performance.now()), await this.options.enginePid());
        if (regained) {
          logger.info({ ttlMs: answer.ttlMs }, 'primary lease held');
          this.options.regained();
        }
      } else if (answer.lease === 'none') {
        this.settle('idle');
      } else {
        if (this.state !== 'fenced') logger.error('a failover replaced this primary: its engine stays stopped');
        this.state = 'fenced';
        clearTimeout(this.deadlineTimer);
      }
    } catch (err) {
      // unanswered: the lease runs on to its deadline, and the next tick asks again
      logger.warn({ err: { message: (err as Error).message }, state: this.state }, 'primary lease not renewed');
      if (this.state === 'held' && performance.now() >= this.deadline) this.expire();
    }
    if (this.state === 'lost' || this.state === 'fenced' || (this.state === 'unknown' && performance.now() >= this.deadline)) {
      await this.options.fence(this.state === 'fenced' ? 'replaced by a failover' : `primary lease not held (${times.ttlMs} ms without renewal)`);
    }
  }

  private settle(state: 'idle'): void {
    const regained = this.state === 'lost' || this.state === 'fenced' || this.state === 'unknown';
    this.state = state;
    clearTimeout(this.deadlineTimer);
    if (!this.disarmed) {
      this.disarmed = true;
      this.options.watchdog?.disarm().catch((err: unknown) => {
        this.disarmed = false;
        this.options.logger.error({ err }, 'the lease watchdog could not be stopped');
      });
    }
    if (regained) this.options.regained();
  }

  /** the deadline is kept by a timer of its own: a renewal stuck waiting for its answer must not delay the fence */
  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => this.expire(), Math.max(0, this.deadline - performance.now()));
    this.deadlineTimer.unref();
  }

  private expire(): void {
    if (this.state !== 'held' || performance.now() < this.deadline) return;
    this.state = 'lost';
    this.options.logger.error('primary lease expired unrenewed: stopping the engine so no write is taken while a replica may be promoted');
    this.options.fence('primary lease expired').catch((err: unknown) => this.options.logger.error({ err }, 'fencing the engine failed'));
  }
}
