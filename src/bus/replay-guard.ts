// Remembers the ids of the signed messages this process took, for as long as their signature
// stays acceptable, to tell a broker's redelivery from a replay.
//
// A broker redelivers a message whose handler never settled (it threw, or its consumer or
// connection went away) and marks it `redelivered`, a flag only the broker sets. A replay is a
// copy published again by someone else: the broker hands it out as new. So:
// - an id never seen is new;
// - an id whose handler settled (answered, even with an error) is never run again: a new copy
//   is a replay, a redelivered one is an acknowledgement the broker lost (dropped quietly);
// - an id whose handler threw, or is still running, is run again only when the broker says it
//   is a redelivery (the handler threw, or its consumer went away mid-way); a copy the broker
//   hands out as new meanwhile is a replay.
// The memory is per process: a replay delivered to another process consuming the same topic
// (competing taskmanagers or conductors), or to a receiver restarted since, passes this check;
// the window on the sent time bounds how long that is possible.

export type Admission = 'new' | 'redelivery' | 'replay' | 'already-handled';

type State = 'handling' | 'released' | 'done';

interface Entry {
  state: State;
  /** forgotten after this (epoch ms): by then its sent time is outside the window anyway */
  keepUntil: number;
}

export class ReplayGuard {
  private readonly entries = new Map<string, Entry>();

  /** `keepMs` covers the window plus the allowed clock skew */
  constructor(private readonly keepMs: number) {}

  admit(id: string, redelivered: boolean, now: number): Admission {
    this.prune(now);
    const entry = this.entries.get(id);
    if (entry === undefined) {
      this.entries.set(id, { state: 'handling', keepUntil: now + this.keepMs });
      return 'new';
    }
    if (entry.state === 'done') return redelivered ? 'already-handled' : 'replay';
    if (!redelivered) return 'replay';
    entry.state = 'handling';
    return 'redelivery';
  }

  /** the handler answered: the message is done, whatever it answered */
  settled(id: string): void {
    const entry = this.entries.get(id);
    if (entry !== undefined) entry.state = 'done';
  }

  /** the handler threw: the transport offers the message again */
  released(id: string): void {
    const entry = this.entries.get(id);
    if (entry !== undefined && entry.state === 'handling') entry.state = 'released';
  }

  get size(): number {
    return this.entries.size;
  }

  // Entries are added in arrival order with the same lifetime, so the expired ones come first.
  private prune(now: number): void {
    for (const [id, entry] of this.entries) {
      if (entry.keepUntil > now) return;
      this.entries.delete(id);
    }
  }
}
