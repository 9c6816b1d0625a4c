export interface PageContext {
  /** false once the user left the page: its polls stop */
  alive(): boolean;
  go(hash: string): void;
}

/** calls `tick` every `ms` while the page is on screen; a failing tick is retried at the next */
export function poll(context: PageContext, ms: number, tick: () => Promise<void>): void {
  const loop = () => {
    if (!context.alive()) return;
    tick().then(
      () => setTimeout(loop, ms),
      () => setTimeout(loop, ms),
    );
  };
  setTimeout(loop, ms);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
