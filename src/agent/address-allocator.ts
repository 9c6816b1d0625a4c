import { createServer as createTcpServer, isIPv4 } from 'node:net';
import { CofferError } from '../common/index.js';
import { AddressPool } from './address-pool.js';

// Where an instance's engine listens. Two ways to give every instance an endpoint of its own:
// - loopback (the embedded default): an address of its own from a 127/8 pool and the engine's
//   standard port, as if each instance were a host of its own;
// - host: the host's own address, reachable from other hosts, and a block of ports of its own
//   from a configured range (an engine may listen on more than one port: Redis's TLS port is
//   the next one).
// Both reserve synchronously before any await, so concurrent creates never share an endpoint,
// and an endpoint is handed out again only once its instance released it.

export interface Endpoint {
  address: string;
  port: number;
}

export interface PortNeeds {
  /** the engine's own port, which a loopback address gives every instance */
  standardPort: number;
  /** consecutive ports the engine listens on from its port (Redis: plaintext, then TLS) */
  span: number;
}

export interface AddressAllocator {
  /** how the agent's config named it, for log lines and errors */
  readonly description: string;
  /**
   * Client ranges an instance admits when its owner set none: whoever can reach a loopback
   * address is on this host; a host address is meant to be reached from other hosts.
   */
  readonly defaultClientCidrs: readonly string[];
  /** a free endpoint reserved for `instanceId`, nothing else listening on it; its own when it has one */
  allocate(instanceId: string, needs: PortNeeds): Promise<Endpoint>;
  /** records the endpoint an existing instance already has (re-adoption); refuses one another instance holds */
  reserve(instanceId: string, endpoint: Endpoint, needs: PortNeeds): void;
  release(instanceId: string): void;
  /** the endpoint reserved for `instanceId`, if any */
  endpointOf(instanceId: string): Endpoint | undefined;
}

/** True when nothing listens on address:port (another agent on this host, a stray server). */
export function portIsFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createTcpServer();
    server.once('error', () => resolvePromise(false));
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolvePromise(true)));
  });
}

/** The ports of first..first+span-1 something already listens on. */
async function busyPorts(address: string, first: number, span: number): Promise<number[]> {
  const busy: number[] = [];
  for (let port = first; port < first + span; port++) if (!(await portIsFree(address, port))) busy.push(port);
  return busy;
}

async function portsAreFree(address: string, first: number, span: number): Promise<boolean> {
  return (await busyPorts(address, first, span)).length === 0;
}

/** Loopback addresses from a 127/8 pool, each with the engine's standard port(s). */
export class LoopbackAllocator implements AddressAllocator {
  readonly description: string;
  readonly defaultClientCidrs = ['127.0.0.0/8'];
  private readonly pool: AddressPool;
  private readonly ports = new Map<string, number>();

  constructor(cidr: string) {
    this.pool = new AddressPool(cidr);
    this.description = `loopback addresses from ${this.pool.cidr}`;
  }

  async allocate(instanceId: string, needs: PortNeeds): Promise<Endpoint> {
    const own = this.endpointOf(instanceId);
    if (own !== undefined) return own;
    const address = await this.pool.allocate(instanceId, (candidate) => portsAreFree(candidate, needs.standardPort, needs.span));
    this.ports.set(instanceId, needs.standardPort);
    return { address, port: needs.standardPort };
  }

  reserve(instanceId: string, endpoint: Endpoint): void {
    this.pool.reserve(instanceId, endpoint.address);
    this.ports.set(instanceId, endpoint.port);
  }

  release(instanceId: string): void {
    this.pool.release(instanceId);
    this.ports.delete(instanceId);
  }

  endpointOf(instanceId: string): Endpoint | undefined {
    const address = this.pool.addressOf(instanceId);
    const port = this.ports.get(instanceId);
    return address === undefined || port === undefined ? undefined : { address, port };
  }
}

export interface PortRange {
  first: number;
  last: number;
}

/** `from-to`, e.g. 30000-32767 */
export function parsePortRange(text: string): PortRange {
  const match = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(text);
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (match === null || first < 1024 || last > 65535 || first > last) {
    throw new CofferError('BadRequest', `Invalid instance port range "${text}": use from-to within 1024-65535, e.g. 30000-32767.`);
  }
  return { first, last };
}

