import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { CofferError } from './errors.js';

// Where a project's webhook may point (issue 12). A hook URL is attacker-chosen: without a check,
// Coffer would POST from inside its control plane to whatever the tenant names (SSRF). The API
// checks a URL when it is registered and the taskmanager checks it again before every attempt,
// then connects to the very address it checked (no second lookup that DNS rebinding could
// answer differently).
//
// Refused always: Coffer's own control plane (the API's listen address and port, the bus, the
// state database, a metrics listener, given by the role that checks), the unspecified addresses
// (0.0.0.0 and :: reach the local host), and the instances' address pool (a hook must not poke
// another tenant's database). Beyond that, without an operator list, loopback and link-local
// (169.254/16 holds cloud metadata services; fe80::/10) are refused and the rest allowed; with
// one (--webhook-allowed-cidrs), only the ranges it names are allowed.

/** A host and port a control-plane role listens on or connects to; host 0.0.0.0 or :: means every local address. */
export interface ControlPlaneEndpoint {
  host: string;
  port: number;
}

export interface WebhookTargetRules {
  /** CIDRs hooks may reach; undefined: everything but loopback and link-local */
  allowedCidrs?: readonly string[] | undefined;
  /** refused whatever the allowed ranges say: the instances' address pool */
  instanceCidrs: readonly string[];
  controlPlane: readonly ControlPlaneEndpoint[];
}

/** A checked hook URL and the one address an attempt connects to. */
export interface WebhookTarget {
  url: URL;
  address: string;
  family: 4 | 6;
  port: number;
}

export type HostResolver = (host: string) => Promise<{ address: string; family: number }[]>;

const systemResolver: HostResolver = (host) => lookup(host, { all: true, verbatim: true });

const maxUrlLength = 2048;
const defaultRefused = ['127.0.0.0/8', '::1/128', '169.254.0.0/16', 'fe80::/10'];
const alwaysRefused = ['0.0.0.0/8', '::/128'];

function addCidr(list: BlockList, cidr: string): void {
  const [address, prefixText, extra] = cidr.trim().split('/');
  const family = isIP(address ?? '');
  const prefix = Number(prefixText);
  if (extra !== undefined || family === 0 || !/^\d{1,3}$/.test(prefixText ?? '') || prefix > (family === 4 ? 32 : 128)) {
    throw new CofferError('BadRequest', `"${cidr}" is not a CIDR range such as 10.0.0.0/8 or fd00::/8`);
  }
  list.addSubnet(address!, prefix, family === 4 ? 'ipv4' : 'ipv6');
}

/** Reads an operator's list of CIDR ranges (comma-separated text or an array); throws on a malformed one. */
export function parseCidrList(value: string | readonly string[]): string[] {
  const cidrs = (typeof value === 'string' ? value.split(',') : [...value]).map((c) => c.trim()).filter((c) => c !== '');
  for (const cidr of cidrs) addCidr(new BlockList(), cidr);
  return cidrs;
}

function blockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) addCidr(list, cidr);
  return list;
}

/**
 * ::ffff:10.0.0.1 is 10.0.0.1 on the wire: judge it as that. URLs spell it in hex
 * (http://[::ffff:127.0.0.1]/ has the host [::ffff:7f00:1]).
 */
function normalise(address: string): { address: string; family: 4 | 6 } {
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (dotted !== null) return { address: dotted[1]!, family: 4 };
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hex !== null) {
    const high = parseInt(hex[1]!, 16);
    const low = parseInt(hex[2]!, 16);
    return { address: [high >> 8, high & 255, low >> 8, low & 255].join('.'), family: 4 };
  }
  return { address: address.toLowerCase(), family: isIP(address) === 6 ? 6 : 4 };
}

function has(list: BlockList, address: string, family: 4 | 6): boolean {
  return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

const refusedUrl = (why: string) => new CofferError('BadRequest', `Webhook URL refused: ${why}`);

export class WebhookTargetGuard {
  private readonly allowed: BlockList | undefined;
  private readonly refused: BlockList;
  private readonly loopback = blockList(['127.0.0.0/8', '::1/128']);

  constructor(
    private readonly rules: WebhookTargetRules,
    private readonly resolveHost: HostResolver = systemResolver,
  ) {
    this.allowed = rules.allowedCidrs === undefined ? undefined : blockList(rules.allowedCidrs);
    this.refused = blockList([...alwaysRefused, ...rules.instanceCidrs, ...(rules.allowedCidrs === undefined ? defaultRefused : [])]);
  }

  /** The URL's shape alone: http or https, a host, no credentials. */
  parse(raw: string): URL {
    if (raw.length > maxUrlLength) throw refusedUrl(`longer than ${maxUrlLength} characters.`);
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw refusedUrl('not an absolute URL.');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refusedUrl('only http and https URLs are allowed.');
    if (url.hostname === '') throw refusedUrl('it names no host.');
    // credentials in a URL end up in logs and views; the signature authenticates Coffer instead
    if (url.username !== '' || url.password !== '') throw refusedUrl('it must not carry a user name or password.');
    if (url.hash !== '') throw refusedUrl('it must not have a fragment.');
    return url;
  }

  /**
   * Resolves the URL's host and answers the address to connect to; refuses the URL when any of
   * its addresses is refused (the client could be handed any of them).
   */
  async resolve(raw: string | URL): Promise<WebhookTarget> {
    const url = typeof raw === 'string' ? this.parse(raw) : raw;
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const found = isIP(host) !== 0 ? [{ address: host, family: isIP(host) }] : await this.resolveHost(host).catch(() => []);
    if (found.length === 0) throw refusedUrl(`its host ${host} does not resolve.`);
    const addresses = found.map((a) => normalise(a.address));
    for (const a of addresses) {
      if (!(await this.allows(a.address, a.family, port))) {
        throw refusedUrl(`its host ${host} resolves to ${a.address}, which webhooks may not reach (Coffer's own services, loopback, link-local, instances, or outside the ranges the operator allows).`);
      }
    }
    return { url, address: addresses[0]!.address, family: addresses[0]!.family, port };
  }

  private async allows(address: string, family: 4 | 6, port: number): Promise<boolean> {
    if (has(this.refused, address, family)) return false;
    if (this.allowed !== undefined && !has(this.allowed, address, family)) return false;
    for (const endpoint of this.rules.controlPlane) {
      if (endpoint.port === port && (await this.isEndpointAddress(endpoint.host, address, family))) return false;
    }
    return true;
  }

  private async isEndpointAddress(host: string, address: string, family: 4 | 6): Promise<boolean> {
    const bare = host.replace(/^\[(.*)\]$/, '$1');
    if (bare === '' || bare === '0.0.0.0' || bare === '::') {
      // a wildcard listener answers on loopback and on every address of the host
      if (has(this.loopback, address, family)) return true;
      return Object.values(networkInterfaces()).some((list) => (list ?? []).some((i) => normalise(i.address).address === address));
    }
    const own = isIP(bare) !== 0 ? [{ address: bare }] : await this.resolveHost(bare).catch(() => []);
    return own.some((a) => normalise(a.address).address === address);
  }
}
