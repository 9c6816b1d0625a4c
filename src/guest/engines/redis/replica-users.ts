import { Redis } from 'ioredis';
import { isTenantUser, rootDisableArguments, rootEnableArguments, rootUser, tenantUserArguments } from './acl.js';
import { applyAcl } from './admin.js';

// Redis keeps ACL users per server: replication carries the data, not the users. A replica's
// tenant users and root are its primary's, copied by its guest (the API changes them on the
// primary only): each copy reads the primary's users as the replica's replication user (which
// may list users and read their password hashes, nothing else of the ACL) and makes the
// replica's the same, same password hashes, same rights. A user that is already the same is
// left alone, so its sessions go on.

/** A user as far as the copy goes: on or off, and its password hashes. */
interface AclEntry {
  on: boolean;
  hashes: string[];
}

async function entry(client: Redis, name: string): Promise<AclEntry | undefined> {
  const reply = (await client.call('ACL', ['GETUSER', name])) as unknown[] | null;
  if (reply === null) return undefined;
  const field = (key: string) => reply[reply.indexOf(key) + 1];
  const flags = field('flags');
  const passwords = field('passwords');
  return {
    on: Array.isArray(flags) && flags.includes('on'),
    hashes: Array.isArray(passwords) ? passwords.map(String).sort() : [],
  };
}

/** Root's and the tenant's users, by name. */
async function usersOf(client: Redis): Promise<Map<string, AclEntry>> {
  const names = ((await client.call('ACL', ['USERS'])) as string[]).filter((name) => name === rootUser || isTenantUser(name));
  const users = new Map<string, AclEntry>();
  for (const name of names) {
    const found = await entry(client, name);
    if (found !== undefined) users.set(name, found);
  }
  return users;
}

const same = (a: AclEntry | undefined, b: AclEntry) => a !== undefined && a.on === b.on && a.hashes.join() === b.hashes.join();

/** Makes `replica`'s root and tenant users those of `source`; answers how many it changed. */
export async function mirrorUsers(source: Redis, replica: Redis): Promise<number> {
  const wanted = await usersOf(source);
  const present = await usersOf(replica);
  const commands: string[][] = [];
  for (const [name, user] of wanted) {
    if (same(present.get(name), user)) continue;
    if (name === rootUser) {
      commands.push(['SETUSER', ...(user.on && user.hashes.length > 0 ? rootEnableArguments({ hashes: user.hashes }) : rootDisableArguments())]);
    } else if (user.hashes.length > 0) {
      const args = tenantUserArguments(name, { hashes: user.hashes });
      commands.push(['SETUSER', ...(user.on ? args : args.map((rule) => (rule === 'on' ? 'off' : rule)))]);
    }
  }
  for (const name of present.keys()) if (name !== rootUser && !wanted.has(name)) commands.push(['DELUSER', name]);
  if (commands.length > 0) await applyAcl(replica, commands);
  if (commands.some((command) => command[0] === 'SETUSER' && command[1] === rootUser && !wanted.get(rootUser)?.on)) {
    // root turned off on the primary: its sessions on the replica end as well
    await replica.call('CLIENT', ['KILL', 'USER', rootUser]).catch(() => undefined);
  }
  return commands.length;
}

/** The replica's connection to its primary, as its replication user, over TLS when it replicates over TLS. */
export async function connectToSource(source: { address: string; port: number; user: string; password: string; ca?: string }): Promise<Redis> {
  const client = new Redis({
    host: source.address,
    port: source.port,
    ...(source.ca === undefined ? {} : { tls: { ca: source.ca, rejectUnauthorized: true } }),
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    disableClientInfo: true,
    connectTimeout: 10_000,
    commandTimeout: 10_000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.call('AUTH', [source.user, source.password]);
    return client;
  } catch (err) {
    client.disconnect();
    throw err;
  }
}
