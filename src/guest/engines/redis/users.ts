import type { Redis } from 'ioredis';
import type { UserChanges, UserInfo, UserRef, UserSpec } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { UserAdmin } from '../engine.js';
import type { UsersModule } from '../engine-modules.js';
import { checkPassword, checkUserName, isTenantUser, tenantUserArguments, type Secret } from './acl.js';
import { applyAcl, withAdminClient, type AdminEndpoint, type AdminEndpointSource } from './admin.js';

// The users module: ACL users. They have no host (Redis cannot tell clients apart by address)
// and no databases (its numbered keyspaces are not named, created or granted).

export const redisUsers: UsersModule<AdminEndpointSource> = {
  userHosts: false,
  userAccess: false,
  create: (lifecycle) => new RedisUserAdmin(() => lifecycle.endpoint()),
};

async function tenantUsers(client: Redis): Promise<string[]> {
  const names = (await client.call('ACL', ['USERS'])) as string[];
  return names.filter(isTenantUser).sort();
}

/** The password hashes ACL GETUSER reports, or undefined for a user that does not exist. */
async function passwordHashes(client: Redis, name: string): Promise<string[] | undefined> {
  const reply = (await client.call('ACL', ['GETUSER', name])) as unknown[] | null;
  if (reply === null) return undefined;
  const index = reply.indexOf('passwords');
  const hashes = reply[index + 1];
  if (index < 0 || !Array.isArray(hashes)) throw new CofferError('EngineError', 'ACL GETUSER answered without passwords.');
  return hashes.map(String);
}

/** Redis users have no host: only `%` (or none) names one. */
function checkHost(host: string | undefined): void {
  if (host !== undefined && host !== '%') {
    throw new CofferError('BadRequest', `Redis users have no host: "${host}" cannot be given, only "%".`);
  }
}

/** Throws BadRequest for anything of `users` Redis cannot hold, before anything is changed. */
export function checkUserSpecs(users: readonly UserSpec[]): void {
  const seen = new Set<string>();
  for (const user of users) {
    checkUserName(user.name);
    checkPassword(user.password);
    checkHost(user.host);
    if (user.databases.length > 0) {
      throw new CofferError('BadRequest', `Redis has no databases: user "${user.name}" cannot be given any.`);
    }
    if (seen.has(user.name)) throw new CofferError('BadRequest', `User "${user.name}" is listed twice.`);
    seen.add(user.name);
  }
}

/**
 * Defines every user of `users`, resetting those that exist: a prepare delivered again
 * converges on the same users and passwords.
 */
export async function ensureUsers(endpoint: AdminEndpoint, users: readonly UserSpec[]): Promise<void> {
  checkUserSpecs(users);
  if (users.length === 0) return;
  await withAdminClient(endpoint, (client) =>
    applyAcl(
      client,
      users.map((user) => ['SETUSER', ...tenantUserArguments(user.name, { password: user.password })]),
    ),
  );
}

function notFound(user: UserRef): CofferError {
  return new CofferError('UserNotFound', `User ${user.name}@${user.host} does not exist.`);
}

export class RedisUserAdmin implements UserAdmin {
  constructor(private readonly endpoint: () => Promise<AdminEndpoint>) {}

  private async admin<T>(work: (client: Redis) => Promise<T>): Promise<T> {
    return withAdminClient(await this.endpoint(), work);
  }

  async list(): Promise<UserInfo[]> {
    const names = await this.admin(tenantUsers);
    return names.map((name) => ({ name, host: '%', databases: [] }));
  }

  async create(users: UserSpec[]): Promise<void> {
    checkUserSpecs(users);
    await this.admin(async (client) => {
      const existing = new Set(await tenantUsers(client));
      const taken = users.find((user) => existing.has(user.name));
      if (taken !== undefined) throw new CofferError('UserAlreadyExists', `User ${taken.name}@% already exists.`);
      await applyAcl(
        client,
        users.map((user) => ['SETUSER', ...tenantUserArguments(user.name, { password: user.password })]),
      );
    });
  }

  async delete(user: UserRef): Promise<void> {
    if (user.host !== '%' || !isTenantUser(user.name)) throw notFound(user);
    await this.admin(async (client) => {
      if (!(await tenantUsers(client)).includes(user.name)) throw notFound(user);
      // DELUSER also disconnects the user's open sessions
      await applyAcl(client, [['DELUSER', user.name]]);
    });
  }

  async update(user: UserRef, changes: UserChanges): Promise<void> {
    if (user.host !== '%' || !isTenantUser(user.name)) throw notFound(user);
    checkHost(changes.host);
    const name = changes.name ?? user.name;
    checkUserName(name);
    if (changes.password !== undefined) checkPassword(changes.password);
    await this.admin(async (client) => {
      const hashes = await passwordHashes(client, user.name);
      if (hashes === undefined) throw notFound(user);
      if (name !== user.name && (await passwordHashes(client, name)) !== undefined) {
        throw new CofferError('UserAlreadyExists', `User ${name}@% already exists.`);
      }
      const secret: Secret = changes.password !== undefined ? { password: changes.password } : { hashes };
      // Redis cannot rename a user: the new one takes the old one's password, then the old goes
      const commands = [['SETUSER', ...tenantUserArguments(name, secret)]];
      if (name !== user.name) commands.push(['DELUSER', user.name]);
      await applyAcl(client, commands);
    });
  }
}
