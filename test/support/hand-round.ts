import type { RoundOfChecks } from '../../src/guest/check-round.js';

/** A host's round of checks driven by hand: a turn runs each member once, when the test says. */
export function handDrivenRound(): { round: RoundOfChecks; members: ReadonlySet<() => Promise<void>>; turn(): Promise<void> } {
  const members = new Set<() => Promise<void>>();
  return {
    round: {
      join(check) {
        members.add(check);
        return () => members.delete(check);
      },
    },
    members,
    async turn() {
      for (const check of members) await check();
    },
  };
}
