import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { CofferError } from '../common/index.js';
import type { LocalProcessRunner } from './local-process-runner.js';

// A tenant's superuser runs programs as its engine's OS user (PostgreSQL's COPY ... PROGRAM),
// and everything the control plane listens on is on this host's loopback: the bus, the state
// database, the API, the other instances. The wall lets packets from a walled uid go only to
// the addresses it is allowed (its own instance's address; later its replicas and backup
// target); everything else it sends is refused, TCP and UDP, IPv4 and IPv6. Replies to
// connections others opened to the engine pass (conntrack's established state), so clients
// and the guest still reach it.
//
// One table of Coffer's own (`inet coffer`, never anyone else's), with one fixed chain and
// three sets: the walled uids and the allowed uid.address pairs. Each change is one `nft -f -`
// transaction, which the kernel applies whole or not at all, so there is never a moment when
// a uid is half walled; and sets need no rule handles to find and delete, unlike a chain per uid.
// Refused rather than dropped: a dropped SYN leaves the program (and the tests) waiting minutes.

const table = 'coffer';
const family = 'inet';
const timeoutMs = 10_000;

const pair = z.object({ concat: z.tuple([z.number(), z.string()]) });
const listing = z.object({
  nftables: z.array(
    z.object({
      set: z
        .object({
          name: z.string(),
          // uids in `walled`, uid.address pairs in the allowed sets
          elem: z.array(z.unknown()).optional(),
        })
        .optional(),
    }),
  ),
});

/** The fixed part, asserted whole with every change (a set or chain that exists is kept, the chain's rules rewritten). */
function baseRuleset(): string[] {
  const t = `${family} ${table}`;
  return [
    `add table ${t}`,
    `add set ${t} walled { type uid; }`,
    `add set ${t} allowed4 { type uid . ipv4_addr; }`,
    `add set ${t} allowed6 { type uid . ipv6_addr; }`,
    `add chain ${t} output { type filter hook output priority 0; policy accept; }`,
    `flush chain ${t} output`,
    `add rule ${t} output ct state established,related accept`,
    `add rule ${t} output meta skuid . ip daddr @allowed4 accept`,
    `add rule ${t} output meta skuid . ip6 daddr @allowed6 accept`,
    `add rule ${t} output meta skuid @walled meta l4proto tcp reject with tcp reset`,
    `add rule ${t} output meta skuid @walled reject with icmpx type admin-prohibited`,
  ];
}

function checkUid(uid: number): void {
  // root is never walled: the agent itself runs as root
  if (!Number.isInteger(uid) || uid <= 0 || uid > 0xfffffffe) throw new CofferError('Internal', `Cannot wall uid ${uid}.`);
}

/** `add` before `delete` makes the delete succeed whether or not the element was there. */
function removeElement(set: string, element: string): string[] {
  return [`add element ${family} ${table} ${set} { ${element} }`, `delete element ${family} ${table} ${set} { ${element} }`];
}

export class NetworkWall {
  /** `nft`: the nftables program, by path or found on the runner's PATH; `runner` runs as root */
  constructor(
    private readonly runner: LocalProcessRunner,
    private readonly nft = 'nft',
  ) {}

  /**
   * Walls `uid` in: from now on it reaches `allowed` (IPv4 or IPv6 addresses, any port) and
   * nothing else. Replaces what it was allowed before, so a uid reused after a user was removed
   * keeps nothing of its former owner's. Idempotent; rejects with a fault that says what to
   * install when the wall cannot be put up.
   */
  async raise(uid: number, allowed: readonly string[]): Promise<void> {
    checkUid(uid);
    for (const address of allowed) {
      if (!isIPv4(address) && !isIPv6(address)) throw new CofferError('Internal', `Not an address to allow: ${address}.`);
    }
    const lines = [...baseRuleset()];
    const stale = (await this.pairsOf(uid)).filter((pair) => !allowed.includes(pair.address));
    for (const pair of stale) lines.push(...removeElement(pair.set, `${uid} . ${pair.address}`));
    lines.push(`add element ${family} ${table} walled { ${uid} }`);
    for (const address of allowed) {
      lines.push(`add element ${family} ${table} ${isIPv4(address) ? 'allowed4' : 'allowed6'} { ${uid} . ${address} }`);
    }
    await this.apply(lines);
  }

  /** Takes `uid` out of the wall once nothing runs as it any more; a no-op when it is not walled. */
  async remove(uid: number): Promise<void> {
    checkUid(uid);
    const lines = [...baseRuleset(), ...removeElement('walled', String(uid))];
    for (const pair of await this.pairsOf(uid)) lines.push(...removeElement(pair.set, `${uid} . ${pair.address}`));
    await this.apply(lines);
  }

  /** The allowed pairs of `uid` now in the kernel; none when Coffer's table does not exist yet. */
  private async pairsOf(uid: number): Promise<{ set: string; address: string }[]> {
    let stdout: string;
    try {
      ({ stdout } = await this.runner.run(this.nft, ['-j', 'list', 'table', family, table], { timeoutMs }));
    } catch (err) {
      // nft runs but the table is not there yet: nothing to replace
      if (/No such file or directory/.test((err as CofferError).details ?? '')) return [];
      throw this.fault(err);
    }
    const pairs: { set: string; address: string }[] = [];
    for (const item of listing.parse(JSON.parse(stdout)).nftables) {
      const set = item.set;
      if (set === undefined || (set.name !== 'allowed4' && set.name !== 'allowed6')) continue;
      for (const element of set.elem ?? []) {
        const [owner, address] = pair.parse(element).concat;
        if (owner === uid) pairs.push({ set: set.name, address });
      }
    }
    return pairs;
  }

  private async apply(lines: string[]): Promise<void> {
    try {
      await this.runner.run(this.nft, ['-f', '-'], { timeoutMs, input: `${lines.join('\n')}\n` });
    } catch (err) {
      throw this.fault(err);
    }
  }

  private fault(err: unknown): CofferError {
    const why = err instanceof CofferError ? [err.message, err.details].filter(Boolean).join(' ') : String(err);
    return new CofferError(
      'Internal',
      `The network wall around the instance's engine could not be put up, so the engine was not started (${why}). ` +
        'Coffer needs nftables (apt-get install nftables) and must run as root to set it.',
      { cause: err },
    );
  }
}
