import type { BusMessage } from './transport.js';

// Counts the failed attempts at each cast this process handles, so a cast whose handler keeps
// failing with a transient error is redelivered a bounded number of times. AMQP 0-9-1 classic
// queues carry no delivery count (only a `redelivered` flag), so the count lives here: with
// competing consumers each process bounds its own attempts. A message is named by its request
// id, method and send time, which the sender sets once and the signature covers.

/** entries of casts that went to another consumer and never came back are forgotten after this */
const keepMs = 15 * 60_000;

interface Entry {
  failures: number;
  firstSeen: number;
}

function keyOf(message: BusMessage): string {
  return `${message.context.requestId}\u0000${message.service}.${message.method}\u0000${message.sentAt}`;
}

export class CastAttempts {
  private readonly entries = new Map<string, Entry>();

  constructor(readonly max: number) {}

  /** records a failed attempt and answers how many there have been */
  failed(message: BusMessage, now = Date.now()): number {
    this.prune(now);
    const key = keyOf(message);
    const entry = this.entries.get(key) ?? { failures: 0, firstSeen: now };
    entry.failures++;
    this.entries.set(key, entry);
    return entry.failures;
  }

  forget(message: BusMessage): void {
    this.entries.delete(keyOf(message));
  }

  // Insertion order is first-seen order, so the stale entries come first.
  private prune(now: number): void {
    for (const [key, entry] of this.entries) {
      if (now - entry.firstSeen < keepMs) return;
      this.entries.delete(key);
    }
  }
}
