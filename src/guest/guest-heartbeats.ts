import { randomUUID } from 'node:crypto';
import type { conductorContract, GuestServiceStatus, InstanceTlsReport, RpcClient } from '../bus/index.js';
import type { EngineMetrics, Logger } from '../common/index.js';
import type { HeartbeatBatch } from './heartbeat-batch.js';
import { RepeatedBeats } from './repeated-beats.js';
import { volumeFullMessage, volumeNearlyFullMessage, type VolumeCheck, type VolumeGuard } from './volume-guard.js';

// One guest's heartbeats to the conductor: the status its check or operation found, with what
// rides along when it is due (the volume's usage, the certificate's report, the engine's
// metrics). A periodic beat goes in the host's batch (heartbeat-batch.ts) and only when it says
// something new or its last twin is old (repeated-beats.ts); an operation's beat goes alone, after
// any periodic one still waiting.

export interface GuestHeartbeatsOptions {
  instanceId: string;
  conductor: RpcClient<typeof conductorContract>;
  /** holds the engine to its volume size; a healthy beat measures it */
  volume: VolumeGuard;
  /** what the engine measures of itself (over the health check's kept connection) */
  metrics(): Promise<EngineMetrics | undefined>;
  /** the installed certificate as the API shows it (certificate-renewal.ts); a new object when it changes */
  tls(): InstanceTlsReport | undefined;
  /** sends the periodic beats of the host's guests together; absent: each alone */
  batch?: HeartbeatBatch;
  /** how often the host's round checks the guest */
  checkIntervalMs: number;
  /** how often a healthy beat carries the engine's metrics */
  engineMetricsIntervalMs: number;
  logger: Logger;
}

/** the usage (and the TLS report) ride along again every few minutes */
const usageIntervalMs = 5 * 60_000;

export class GuestHeartbeats {
  private usageReportedAt = 0;
  private metricsReportedAt = 0;
  /** the TLS report the conductor last received */
  private tlsReported: InstanceTlsReport | undefined;
  private tlsReportedAt = 0;
  /** the periodic beat waiting in the host's batch, if any: the guest's next beat goes after it */
  private batched: Promise<void> = Promise.resolve();
  /** periodic beats that say nothing new are thinned out */
  private readonly repeats: RepeatedBeats;

  constructor(private readonly options: GuestHeartbeatsOptions) {
    this.repeats = new RepeatedBeats(3 * options.checkIntervalMs);
  }

  /**
   * `periodic`: the host round's beat, which goes only when it says something new or its last
   * twin is old. `measure`: a beat whose check just asked the engine over the kept connection may
   * carry the engine's metrics (asked over that same connection: no login shows in the engine's
   * logs between two checks). Never rejects: a beat not sent is logged, and the next says it again.
   */
  async send(reported: GuestServiceStatus, reportedMessage?: string, periodic = false, measure = periodic): Promise<void> {
    const { instanceId, conductor, logger } = this.options;
    // again every few minutes too: a cast that reached the bus may still be lost or arrive stale
    const current = this.options.tls();
    const tlsDue = current !== this.tlsReported || Date.now() - this.tlsReportedAt >= usageIntervalMs;
    const tls = tlsDue ? current : undefined;
    try {
      const volume = await this.volumeCheck(reported);
      const { status, message } = volumeStatus(reported, reportedMessage, volume);
      const usageDue = volume !== undefined && volume.measured && (volume.changed || Date.now() - this.usageReportedAt >= usageIntervalMs);
      const usage = usageDue ? { volumeUsedBytes: volume.reading.usedBytes } : {};
      const engineMetrics = measure && status === 'HEALTHY' ? await this.engineMetricsDue() : undefined;
      const summary = { status, message, carriesNews: usage.volumeUsedBytes !== undefined || tls !== undefined || engineMetrics !== undefined };
      if (periodic && !this.repeats.due(summary)) return;
      const beat = {
        instanceId,
        status,
        ...(message === undefined ? {} : { message }),
        ...usage,
        ...(tls === undefined ? {} : { tls }),
        ...(engineMetrics === undefined ? {} : { engineMetrics }),
      };
      const sent = () => {
        this.repeats.sent(summary);
        // a usage that never left is sent again with the next HEALTHY beat, not minutes later
        if (usage.volumeUsedBytes !== undefined) this.usageReportedAt = Date.now();
        if (engineMetrics !== undefined) this.metricsReportedAt = Date.now();
        if (tls !== undefined) {
          this.tlsReported = tls;
          this.tlsReportedAt = Date.now();
        }
      };
      const batch = this.options.batch;
      if (periodic && batch !== undefined) {
        // the check ends now (the host's round goes on with its others); the beat goes with its
        // slice's, before any beat this guest sends after it
        const going = batch.send(beat).then(sent, (err: unknown) => logger.warn({ err, status: reported }, 'heartbeat not sent'));
        this.batched = going;
        return;
      }
      await this.batched;
      await conductor.heartbeat(beat, { requestId: `req-${randomUUID()}`, instanceId });
      sent();
    } catch (err) {
      logger.warn({ err, status: reported }, 'heartbeat not sent');
    }
  }

  /**
   * Walking the volume costs a few ms per instance; on every heartbeat of a thousand instances
   * that adds up, so the guard measures a volume well below its size once a minute (one near it
   * on every check), and the usage rides along only every few minutes, with the first HEALTHY
   * beat (views show what the conductor stored, so a new instance's usage should not wait
   * minutes) and when the volume's state changes.
   */
  private async volumeCheck(status: GuestServiceStatus): Promise<VolumeCheck | undefined> {
    // the volume is held while the engine serves; a stopped or failing one writes nothing
    if (status !== 'HEALTHY') return undefined;
    try {
      return await this.options.volume.check();
    } catch (err) {
      // the status matters more than the usage: the beat goes without it
      this.options.logger.warn({ err }, 'volume usage not measured or not enforced');
      return undefined;
    }
  }

  /** The engine's metrics when a beat is due to carry them; a failed measurement waits for the next interval (one warning each). */
  private async engineMetricsDue(): Promise<EngineMetrics | undefined> {
    // due up to half a check early: an idle engine is asked once a minute, and a minute's metrics
    // must not wait for the probe after
    const interval = this.options.engineMetricsIntervalMs - this.options.checkIntervalMs / 2;
    if (Date.now() - this.metricsReportedAt < interval) return undefined;
    return this.options.metrics().catch((err: unknown) => {
      this.options.logger.warn({ err }, 'engine metrics not measured');
      this.metricsReportedAt = Date.now();
      return undefined;
    });
  }
}

/**
 * A healthy engine's beat says how full its volume is: BLOCKED with the fault's message once it
 * is full (the message once, when it fills: the conductor keeps the fault), and HEALTHY with a
 * warning (the same words each time, recorded once) near the size.
 */
function volumeStatus(status: GuestServiceStatus, message: string | undefined, volume: VolumeCheck | undefined) {
  if (volume?.reading.state === 'full') {
    return { status: 'BLOCKED' as const, message: volume.changed ? volumeFullMessage(volume.reading) : undefined };
  }
  if (volume?.reading.state === 'nearly full' && message === undefined) return { status, message: volumeNearlyFullMessage };
  return { status, message };
}
