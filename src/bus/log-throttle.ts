// Keeps a warning that an outsider can trigger at will (a refused bus message, a heartbeat from
// an unknown instance) from flooding the log: one line per key per interval, and the next line
// says how many were left out meanwhile.

export class LogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly intervalMs: number) {}

  /** whether to log now for `key`, and how many lines were left out since the last one */
  take(key: string, now: number = Date.now()): { log: boolean; suppressed: number } {
    const seen = this.last.get(key);
    if (seen !== undefined && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return { log: false, suppressed: 0 };
    }
    if (this.last.size > 1000) this.last.clear(); // keys an attacker chose must not grow without end
    this.last.set(key, { at: now, suppressed: 0 });
    return { log: true, suppressed: seen?.suppressed ?? 0 };
  }
}
