// The health check's connection, kept open between checks. Opening one per check made every idle
// instance cost an authentication (and, for PostgreSQL, a forked backend) every 10 s; a kept
// connection costs one round trip. It is only ever trusted for what it answers now: each check
// still sends a query to the server, so a dead or hung engine cannot look healthy, and a kept
// connection that fails (the engine restarted, a tenant's superuser killed the session, the
// server closed it as idle) is replaced within the same check, so a healthy engine is never
// reported down for a broken connection alone.

export interface KeptProbeOps<C> {
  /** opens and authenticates a new connection; rejects when the server does not let it in */
  open(timeoutMs: number): Promise<C>;
  /** one cheap query: resolves true when the server answered as a healthy one does */
  ask(connection: C): Promise<boolean>;
  /** closes at once, without waiting for the server (which may be gone or hung) */
  close(connection: C): void;
}

export class KeptProbe<C> {
  private connection: C | undefined;
  private inFlight: Promise<boolean> | undefined;

  constructor(
    private readonly ops: KeptProbeOps<C>,
    private readonly timeoutMs: number,
  ) {}

  /** true when the server answers a query within the timeout, over the kept connection or a new one */
  answers(): Promise<boolean> {
    // callers at the same time share one check: one connection, never two racing to replace it
    this.inFlight ??= this.check().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /**
   * `work` over the kept connection, within the timeout: what the guest asks of an idle engine
   * now and then (its metrics) costs no login. `work` is itself a query, so a kept connection is
   * not checked first; where it fails, the connection is checked (replaced if broken) and `work`
   * runs once more. Undefined when the server does not answer.
   */
  async query<T>(work: (connection: C) => Promise<T>): Promise<T | undefined> {
    const kept = this.connection;
    if (kept !== undefined) {
      try {
        return await this.withinTimeout(work(kept));
      } catch {
        // a broken connection, or the server's refusal: told again below, over a checked one
      }
    }
    if (!(await this.answers()) || this.connection === undefined) return undefined;
    return this.withinTimeout(work(this.connection));
  }

  /** closes the kept connection (before a stop, or when its guest goes): the next check opens one */
  close(): void {
    const connection = this.connection;
    this.connection = undefined;
    if (connection !== undefined) this.ops.close(connection);
  }

  private async check(): Promise<boolean> {
    if (this.connection !== undefined) {
      if (await this.ask(this.connection)) return true;
      this.close();
    }
    const opening = this.ops.open(this.timeoutMs);
    const fresh = await this.withinTimeout(opening.then((connection) => ({ connection }))).catch(() => undefined);
    if (fresh === undefined) {
      // a login the server finishes after the timeout is closed, not kept: this check already failed
      opening.then((late) => this.ops.close(late), () => undefined);
      return false;
    }
    this.connection = fresh.connection;
    if (await this.ask(fresh.connection)) return true;
    this.close();
    return false;
  }

  private async ask(connection: C): Promise<boolean> {
    return (await this.withinTimeout(this.ops.ask(connection)).catch(() => undefined)) === true;
  }

  /** what `work` resolves to, or undefined once the timeout passed (a hung server answers nothing) */
  private async withinTimeout<T>(work: Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.timeoutMs);
    });
    try {
      return await Promise.race([work, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}
