import type { Logger } from '../common/index.js';
import { directoryUsage } from './directory-usage.js';

// Holds an instance to its volume size (issue 13). The local driver's volume is the instance's
// directory on the host's filesystem, which has no size of its own: the guest measures it (data,
// logs, temporary files, backups in progress: all of it lives there) and, once it reaches the
// size, puts the engine in read-only mode until a resize gives it room. Near the size it warns.

export type VolumeState = 'ok' | 'nearly full' | 'full';

/** from this share of the size on the guest warns */
export const warnAtFraction = 0.9;
/** how often a volume well below its size is measured; near or at it, on every check */
const measureEveryMs = 60_000;
/**
 * How often a volume under half its size is measured while its engine is quiet (nobody used it
 * between its last two probes): walking a PostgreSQL instance's 1,300 entries once a minute was
 * the largest share of an idle host's CPU, and an engine nobody uses does not fill its volume.
 * The first check after a probe that found the engine used measures again if the last
 * measurement is a minute old: a volume that starts filling is seen as soon as before.
 */
const quietMeasureEveryMs = 5 * 60_000;

export interface VolumeReading {
  usedBytes: number;
  sizeBytes: number;
  state: VolumeState;
}

export interface VolumeCheck {
  reading: VolumeReading;
  /** measured by this check (not the last measurement again) */
  measured: boolean;
  /** the state differs from the previous check's */
  changed: boolean;
}

const bytesPerGb = 1024 ** 3;
const gb = (bytes: number) => (Math.round((bytes / bytesPerGb) * 100) / 100).toString();

export function volumeState(usedBytes: number, sizeBytes: number): VolumeState {
  if (usedBytes >= sizeBytes) return 'full';
  return usedBytes >= sizeBytes * warnAtFraction ? 'nearly full' : 'ok';
}

/** The first line of a full volume's fault: what happened and what lifts it. */
export function volumeFullMessage(reading: VolumeReading): string {
  return (
    `The volume is full (${gb(reading.usedBytes)} of ${gb(reading.sizeBytes)} GB used): ` +
    'writes are refused until it is resized (coffer instance resize-volume).'
  );
}

/** Stable (no figures) so that the conductor records it once, not on every measurement. */
export const volumeNearlyFullMessage =
  `The volume is over ${Math.round(warnAtFraction * 100)}% full: resize it (coffer instance resize-volume) ` +
  'before it fills; a full volume refuses writes.';

export interface VolumeGuardOptions {
  dir: string;
  /** the volume size; fractions are allowed (tests make it tiny) */
  sizeGb: number;
  /** the engine's read-only switch (EngineLifecycle.refuseWrites) */
  refuseWrites(refused: boolean): Promise<void>;
  /** whether the engine said at its last probe that nobody used it since the one before (EngineLifecycle.idle); absent: never */
  quiet?(): boolean;
  logger: Logger;
}

export class VolumeGuard {
  private sizeGb: number;
  private last: VolumeReading | undefined;
  private measuredAt = 0;
  /** what the engine was last told; undefined until then (a previous guest may have left it read-only) */
  private writesRefused: boolean | undefined;

  constructor(private readonly options: VolumeGuardOptions) {
    this.sizeGb = options.sizeGb;
  }

  /**
   * The engine was just made from nothing (a prepare's fresh data, no backup, no source): no guest
   * ever told it to refuse writes, so the first check need not lift a refusal (a connection to
   * the engine on the path of every create). A full volume is still refused at that check.
   */
  startedFresh(): void {
    this.writesRefused ??= false;
  }

  get sizeBytes(): number {
    return Math.floor(this.sizeGb * bytesPerGb);
  }

  /** A resize: the next check measures again against the new size. */
  resize(sizeGb: number): void {
    this.sizeGb = sizeGb;
    this.measuredAt = 0;
  }

  /**
   * Measures when due (a volume near or at its size on every check, writes can fill it fast) and
   * puts the running engine's writes in step with the state. The switch is asked again on every
   * check of a full volume: an engine that restarted meanwhile has forgotten it.
   */
  async check(now = Date.now()): Promise<VolumeCheck> {
    const previous = this.last;
    const due = previous === undefined || previous.state !== 'ok' || now - this.measuredAt >= this.measureEvery(previous) || previous.sizeBytes !== this.sizeBytes;
    let reading = previous;
    if (due || reading === undefined) {
      const usedBytes = await directoryUsage(this.options.dir);
      reading = { usedBytes, sizeBytes: this.sizeBytes, state: volumeState(usedBytes, this.sizeBytes) };
    }
    const refuse = reading.state === 'full';
    if (refuse || this.writesRefused !== false) {
      await this.options.refuseWrites(refuse);
      if (refuse !== (this.writesRefused ?? false)) {
        this.options.logger[refuse ? 'warn' : 'info'](
          { usedBytes: reading.usedBytes, sizeBytes: reading.sizeBytes },
          refuse ? 'volume full: the engine refuses writes' : 'volume below its size: the engine takes writes',
        );
      }
      this.writesRefused = refuse;
    }
    // kept only once the engine is in step: a switch that failed leaves the change to the next check, which says it then
    if (due) {
      this.measuredAt = now;
      this.last = reading;
    }
    return { reading, measured: due, changed: previous?.state !== reading.state };
  }

  private measureEvery(previous: VolumeReading): number {
    return previous.usedBytes * 2 < previous.sizeBytes && this.options.quiet?.() === true ? quietMeasureEveryMs : measureEveryMs;
  }
}
