import type { Logger } from '../common/index.js';

// One round of health checks per host. Each guest used to keep a timer of its own and check its
// engine whenever it fired; a host of a thousand idle instances then woke a thousand times per
// interval at moments nothing arranged (all at once after an agent restart re-adopted them).
// The round wakes `slices` times per interval and checks one slice of its members each time, so
// every member is checked once per interval, the host's checks are spread evenly over it, a
// few run at a time, and the checks that finish together can share what follows them (their
// heartbeats go to the conductor in one message: heartbeat-batch.ts).

/** What a guest needs of its host's round (tests drive one by hand). */
export interface RoundOfChecks {
  /** checks `check` once per interval from now on; answers the function that takes it out */
  join(check: () => Promise<void>): () => void;
}

export interface CheckRoundOptions {
  /** how often each member is checked */
  intervalMs: number;
  /** how many parts the interval is cut into, one slice of the members checked in each; default 10 */
  slices?: number;
  /**
   * how many checks run at once on the host; default 16. A check that restarts a crashed engine
   * holds its place until the engine serves: enough places that a few such keep no other
   * instance's beat waiting long.
   */
  concurrency?: number;
  logger: Logger;
}

interface Member {
  check(): Promise<void>;
  running: boolean;
}

export class CheckRound implements RoundOfChecks {
  readonly intervalMs: number;
  private readonly slots: Set<Member>[];
  private readonly concurrency: number;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private next = 0;
  private active = 0;
  private readonly waiting: Member[] = [];

  constructor(options: CheckRoundOptions) {
    const slices = options.slices ?? 10;
    const concurrency = options.concurrency ?? 16;
    if (!(options.intervalMs > 0) || !Number.isInteger(slices) || slices < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`A check round needs a positive interval, slices and concurrency, not ${options.intervalMs} ms, ${slices}, ${concurrency}.`);
    }
    this.intervalMs = options.intervalMs;
    this.slots = Array.from({ length: slices }, () => new Set<Member>());
    this.concurrency = concurrency;
    this.logger = options.logger;
  }

  /** how many members the round checks */
  get size(): number {
    return this.slots.reduce((sum, slot) => sum + slot.size, 0);
  }

  /**
   * Checks `check` once per interval from now on, in the slice with the fewest members (its first
   * check within an interval); a check still running when its turn comes again is not doubled.
   * Answers the function that takes it out of the round.
   */
  join(check: () => Promise<void>): () => void {
    const member: Member = { check, running: false };
    const slot = this.slots.reduce((least, candidate) => (candidate.size < least.size ? candidate : least));
    slot.add(member);
    this.timer ??= this.schedule();
    return () => {
      slot.delete(member);
      if (this.size === 0) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
    };
  }

  private schedule(): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const slot = this.slots[this.next]!;
      this.next = (this.next + 1) % this.slots.length;
      for (const member of slot) {
        if (member.running) continue;
        member.running = true;
        this.waiting.push(member);
      }
      this.drain();
      this.timer = this.schedule();
    }, this.intervalMs / this.slots.length);
    // a host with nothing else to do may stop: the guests' checks do not hold it up
    timer.unref();
    return timer;
  }

  private drain(): void {
    while (this.active < this.concurrency && this.waiting.length > 0) {
      const member = this.waiting.shift()!;
      this.active += 1;
      member
        .check()
        .catch((err: unknown) => this.logger.error({ err }, 'health check failed'))
        .finally(() => {
          member.running = false;
          this.active -= 1;
          this.drain();
        });
    }
  }
}
