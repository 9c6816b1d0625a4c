import type { EngineHealth, EngineLifecycle } from './engines/engine.js';

// How often a guest's checks ask its engine. A periodic check of an idle engine that answered
// healthy at its last probe, less than the idle probe interval ago with no operation since, looks
// at its process only: a process gone is seen at once (and the engine asked, restarted as
// needed), a hung one at the next probe. An idle instance then costs neither its engine nor
// Coffer a round trip every interval.

export interface ProbeSpacingOptions {
  engine: Pick<EngineLifecycle, 'health' | 'idle' | 'processId'>;
  /** how often the host's round checks the guest */
  checkIntervalMs: number;
  /** how often an idle engine is asked (EngineLifecycle.idle); never less than the check interval */
  idleProbeIntervalMs: number;
}

export class ProbeSpacing {
  /** when the engine was last asked, what it answered, and whether an operation touched it since */
  private probed: { at: number; health: EngineHealth; touched: boolean } | undefined;

  constructor(private readonly options: ProbeSpacingOptions) {}

  /** an operation may have restarted or reconfigured the engine: the next check asks it */
  touched(): void {
    if (this.probed !== undefined) this.probed.touched = true;
  }

  /** The engine's health as a check finds it (`periodic`: the host round's check); answers whether the engine was asked. */
  async observe(periodic: boolean): Promise<{ health: EngineHealth; asked: boolean }> {
    const last = this.probed;
    const { engine, checkIntervalMs: interval } = this.options;
    // the next probe may come up to a tick early rather than a whole interval late
    const spacing = Math.max(this.options.idleProbeIntervalMs, interval) - interval / 2;
    if (
      periodic &&
      last !== undefined &&
      last.health === 'healthy' &&
      !last.touched &&
      Date.now() - last.at < spacing &&
      engine.idle?.() === true &&
      (await engine.processId()) !== undefined
    ) {
      return { health: 'healthy', asked: false };
    }
    const at = Date.now();
    const health = await engine.health();
    this.probed = { at, health, touched: false };
    return { health, asked: true };
  }
}