/**
 * Below Linux's default range for the local side of outgoing connections (32768-60999), so no
 * client connection of this host ever holds an instance's port.
 */
export const defaultInstancePorts = '30000-32767';

/** consecutive busy blocks after which allocation gives up: something listens on all of them */
const maxBusyInARow = 16;

/** The host's own address, each instance with a block of ports of its own from a range. */
export class HostPortAllocator implements AddressAllocator {
  readonly description: string;
  readonly defaultClientCidrs: readonly string[];
  private readonly range: PortRange;
  /** instance → its endpoint and how many ports it holds */
  private readonly byInstance = new Map<string, Endpoint & { span: number }>();
  /** port of the host address → the instance holding it */
  private readonly byPort = new Map<number, string>();
  /** ports found used by something that is not ours */
  private readonly foreign = new Set<number>();

  constructor(
    readonly address: string,
    ports: string = defaultInstancePorts,
  ) {
    if (!isIPv4(address) || address === '0.0.0.0') {
      throw new CofferError('BadRequest', `Invalid host address "${address}": give one IPv4 address of this host, e.g. 192.0.2.10.`);
    }
    this.range = parsePortRange(ports);
    this.description = `${address}, ports ${this.range.first}-${this.range.last}`;
    this.defaultClientCidrs = ['0.0.0.0/0'];
  }

  endpointOf(instanceId: string): Endpoint | undefined {
    const held = this.byInstance.get(instanceId);
    return held === undefined ? undefined : { address: held.address, port: held.port };
  }

  reserve(instanceId: string, endpoint: Endpoint, needs: PortNeeds): void {
    // an instance placed before the host's address was configured keeps its own (a loopback one)
    const onHost = endpoint.address === this.address;
    const ports = onHost ? Array.from({ length: needs.span }, (_, i) => endpoint.port + i) : [];
    for (const port of ports) {
      const holder = this.byPort.get(port);
      if (holder !== undefined && holder !== instanceId) {
        throw new CofferError('Conflict', `Port ${port} of ${this.address} for instance ${instanceId} is already used by instance ${holder}.`);
      }
    }
    this.release(instanceId);
    this.byInstance.set(instanceId, { ...endpoint, span: onHost ? needs.span : 0 });
    for (const port of ports) this.byPort.set(port, instanceId);
  }

  private takeNow(instanceId: string, span: number): number {
    for (let first = this.range.first; first + span - 1 <= this.range.last; first++) {
      let free = true;
      for (let port = first; port < first + span && free; port++) free = !this.byPort.has(port) && !this.foreign.has(port);
      if (!free) continue;
      this.byInstance.set(instanceId, { address: this.address, port: first, span });
      for (let port = first; port < first + span; port++) this.byPort.set(port, instanceId);
      return first;
    }
    throw new CofferError('NoHostAvailable', `The instance ports ${this.range.first}-${this.range.last} of ${this.address} are all taken.`);
  }

  async allocate(instanceId: string, needs: PortNeeds): Promise<Endpoint> {
    const own = this.endpointOf(instanceId);
    if (own !== undefined) return own;
    for (let tries = 1; ; tries++) {
      const port = this.takeNow(instanceId, needs.span);
      const busy = await busyPorts(this.address, port, needs.span);
      if (busy.length === 0) return { address: this.address, port };
      this.release(instanceId);
      // only those: a free port beside a busy one serves the next instance
      for (const p of busy) this.foreign.add(p);
      if (tries >= maxBusyInARow) {
        throw new CofferError(
          'NoHostAvailable',
          `${maxBusyInARow} port blocks in a row of ${this.description} are in use by something else: is ${this.address} this host's address?`,
        );
      }
    }
  }

  release(instanceId: string): void {
    const held = this.byInstance.get(instanceId);
    if (held === undefined) return;
    this.byInstance.delete(instanceId);
    for (let port = held.port; port < held.port + held.span; port++) this.byPort.delete(port);
  }
}
