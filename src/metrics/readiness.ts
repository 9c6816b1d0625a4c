import { CofferError, type Logger } from '../common/index.js';

/** One thing a role needs to do its work, e.g. its state database or its bus. */
export interface ReadinessCheck {
  /** what /readyz names when it fails, e.g. `stateDatabase` */
  name: string;
  /** resolves when it answers now */
  check(): Promise<void>;
}

export interface ReadinessReport {
  ready: boolean;
  /** per check: `ok`, or the error's code (BusUnavailable, Timeout...), never its message */
  checks: Record<string, string>;
  /** the names of the checks that failed */
  failing: string[];
}

export interface ReadinessOptions {
  /** a check that has not answered by then fails as `Timeout`; default 2 s */
  timeoutMs?: number;
  /**
   * a report this recent is served again: /readyz is unauthenticated on the API's port, and
   * each answer costs a query and a broker round trip; default 1 s
   */
  reuseMs?: number;
  logger?: Logger;
}

/** Answers "can this role work now?" by asking each of its dependencies, all at once. */
export class Readiness {
  private readonly timeoutMs: number;
  private readonly reuseMs: number;
  private last: { at: number; report: Promise<ReadinessReport> } | undefined;

  constructor(
    private readonly checks: readonly ReadinessCheck[],
    private readonly options: ReadinessOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.reuseMs = options.reuseMs ?? 1_000;
  }

  report(): Promise<ReadinessReport> {
    const now = performance.now();
    if (this.last === undefined || now - this.last.at >= this.reuseMs) this.last = { at: now, report: this.evaluate() };
    return this.last.report;
  }

  private async evaluate(): Promise<ReadinessReport> {
    const results = await Promise.all(this.checks.map(async (c) => [c.name, await this.run(c)] as const));
    const checks = Object.fromEntries(results);
    const failing = results.filter(([, result]) => result !== 'ok').map(([name]) => name);
    return { ready: failing.length === 0, checks, failing };
  }

  private async run(check: ReadinessCheck): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'Timeout'>((resolve) => {
      timer = setTimeout(() => resolve('Timeout'), this.timeoutMs);
    });
    try {
      const result = await Promise.race([check.check().then(() => 'ok' as const), timedOut]);
      if (result === 'Timeout') this.options.logger?.warn({ check: check.name, timeoutMs: this.timeoutMs }, 'readiness check timed out');
      return result;
    } catch (err) {
      // The reason goes to the log only: /readyz answers anyone, and a broker's or a database's
      // error names hosts and users.
      this.options.logger?.warn({ err, check: check.name }, 'readiness check failed');
      return err instanceof CofferError ? err.code : 'Error';
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Anything that answers a ping: a state store, a transport. */
export interface Pingable {
  ping(): Promise<void>;
}

/**
 * A role's readiness: its state database (the agent has none) and its bus answer.
 * Checks are named `stateDatabase` and `bus` in /readyz.
 */
export function roleReadiness(deps: { stateDatabase?: Pingable; bus: Pingable }, logger?: Logger): Readiness {
  const checks: ReadinessCheck[] = [];
  const { stateDatabase, bus } = deps;
  if (stateDatabase !== undefined) checks.push({ name: 'stateDatabase', check: () => stateDatabase.ping() });
  checks.push({ name: 'bus', check: () => bus.ping() });
  return new Readiness(checks, logger === undefined ? {} : { logger });
}
