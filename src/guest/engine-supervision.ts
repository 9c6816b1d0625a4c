import type { GuestServiceStatus } from '../bus/index.js';
import type { Logger } from '../common/index.js';
import type { CertificateRenewal } from './certificate-renewal.js';
import type { EngineLifecycle } from './engines/engine.js';
import { faultMessage } from './fault-message.js';
import type { PrimaryLeaseKeeper } from './primary-lease-keeper.js';
import type { ProbeSpacing } from './probe-spacing.js';

// A prepared instance's health check: what the engine's state is against what it should be, what
// is done about it (a crashed engine restarted, one that runs but should not stopped, one without
// its primary lease fenced), and the beat that reports it. The guest runs it in its operation
// queue: from the host's round (check-round.ts), when it adopts its engine, and after operations
// that want the state reported now.

export interface EngineSupervisionOptions {
  engine: Pick<EngineLifecycle, 'start' | 'stop' | 'processId'>;
  /** how the engine's health is found (an idle one is asked less often) */
  probes: ProbeSpacing;
  certificate: CertificateRenewal;
  /** sends a beat (`periodic`: the round's, thinned out; `measure`: it may carry the engine's metrics) */
  heartbeat(status: GuestServiceStatus, message?: string, periodic?: boolean, measure?: boolean): Promise<void>;
  /** a primary with replicas runs its engine only while it holds its lease */
  lease: PrimaryLeaseKeeper | undefined;
  /** stops an engine whose lease is not held, and reports it */
  fenceForLease(reason: string): Promise<void>;
  /** whether the engine should be running */
  desired(): 'running' | 'stopped';
  logger: Logger;
}

export class EngineSupervision {
  /** the first check after the guest starts adopts what it finds (a prepare's engine is not adopted) */
  adopting = false;
  /** why the last restart by supervision failed, while the engine stays down */
  private restartFailure: string | undefined;

  constructor(private readonly options: EngineSupervisionOptions) {}

  /** `periodic`: the host round's check (its beats thin out, an idle engine is asked less often), not an operation's */
  async check(periodic = false): Promise<void> {
    const { engine, certificate, lease, logger } = this.options;
    const heartbeat = this.options.heartbeat;
    if (certificate.due()) {
      // an expiring certificate is renewed on the next check if this one fails; the engine's health comes first
      await certificate.renew(false, logger).catch((err) => logger.error({ err }, 'certificate renewal failed'));
    }
    if (lease?.mustStop() === true) return this.options.fenceForLease(`primary lease ${lease.current}`);
    const { health, asked } = await this.options.probes.observe(periodic);
    const adopting = this.adopting;
    this.adopting = false;
    const desired = this.options.desired();
    // what a host that came back found, and what it will make of it (operators, and tests, read it)
    if (adopting) logger.info({ health, desired }, 'instance adopted');
    if (health !== 'stopped' || desired === 'stopped') this.restartFailure = undefined;
    if (desired === 'stopped' && health !== 'stopped') {
      // Its owner stopped it (or an admin did): an engine found running anyway (a stop cut short
      // by the host going down, a start from outside Coffer) is stopped again, so that a stopped
      // instance holds no memory, whatever adoption finds.
      logger.warn({ pid: await engine.processId() }, 'engine runs but should be stopped: stopping it');
      await engine.stop();
      return heartbeat('SHUTDOWN');
    }
    if (health === 'healthy') return heartbeat('HEALTHY', undefined, periodic, asked);
    if (health === 'running') return heartbeat('RUNNING');
    if (desired === 'stopped') return heartbeat('SHUTDOWN');
    if (lease?.mayStart() === false) {
      logger.warn('engine should run but its primary lease is not granted yet: it stays stopped');
      return heartbeat('SHUTDOWN', 'The engine waits for the control plane to grant its primary lease.');
    }
    if (adopting) {
      // found stopped when the host came up (e.g. after a reboot): a start, not a crash
      logger.info('engine should run but does not: starting it');
    } else if (this.restartFailure === undefined) {
      logger.warn('engine should run but stopped: restarting it');
      await heartbeat('CRASHED', 'The database process stopped unexpectedly; restarting it.');
    }
    try {
      await engine.start();
      this.restartFailure = undefined;
      logger.info({ pid: await engine.processId() }, 'engine restarted');
      await heartbeat('HEALTHY');
    } catch (err) {
      logger.error({ err }, 'engine restart failed');
      // every message becomes a fault: a restart that keeps failing the same way reports it
      // once (compared without the details, whose log lines carry timestamps)
      const failure = err instanceof Error ? err.message : String(err);
      await heartbeat('CRASHED', failure === this.restartFailure ? undefined : faultMessage(err));
      this.restartFailure = failure;
    }
  }
}
