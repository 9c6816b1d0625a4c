import type { InstanceRow, ServiceStatusRow, StateStore } from '../db/index.js';

/** What the state DB says of one watched instance at one check. */
export interface WatchedInstance {
  id: string;
  /** undefined once the instance is deleted */
  instance: InstanceRow | undefined;
  status: ServiceStatusRow | undefined;
}

/** Reads the rows and says whether the wait is over: any value but undefined ends it. */
export type WaitDecision<T> = (rows: WatchedInstance[]) => T | undefined | Promise<T | undefined>;

export interface WaitOptions {
  timeoutMs: number;
  signal: AbortSignal;
}

/**
 * The one way a flow waits on its instances. The state DB is the truth: the waiter reads it, and
 * between reads sleeps until the conductor's status event for one of the instances arrives
 * (notify) or the safety-net interval passes. So a flow ends within moments of the heartbeat
 * that lets it, without a DB query every few milliseconds; an event lost on the bus only costs
 * the safety-net interval.
 */
export class InstanceWaiter {
  private readonly wakers = new Map<string, Set<() => void>>();

  constructor(
    private readonly store: StateStore,
    /** how long a wait sleeps at most without an event before it reads the state DB again */
    private readonly safetyPollMs: number,
  ) {}

  /** The conductor recorded a new status for `instanceId`: every wait on it reads the DB again. */
  notify(instanceId: string): void {
    for (const wake of this.wakers.get(instanceId) ?? []) wake();
  }

  /** `decide`'s first value other than undefined; undefined when `timeoutMs` passed first. */
  async waitFor<T>(instanceIds: readonly string[], decide: WaitDecision<T>, options: WaitOptions): Promise<T | undefined> {
    const deadline = Date.now() + options.timeoutMs;
    let woken = false;
    let wakeSleeper: (() => void) | undefined;
    const wake = () => {
      woken = true;
      wakeSleeper?.();
    };
    // Registered before the first read: an event that comes while the DB is read is not lost.
    for (const id of instanceIds) {
      let set = this.wakers.get(id);
      if (set === undefined) this.wakers.set(id, (set = new Set()));
      set.add(wake);
    }
    try {
      for (;;) {
        options.signal.throwIfAborted();
        woken = false;
        const rows = await Promise.all(instanceIds.map((id) => this.read(id)));
        const verdict = await decide(rows);
        if (verdict !== undefined) return verdict;
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        if (!woken) await this.sleep(Math.min(this.safetyPollMs, left), options.signal, (resolve) => (wakeSleeper = resolve));
        wakeSleeper = undefined;
      }
    } finally {
      for (const id of instanceIds) {
        const set = this.wakers.get(id);
        set?.delete(wake);
        if (set?.size === 0) this.wakers.delete(id);
      }
    }
  }

  private async read(id: string): Promise<WatchedInstance> {
    const [instance, status] = await Promise.all([this.store.instances.get(id), this.store.serviceStatuses.get(id)]);
    return { id, instance, status };
  }

  private sleep(ms: number, signal: AbortSignal, onWake: (resolve: () => void) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', aborted);
        resolve();
      };
      const aborted = () => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', aborted, { once: true });
      onWake(done);
    });
  }
}
