import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { CofferError } from '../common/index.js';
import type { LocalProcessRunner } from './local-process-runner.js';

// A tenant's superuser runs programs as its engine's OS user (PostgreSQL's COPY ... PROGRAM),
// and everything the control plane listens on is on this host's loopback: the bus, the state
// database, the API, the other instances. The wall lets packets from a walled uid go only to
// the destinations it is allowed, an address and a port each (its own instance's; later its
// replicas and backup target); everything else it sends is refused, TCP and UDP, IPv4 and
// IPv6. Ports too, not just addresses: a service bound to 0.0.0.0 (a broker's default) answers
// on every local address, the instance's own included. Replies to
// connections others opened to the engine pass (conntrack's established state), so clients
// and the guest still reach it.
//
// One table of Coffer's own (`inet coffer`, never anyone else's), with one fixed chain and
// three sets: the walled uids and the allowed uid.address.port triples. Each change is one `nft -f -`
// transaction, which the kernel applies whole or not at all, so there is never a moment when
// a uid is half walled; and sets need no rule handles to find and delete, unlike a chain per uid.
// Refused rather than dropped: a dropped SYN leaves the program (and the tests) waiting minutes.

const table = 'coffer';
const family = 'inet';
const timeoutMs = 10_000;

const triple = z.object({ concat: z.tuple([z.number(), z.string(), z.number()]) });
const listing = z.object({
  nftables: z.array(
    z.object({
      set: z
        .object({
          name: z.string(),
          // uids in `walled`, uid.address.port triples in the allowed sets
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
    `add set ${t} allowed4 { type uid . ipv4_addr . inet_service; }`,
    `add set ${t} allowed6 { type uid . ipv6_addr . inet_service; }`,
    `add chain ${t} output { type filter hook output priority 0; policy accept; }`,
    `flush chain ${t} output`,
    `add rule ${t} output ct state established,related accept`,
    // th dport only where there is one: an ICMP header has none
    `add rule ${t} output meta l4proto { tcp, udp } meta skuid . ip daddr . th dport @allowed4 accept`,
    `add rule ${t} output meta l4proto { tcp, udp } meta skuid . ip6 daddr . th dport @allowed6 accept`,
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

/** Where a walled user may open connections (TCP) or send datagrams (UDP). */
export interface Destination {
  address: string;
  port: number;
}

interface Allowed extends Destination {
  set: 'allowed4' | 'allowed6';
}

function element(uid: number, { address, port }: Destination): string {
  return `${uid} . ${address} . ${port}`;
}

export class NetworkWall {
  /** `nft`: the nftables program, by path or found on the runner's PATH; `runner` runs as root */
  constructor(
    private readonly runner: LocalProcessRunner,
    private readonly nft = 'nft',
  ) {}

  /**
   * Walls `uid` in: from now on it reaches `allowed` (IPv4 or IPv6 addresses and ports) and
   * nothing else. Replaces what it was allowed before, so a uid reused after a user was removed
   * keeps nothing of its former owner's. Idempotent; rejects with a fault that says what to
   * install when the wall cannot be put up.
   */
  async raise(uid: number, allowed: readonly Destination[]): Promise<void> {
    checkUid(uid);
    // validated: they are written into the ruleset's text
    for (const { address, port } of allowed) {
      if ((!isIPv4(address) && !isIPv6(address)) || !Number.isInteger(port) || port < 1 || port > 65535) {
        throw new CofferError('Internal', `Not a destination to allow: ${address} port ${port}.`);
      }
    }
    const same = (a: Destination) => (b: Destination) => a.address === b.address && a.port === b.port;
    const lines = [...baseRuleset()];
    for (const stale of (await this.allowedOf(uid)).filter((old) => !allowed.some(same(old)))) {
      lines.push(...removeElement(stale.set, element(uid, stale)));
    }
    lines.push(`add element ${family} ${table} walled { ${uid} }`);
    for (const destination of allowed) {
      lines.push(`add element ${family} ${table} ${isIPv4(destination.address) ? 'allowed4' : 'allowed6'} { ${element(uid, destination)} }`);
    }
    await this.apply(lines);
  }

  /** Takes `uid` out of the wall once nothing runs as it any more; a no-op when it is not walled. */
  async remove(uid: number): Promise<void> {
    checkUid(uid);
    const lines = [...baseRuleset(), ...removeElement('walled', String(uid))];
    for (const old of await this.allowedOf(uid)) lines.push(...removeElement(old.set, element(uid, old)));
    await this.apply(lines);
  }

  /** What `uid` is allowed now, in the kernel; nothing when Coffer's table does not exist yet. */
  private async allowedOf(uid: number): Promise<Allowed[]> {
    let stdout: string;
    try {
      ({ stdout } = await this.runner.run(this.nft, ['-j', 'list', 'table', family, table], { timeoutMs }));
    } catch (err) {
      // nft runs but the table is not there yet: nothing to replace
      if (/No such file or directory/.test((err as CofferError).details ?? '')) return [];
      throw this.fault(err);
    }
    const found: Allowed[] = [];
    for (const item of listing.parse(JSON.parse(stdout)).nftables) {
      const set = item.set;
      if (set === undefined || (set.name !== 'allowed4' && set.name !== 'allowed6')) continue;
      for (const entry of set.elem ?? []) {
        const [owner, address, port] = triple.parse(entry).concat;
        if (owner === uid) found.push({ set: set.name, address, port });
      }
    }
    return found;
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
