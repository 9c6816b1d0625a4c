import { BlockList, isIP } from 'node:net';
import type { InstanceView } from './api-types.js';

// On Linux every 127/8 address is the host's own, and a client on the host that connects to an
// instance at 127.77.0.2 does so from 127.0.0.1 (the source address of the loopback route), not
// from the instance's own range. The CLI cannot know where other clients come from; this one
// case it can: ranges that leave out 127.0.0.1 shut out every client on the instance's host.

const localClient = '127.0.0.1';

/** Whether `address` is inside one of `cidrs`; unparsable ranges match nothing. */
export function cidrsContain(cidrs: readonly string[], address: string): boolean {
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [net, bits] = cidr.split('/');
    const prefix = Number(bits);
    if (net === undefined || isIP(net) === 0 || !Number.isInteger(prefix)) continue;
    try {
      list.addSubnet(net, prefix, isIP(net) === 6 ? 'ipv6' : 'ipv4');
    } catch {
      // An out-of-range prefix: the API refuses it; here it just matches nothing.
    }
  }
  return list.check(address, family);
}

function loopbackAddress(instance: InstanceView): string | undefined {
  const addresses = instance.addresses?.map((a) => a.address) ?? instance.ip ?? [];
  return addresses.find((address) => isIP(address) === 4 && address.startsWith('127.'));
}

/**
 * A warning when `cidrs` (non-empty: an empty list means the default ranges) would refuse the
 * clients on the host of a loopback instance; undefined when they would not.
 */
export function loopbackLockoutWarning(instance: InstanceView, cidrs: readonly string[]): string | undefined {
  const address = loopbackAddress(instance);
  if (address === undefined || cidrs.length === 0 || cidrsContain(cidrs, localClient)) return undefined;
  return (
    `Warning: ${instance.name} listens on ${address}, and clients on its host connect to it from ${localClient}, ` +
    `which ${cidrs.join(', ')} leaves out: they will be refused.\n` +
    `  Add --allowed-cidr ${localClient}/32 (or 127.0.0.0/8) to keep them; \`coffer instance update ${instance.name} --allowed-cidr\` with no range restores the default.\n`
  );
}
