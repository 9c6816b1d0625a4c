import { randomUUID } from 'node:crypto';
import type { conductorContract, HeartbeatInput, RpcClient } from '../bus/index.js';

// The periodic beats of a host's guests, sent together. The host's round checks a slice of its
// guests at once (check-round.ts); each beat sent alone cost the conductor a message and a
// state-database transaction, which at a thousand idle instances was most of what is left of
// Coffer's own idle CPU. A beat waits here at most `gatherMs` for the others of its slice, then
// all go as one `heartbeats` message, handled in one transaction.
//
// A guest's check does not wait for its beat to go; a beat the guest sends itself after it (a
// restart's RESTARTING) waits for the batched one first (guest-heartbeats.ts `batched`), so a conductor that
// orders beats by their sent time never takes the periodic one for the newer.

export interface HeartbeatBatchOptions {
  conductor: RpcClient<typeof conductorContract>;
  /** how long the first beat of a batch waits for others; default 100 ms */
  gatherMs?: number;
  /** a batch this large goes at once; default 200 */
  maxBeats?: number;
}

interface Waiting {
  beat: HeartbeatInput;
  sent: () => void;
  failed: (err: unknown) => void;
}

export class HeartbeatBatch {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly gatherMs: number;
  private readonly maxBeats: number;

  constructor(private readonly options: HeartbeatBatchOptions) {
    this.gatherMs = options.gatherMs ?? 100;
    this.maxBeats = options.maxBeats ?? 200;
  }

  /** resolves once the beat has gone to the conductor with the others gathered meanwhile; rejects when their message could not be sent */
  send(beat: HeartbeatInput): Promise<void> {
    return new Promise((sent, failed) => {
      this.waiting.push({ beat, sent, failed });
      if (this.waiting.length >= this.maxBeats) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.gatherMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length === 0) return;
    this.options.conductor.heartbeats({ beats: batch.map((w) => w.beat) }, { requestId: `req-beats-${randomUUID()}` }).then(
      () => batch.forEach((w) => w.sent()),
      (err: unknown) => batch.forEach((w) => w.failed(err)),
    );
  }
}
