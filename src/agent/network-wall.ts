import { isIPv4, isIPv6 } from 'node:net';
import { CofferError } from '../common/index.js';
import type { LocalProcessRunner } from './local-process-runner.js';
import type { NftSession } from './nft-session.js';

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
// One table of Coffer's own (`inet coffer`, never anyone else's). Each walled uid has a chain of
// its own, `wall_<uid>`: accept what it is allowed, refuse the rest; a map sends each packet of a
// walled uid to its chain. Raising a wall rewrites the uid's chain and removing it deletes the
// chain and its map element, both by name: no change reads the table, so a change costs the same
// with ten walled uids or a thousand (it used to list the whole table to find the uid's elements).
// Each change is one `nft -f -` transaction, which the kernel applies whole or not at all, so
// there is never a moment when a uid is half walled. Refused rather than dropped: a dropped SYN
// leaves the program (and the tests) waiting minutes.
//
// Before, the table held sets instead (`walled` uids, `allowed4`/`allowed6` uid.address.port
// triples) and a chain `output` that judged by them. A host upgraded keeps them; they wall the
// uids put there before until each is walled again in a chain of its own (every adoption does),
// which takes the uid out of `walled`: its stale triples left in the allowed sets only accept,
// and a packet accepted in one output chain is still judged by the other.

const table = 'coffer';
const family = 'inet';
const timeoutMs = 10_000;

/** The fixed part, asserted whole with every change (a map or chain that exists is kept, the hook chain's rules rewritten). */
function baseRuleset(): string[] {
  const t = `${family} ${table}`;
  return [
    `add table ${t}`,
    `add map ${t} walls { type uid : verdict; }`,
    `add chain ${t} wall_output { type filter hook output priority 0; policy accept; }`,
    `flush chain ${t} wall_output`,
    `add rule ${t} wall_output ct state established,related accept`,
    `add rule ${t} wall_output meta skuid vmap @walls`,
    // the set the walls of before judged by: a uid walled now leaves it (see above)
    `add set ${t} walled { type uid; }`,
  ];
}

function checkUid(uid: number): void {
  // root is never walled: the agent itself runs as root
  if (!Number.isInteger(uid) || uid <= 0 || uid > 0xfffffffe) throw new CofferError('Internal', `Cannot wall uid ${uid}.`);
}

/** validated: they are written into the ruleset's text */
function checkDestinations(allowed: readonly Destination[]): void {
  for (const { address, port } of allowed) {
    if ((!isIPv4(address) && !isIPv6(address)) || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new CofferError('Internal', `Not a destination to allow: ${address} port ${port}.`);
    }
  }
}

/** Takes `uid` out of the walls of before; `add` before `delete` makes the delete succeed whether or not it was there. */
function leaveOldWall(uid: number): string[] {
  return [`add element ${family} ${table} walled { ${uid} }`, `delete element ${family} ${table} walled { ${uid} }`];
}

/** Where a walled user may open connections (TCP) or send datagrams (UDP). */
export interface Destination {
  address: string;
  port: number;
}

function acceptRule(chain: string, { address, port }: Destination, verb: 'add' | 'insert' = 'add'): string {
  const match = isIPv4(address) ? 'ip daddr' : 'ip6 daddr';
  // th dport only where there is one: an ICMP header has none
  return `${verb} rule ${family} ${table} ${chain} meta l4proto { tcp, udp } ${match} ${address} th dport ${port} accept`;
}

export class NetworkWall {
  /**
   * `nft`: the nftables program, by path or found on the runner's PATH; `runner` runs as root.
   * `session`: a shell kept up that runs the changes instead (nft-session.ts: the agent is not
   * forked for each), with the same `nft`.
   */
  constructor(
    private readonly runner: LocalProcessRunner,
    private readonly nft = 'nft',
    private readonly session?: NftSession,
  ) {}

  /**
   * Walls `uid` in: from now on it reaches `allowed` (IPv4 or IPv6 addresses and ports) and
   * nothing else. Replaces what it was allowed before, so a uid reused after a user was removed
   * keeps nothing of its former owner's. Idempotent; rejects with a fault that says what to
   * install when the wall cannot be put up.
   */
  async raise(uid: number, allowed: readonly Destination[]): Promise<void> {
    checkUid(uid);
    checkDestinations(allowed);
    const t = `${family} ${table}`;
    const chain = `wall_${uid}`;
    await this.apply([
      ...baseRuleset(),
      `add chain ${t} ${chain}`,
      `flush chain ${t} ${chain}`,
      ...allowed.map((destination) => acceptRule(chain, destination)),
      `add rule ${t} ${chain} meta l4proto tcp reject with tcp reset`,
      `add rule ${t} ${chain} reject with icmpx type admin-prohibited`,
      `add element ${t} walls { ${uid} : jump ${chain} }`,
      ...leaveOldWall(uid),
    ]);
  }

  /**
   * Lets `uid`, walled with nothing allowed by `raise(uid, [])` and changed by nothing since, reach
   * `allowed` as well: the same chain `raise(uid, allowed)` makes, by additions alone. A
   * transaction that deletes anything (a chain's rules flushed, a set's element taken out) waits
   * for the kernel's grace period before it returns: a raise takes 10 to 25 ms here, this 2 to 8
   * (mostly nft's own start). Rejects, changing nothing, when the uid's chain is not there (the
   * host rebooted, the table was flushed): the caller raises the wall whole then. Only its caller
   * knows that the chain holds nothing but what `raise(uid, [])` put there: one that may allow
   * more (a uid walled for an earlier owner) must be raised whole.
   */
  async extend(uid: number, allowed: readonly Destination[]): Promise<void> {
    checkUid(uid);
    checkDestinations(allowed);
    const t = `${family} ${table}`;
    const chain = `wall_${uid}`;
    // each inserted at the head, ahead of the refusals: the last first keeps raise's order
    await this.apply([
      `add element ${t} walls { ${uid} : jump ${chain} }`,
      ...[...allowed].reverse().map((destination) => acceptRule(chain, destination, 'insert')),
    ]);
  }

  /** Takes `uid` out of the wall once nothing runs as it any more; a no-op when it is not walled. */
  async remove(uid: number): Promise<void> {
    checkUid(uid);
    const t = `${family} ${table}`;
    const chain = `wall_${uid}`;
    // each added first, so that each delete finds what it deletes
    await this.apply([
      ...baseRuleset(),
      `add chain ${t} ${chain}`,
      `add element ${t} walls { ${uid} : jump ${chain} }`,
      `delete element ${t} walls { ${uid} }`,
      `flush chain ${t} ${chain}`,
      `delete chain ${t} ${chain}`,
      ...leaveOldWall(uid),
    ]);
  }

  private async apply(lines: string[]): Promise<void> {
    try {
      const input = `${lines.join('\n')}\n`;
      if (this.session === undefined) await this.runner.run(this.nft, ['-f', '-'], { timeoutMs, input });
      else await this.session.apply(input, timeoutMs);
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
