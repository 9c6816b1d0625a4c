// The creates this agent has under way, from the placement of the instance until its engine is
// prepared: the work made ahead of time (warm clusters, spare OS users) waits while there are
// any, so that a burst of creates has the host's cores and disk to itself and refills follow it.
// The prepare comes later, over the bus, from the taskmanager: a create whose prepare never
// comes or fails counts only for `windowMs`, so that it cannot hold the refills back for good.

interface Create {
  since: number;
  /** the create is over: its engine prepared, or the instance gone */
  done: () => boolean;
}

export class CreatesInFlight {
  private readonly creates = new Map<string, Create>();

  constructor(
    private readonly windowMs = 120_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A create of `instanceId` has begun (or, called again, is now over once `done` says so). */
  begin(instanceId: string, done: () => boolean = () => false): void {
    const since = this.creates.get(instanceId)?.since ?? this.now();
    this.creates.set(instanceId, { since, done });
  }

  /** The create failed or was abandoned. */
  end(instanceId: string): void {
    this.creates.delete(instanceId);
  }

  /** Whether any create is under way. */
  busy(): boolean {
    const now = this.now();
    for (const [instanceId, create] of this.creates) {
      if (create.done() || now - create.since >= this.windowMs) this.creates.delete(instanceId);
    }
    return this.creates.size > 0;
  }
}
