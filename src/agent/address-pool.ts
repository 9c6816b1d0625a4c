import { CofferError } from '../common/index.js';

// Instance addresses on one host: every 127/8 address is local on Linux, so each instance gets
// an address of its own and the engine's standard port, as if it were a host of its own.
// Allocation reserves synchronously before any await, so concurrent creates never share one.

function toInt(address: string): number | undefined {
  const parts = address.split('.');
  if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255)) return undefined;
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

function toAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** `.0`, `.1` and `.255` of every /24 are left alone: network, gateway-like and broadcast-like addresses confuse people. */
function usable(value: number): boolean {
  const last = value % 256;
  return last !== 0 && last !== 1 && last !== 255;
}

/** answers whether nothing else uses the address (e.g. something already listens on the port) */
export type AddressProbe = (address: string) => Promise<boolean>;

/** consecutive busy addresses after which allocation gives up: something listens on all of them */
const maxBusyInARow = 16;

export class AddressPool {
  readonly cidr: string;
  private readonly first: number;
  private readonly last: number;
  private readonly byInstance = new Map<string, number>();
  private readonly byAddress = new Map<number, string>();
  /** addresses found used by something that is not ours */
  private readonly foreign = new Set<number>();

  constructor(cidr: string) {
    const match = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(cidr.trim());
    const base = match === null ? undefined : toInt(match[1]!);
    const bits = Number(match?.[2]);
    if (base === undefined || !(bits >= 8 && bits <= 30) || Math.floor(base / 2 ** 24) !== 127) {
      throw new CofferError(
        'BadRequest',
        `Invalid address pool "${cidr}": use a CIDR inside 127.0.0.0/8 with a prefix from /8 to /30, e.g. 127.77.0.0/16.`,
      );
    }
    const size = 2 ** (32 - bits);
    this.first = base - (base % size);
    this.last = this.first + size - 1;
    this.cidr = `${toAddress(this.first)}/${bits}`;
  }

  addressOf(instanceId: string): string | undefined {
    const value = this.byInstance.get(instanceId);
    return value === undefined ? undefined : toAddress(value);
  }

  isAllocated(address: string): boolean {
    const value = toInt(address);
    return value !== undefined && this.byAddress.has(value);
  }

  /** Records an address an existing instance already has (re-adoption); it may lie outside the pool. */
  reserve(instanceId: string, address: string): void {
    const value = toInt(address);
    if (value === undefined) throw new CofferError('BadRequest', `Invalid instance address "${address}".`);
    const holder = this.byAddress.get(value);
    if (holder !== undefined && holder !== instanceId) {
      throw new CofferError('Conflict', `Address ${address} of instance ${instanceId} is already used by instance ${holder}.`);
    }
    this.release(instanceId);
    this.byInstance.set(instanceId, value);
    this.byAddress.set(value, instanceId);
  }

  /** The lowest free address, reserved for `instanceId` at once; the instance's own if it has one. */
  allocateNow(instanceId: string): string {
    const own = this.addressOf(instanceId);
    if (own !== undefined) return own;
    for (let value = this.first; value <= this.last; value++) {
      if (!usable(value) || this.byAddress.has(value) || this.foreign.has(value)) continue;
      this.byInstance.set(instanceId, value);
      this.byAddress.set(value, instanceId);
      return toAddress(value);
    }
    throw new CofferError('NoHostAvailable', `The address pool ${this.cidr} has no free address left.`);
  }

  /**
   * allocateNow, skipping addresses the probe finds in use by something else (another agent on
   * this host, a stray server).
   */
  async allocate(instanceId: string, probe?: AddressProbe): Promise<string> {
    const own = this.addressOf(instanceId);
    if (own !== undefined) return own;
    for (let busy = 0; ; busy++) {
      const address = this.allocateNow(instanceId);
      if (probe === undefined || (await probe(address))) return address;
      this.release(instanceId);
      this.foreign.add(toInt(address)!);
      if (busy + 1 >= maxBusyInARow) {
        throw new CofferError(
          'NoHostAvailable',
          `${maxBusyInARow} addresses in a row of the pool ${this.cidr} are in use by something else: ` +
            "is a server listening on all addresses of the engine's port?",
        );
      }
    }
  }

  release(instanceId: string): void {
    const value = this.byInstance.get(instanceId);
    if (value === undefined) return;
    this.byInstance.delete(instanceId);
    this.byAddress.delete(value);
  }
}
