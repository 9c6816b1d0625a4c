import { createHash } from 'node:crypto';
import { CofferError } from '../../../common/index.js';

// Redis 6+ ACL users as the guest builds them. Every rule is its own argument of ACL SETUSER
// (never a string the server splits), so a name or password holding '>' '<' '~' '&' '+' '-'
// or spaces cannot turn into a rule of its own. Names are still checked: Redis refuses
// whitespace in them, and the guest says so as a 400 before anything reaches the server.

/** The guest's own user (Trove's os_admin): full rights, hidden from tenants. */
export const adminUser = 'os_admin';
/**
 * Root is Redis's `default` user: the one a client reaches with a bare `AUTH <password>`
 * (redis-cli -a, and every client written before ACLs), so the name answered is one that logs in.
 */
export const rootUser = 'default';
const reservedUsers = new Set([adminUser, rootUser]);
/** each replica's user on its primary (replication.ts): not a tenant's */
export const replicationUserPrefix = 'os_repl_';

const maxNameBytes = 128;
const maxPasswordBytes = 1024;

/**
 * What a tenant user may run: all data commands, none that reconfigure, stop, replicate or
 * inspect the server (`@admin`: CONFIG, SHUTDOWN, ACL, MONITOR, DEBUG, REPLICAOF…) and none of
 * `@dangerous` (MIGRATE opens connections to any host, RESTORE loads raw payloads, CLIENT
 * KILL/LIST reach other sessions), apart from the data-wide commands an owner of all the
 * data needs: KEYS, SORT, FLUSHDB/FLUSHALL, SWAPDB, and INFO (client libraries' ready checks
 * and monitoring read it; it shows counters and paths, no secret).
 */
export const tenantCommandRules: readonly string[] = [
  '+@all',
  '-@admin',
  '-@dangerous',
  '+info',
  '+keys',
  '+sort',
  '+sort_ro',
  '+flushdb',
  '+flushall',
  '+swapdb',
];

/**
 * Root may do what a tenant may plus the administration that leaves the instance in the
 * guest's hands (MONITOR, SAVE/BGSAVE, CONFIG GET, SLOWLOG, CLIENT KILL…), but not what would
 * take it away: no ACL changes (it could lock out the guest's user), no CONFIG SET/REWRITE
 * (the flavor's maxmemory, the persistence the guest promised), no SHUTDOWN, no replication
 * or MIGRATE towards arbitrary hosts, no modules or DEBUG.
 */
export const rootCommandRules: readonly string[] = [
  '+@all',
  '-acl|setuser',
  '-acl|deluser',
  '-acl|load',
  '-acl|save',
  '-config|set',
  '-config|rewrite',
  '-shutdown',
  '-module',
  '-debug',
  '-replicaof',
  '-slaveof',
  '-failover',
  '-sync',
  '-psync',
  '-migrate',
  '-cluster',
];

/** Every key and every Pub/Sub channel (Redis 7 gives new users no channels). */
const allData = ['~*', '&*'];

const bad = (message: string) => new CofferError('BadRequest', message);

/** Throws BadRequest for a name Redis would refuse or that is the guest's own. */
export function checkUserName(name: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > maxNameBytes) {
    throw bad(`Invalid user name "${name}": 1 to ${maxNameBytes} bytes.`);
  }
  // Redis refuses spaces and NUL; line breaks and other control characters are refused too
  if (/[\s\u0000-\u001f\u007f]/.test(name)) {
    throw bad(`Invalid user name ${JSON.stringify(name)}: Redis user names contain no spaces or control characters.`);
  }
  if (reservedUsers.has(name) || name.startsWith(replicationUserPrefix)) throw bad(`The user name "${name}" is reserved.`);
}

/** Any characters (the server stores only its SHA-256), but never an empty password. */
export function checkPassword(password: string): void {
  const bytes = Buffer.byteLength(password, 'utf8');
  if (bytes === 0 || bytes > maxPasswordBytes) throw bad(`A password has 1 to ${maxPasswordBytes} bytes.`);
}

/** What ACL GETUSER shows and `#<hash>` takes: the SHA-256 of the password in hex. */
export function passwordHash(password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('hex');
}

export type Secret = { password: string } | { hashes: readonly string[] };

function secretRules(secret: Secret): string[] {
  if ('password' in secret) {
    checkPassword(secret.password);
    return [`>${secret.password}`];
  }
  for (const hash of secret.hashes) {
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new CofferError('EngineError', 'Redis reported a password hash of an unknown form.');
  }
  return secret.hashes.map((hash) => `#${hash}`);
}

/**
 * The arguments of `ACL SETUSER` for a tenant user, starting from `reset` so that a user
 * redefined (a prepare delivered again, a rename) ends up exactly so, whatever it was.
 */
export function tenantUserArguments(name: string, secret: Secret): string[] {
  checkUserName(name);
  return [name, 'reset', 'on', ...secretRules(secret), ...allData, ...tenantCommandRules];
}

export function rootEnableArguments(password: string | Secret): string[] {
  const secret = typeof password === 'string' ? { password } : password;
  return [rootUser, 'reset', 'on', ...secretRules(secret), ...allData, ...rootCommandRules];
}

/**
 * Root off: no password, no way to log in (`reset` turns the user off), but root's rights kept.
 * Redis 7.0 replays the AOF's transactions (MULTI/EXEC: every tenant's, and every script's
 * writes) as the `default` user and checks them against its rights: without them a restart or a
 * restore of the AOF drops every transaction with NOPERM. A user that is off is never who a
 * client is, so its rights open nothing.
 */
export function rootDisableArguments(): string[] {
  return [rootUser, 'reset', ...allData, ...rootCommandRules];
}

/**
 * The ACL file a new instance starts from: no way in but the guest's user and the tenant's
 * `users`, every password stored as its hash. Without a `default` line Redis would create that
 * user passwordless and with every right. The tenant's users are there from the first start, so
 * the server answers them as soon as it answers at all, with no ACL change after it. Redis
 * splits each line at spaces only (names have none) and writes it the same way with ACL SAVE.
 */
export function renderInitialAclFile(adminPassword: string, users: readonly { name: string; password: string }[] = []): string {
  checkPassword(adminPassword);
  return [
    // off, with root's rights for the AOF's transactions (see rootDisableArguments)
    `user ${rootUser} off resetpass ${[...allData, ...rootCommandRules].join(' ')}`,
    `user ${adminUser} on #${passwordHash(adminPassword)} ~* &* +@all`,
    ...users.map(({ name, password }) => {
      checkPassword(password);
      return `user ${tenantUserArguments(name, { hashes: [passwordHash(password)] }).join(' ')}`;
    }),
    '',
  ].join('\n');
}

/** The tenant's users among what ACL USERS lists. */
export function isTenantUser(name: string): boolean {
  return !reservedUsers.has(name) && !name.startsWith(replicationUserPrefix);
}
