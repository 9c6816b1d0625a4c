// Most of an idle fleet's beats say what the previous one said: HEALTHY, nothing else. Each costs
// the conductor a transaction, and at a thousand instances those writes were a large share of
// Coffer's idle CPU. A periodic beat that carries nothing new is sent only once its last twin is
// older than a few check intervals (three: 30 s at the standard 10 s, against the views' 90 s
// heartbeat expiry), and a new status is sent twice in a row before repeats thin out, since a
// beat is a cast that can be lost.

export interface BeatSummary {
  status: string;
  message: string | undefined;
  /** usage, TLS or metrics ride along: always sent */
  carriesNews: boolean;
}

export class RepeatedBeats {
  private last: { status: string; message: string | undefined; at: number; times: number } | undefined;

  constructor(private readonly keepAliveMs: number) {}

  /** whether a periodic beat must go out now */
  due(beat: BeatSummary, now = Date.now()): boolean {
    const last = this.last;
    if (beat.carriesNews || last === undefined || last.status !== beat.status || last.message !== beat.message) return true;
    return last.times < 2 || now - last.at >= this.keepAliveMs;
  }

  /** records a beat that went out (periodic or not) */
  sent(beat: BeatSummary, now = Date.now()): void {
    const same = this.last !== undefined && this.last.status === beat.status && this.last.message === beat.message;
    this.last = { status: beat.status, message: beat.message, at: now, times: same ? this.last!.times + 1 : 1 };
  }
}
