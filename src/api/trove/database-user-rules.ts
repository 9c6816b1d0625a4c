import { isIP } from 'node:net';
import { CofferError, type EngineCapabilities } from '../../common/index.js';
import { mysqlCharsets, mysqlCollations } from './mysql-charsets.js';
import { nameSkeleton } from './name-skeleton.js';

// Databases and users in request bodies: the initial ones of POST /instances (reference 2.2
// step 5) and those of the database and user APIs (2.3, 2.4). Trove checks names with MySQL's
// rules for every datastore (trove/common/db/mysql/models.py); the reserved names and the
// character-set table follow the instance's engine, and what the engine supports at all
// (databases, users, hosts, access, character sets) follows the capabilities its version
// reported. Messages follow Trove's, except that a password is never quoted back.

/** The engine a request is for: its manager's naming rules and its version's capabilities. */
export interface SchemaTarget {
  manager: string;
  datastore: string;
  capabilities: EngineCapabilities;
}

export interface DatabaseRequest {
  name: string;
  character_set?: string | undefined;
  collate?: string | undefined;
}

export interface UserRequest {
  name: string;
  password: string;
  host?: string | null | undefined;
  databases?: { name: string }[] | undefined;
}

/** What the taskmanager passes on to the guest's prepare (src/bus/contracts/guest.ts). */
export interface DatabaseSpec {
  name: string;
  characterSet?: string;
  collate?: string;
}

export interface UserSpec {
  name: string;
  password: string;
  host: string;
  databases: { name: string }[];
}

interface EngineRules {
  reservedDatabases: string[];
  reservedUsers: string[];
  mysqlCharsets: boolean;
}

const mysqlRules: EngineRules = {
  reservedDatabases: ['mysql', 'information_schema', 'performance_schema', 'sys'],
  // Trove's ignore_users, and the accounts MySQL 8 and MariaDB make for themselves
  reservedUsers: ['os_admin', 'root', 'mysql.sys', 'mysql.session', 'mysql.infoschema', 'mariadb.sys'],
  mysqlCharsets: true,
};

const rulesByManager: Readonly<Record<string, EngineRules>> = {
  mysql: mysqlRules,
  mariadb: mysqlRules,
  postgresql: {
    reservedDatabases: ['os_admin', 'postgres', 'template0', 'template1'],
    reservedUsers: ['os_admin', 'postgres', 'root'],
    mysqlCharsets: false,
  },
  redis: { reservedDatabases: [], reservedUsers: ['default'], mysqlCharsets: false },
};

const bad = (message: string) => new CofferError('BadRequest', message);
const pyList = (items: string[]) => `[${items.map((i) => `'${i}'`).join(', ')}]`;

const databaseName = /^[A-Za-z0-9_-]+[\s?#@]*[A-Za-z0-9_-]+$/;
// Trove also refuses anything Python's repr() would escape: control characters and backslashes.
const controlOrBackslash = /[\u0000-\u001f\u007f\\]/;
const unsupportedInUser = /^\s|\s$|'|"|;|`|,|\//;
// A lone surrogate has no UTF-8 form: an engine would get U+FFFD, a name other than the one asked for.
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// Identifiers handed to engines that do not use the MySQL table still must be plain words.
const plainWord = /^[A-Za-z0-9_.@-]+$/;

function checkDatabaseName(name: string): void {
  if (name === '') throw bad('Schema name empty.');
  if (name.length > 64) throw bad(`Schema name '${name}' is too long. Max length = 64.`);
  if (!databaseName.test(name) || controlOrBackslash.test(name)) {
    throw bad(
      `'${name}' is not a valid schema name. A database name has letters, digits, '_' and '-' (at least two), ` +
        "with at most one run of spaces, '?', '#' or '@' between them.",
    );
  }
}

function isValidString(value: string): boolean {
  return value !== '' && !unsupportedInUser.test(value) && !controlOrBackslash.test(value) && !loneSurrogate.test(value);
}

function isValidHost(host: string): boolean {
  if (host === '%') return true;
  // '%' is MySQL's wildcard; Trove accepts it inside an address or network.
  const [address = '', prefix, ...rest] = host.replace(/%/g, '1').split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : -1;
  return bits >= 0 && bits <= (family === 4 ? 32 : 128);
}

function engineRules(manager: string): EngineRules {
  return rulesByManager[manager] ?? mysqlRules;
}

function notSupported(operation: string, target: SchemaTarget, field: string): CofferError {
  return new CofferError(
    'OperationNotSupported',
    `The '${operation}' operation is not supported for the '${target.datastore}' datastore: leave out '${field}'.`,
  );
}

/** A database named in a path or in an access list: a valid name that is not the engine's own. */
export function validateDatabaseName(name: string, target: SchemaTarget): string {
  checkDatabaseName(name);
  const { reservedDatabases } = engineRules(target.manager);
  if (reservedDatabases.includes(name)) {
    throw bad(`Database name "${name}" is on the reserved list: ${pyList(reservedDatabases)}.`);
  }
  return name;
}

export function validateDatabases(requested: DatabaseRequest[], target: SchemaTarget): DatabaseSpec[] {
  const rules = engineRules(target.manager);
  if (requested.length > 0 && !target.capabilities.databases) throw notSupported('create database', target, 'databases');
  const seen = new Set<string>();
  return requested.map((db) => {
    validateDatabaseName(db.name, target);
    if (seen.has(db.name)) {
      throw bad('Two or more databases share the same name in the initial databases list. Please correct the names or remove the duplicate entries.');
    }
    seen.add(db.name);
    const spec: DatabaseSpec = { name: db.name };
    const charset = db.character_set || undefined;
    const collate = db.collate || undefined;
    if ((charset !== undefined || collate !== undefined) && !target.capabilities.characterSets) {
      throw bad(`Databases of the '${target.datastore}' datastore take no character set or collation: leave out 'character_set' and 'collate'.`);
    }
    if (rules.mysqlCharsets) {
      // Own keys only: a character set named "constructor" or "__proto__" is no entry of the table.
      const collations = charset === undefined || !Object.hasOwn(mysqlCharsets, charset) ? undefined : mysqlCharsets[charset];
      if (charset !== undefined && collations === undefined) throw bad(`'${charset}' not a valid character set.`);
      if (collate !== undefined) {
        if (charset !== undefined && !collations?.includes(collate)) {
          throw bad(`${collate} not a valid collation for charset ${charset}.`);
        }
        if (charset === undefined && !mysqlCollations.has(collate)) throw bad(`'${collate}' not a valid collation.`);
      }
    } else {
      if (charset !== undefined && !plainWord.test(charset)) throw bad(`'${charset}' not a valid character set.`);
      if (collate !== undefined && !plainWord.test(collate)) throw bad(`'${collate}' not a valid collation.`);
    }
    if (charset !== undefined) spec.characterSet = charset;
    if (collate !== undefined) spec.collate = collate;
    return spec;
  });
}

/** A user name given in a body: Trove's rules, and not one of the engine's own users. */
export function validateUserName(name: string, target: SchemaTarget): string {
  if (name === '') throw bad('User name empty.');
  if (name.length > 16) throw bad(`User name '${name}' is too long. Max length = 16.`);
  if (!isValidString(name)) {
    throw bad(
      `'${name}' is not a valid user name. A user name may have any characters but quotes (' " \`), ';', ',', '/', ` +
        'backslashes and control characters, and may not start or end with a space.',
    );
  }
  const { reservedUsers } = engineRules(target.manager);
  // Compared by what they look like, so that no look-alike of an engine's own user gets in.
  const skeleton = nameSkeleton(name);
  if (reservedUsers.some((reserved) => nameSkeleton(reserved) === skeleton)) {
    throw bad(`User name "${name}" is on the reserved list: ${pyList(reservedUsers)}.`);
  }
  return name;
}

/** A host pattern given in a body; engines without host patterns take only `%`. */
export function validateUserHost(host: string | null | undefined, userName: string, target: SchemaTarget): string {
  const value = host ?? '%';
  if (!isValidHost(value)) throw bad(`'${value}' is not a valid hostname.`);
  if (value !== '%' && !target.capabilities.userHosts) {
    throw bad(`Users of the '${target.datastore}' datastore have no host patterns: leave out 'host' for user '${userName}' (or give '%').`);
  }
  return value;
}

export function validatePassword(password: string, userName: string): string {
  if (!isValidString(password)) throw bad(`The password of user '${userName}' is not a valid password.`);
  return password;
}

/**
 * Users to create. With `initialDatabases` (POST /instances) each database a user is given must
 * be one of them; without (POST /users) it must merely be a valid name: the engine grants it.
 */
export function validateUsers(requested: UserRequest[], target: SchemaTarget, initialDatabases?: DatabaseSpec[]): UserSpec[] {
  if (requested.length > 0 && !target.capabilities.users) throw notSupported('create user', target, 'users');
  const initial = initialDatabases === undefined ? undefined : new Set(initialDatabases.map((d) => d.name));
  const seen = new Set<string>();
  return requested.map((user) => {
    const name = validateUserName(user.name, target);
    const host = validateUserHost(user.host, name, target);
    const identity = `${name}@${host}`;
    if (seen.has(identity)) {
      throw bad('Two or more users share the same name and host in the initial users list. Please correct the names or remove the duplicate entries.');
    }
    seen.add(identity);
    validatePassword(user.password, name);
    const access: { name: string }[] = [];
    const requestedAccess = user.databases ?? [];
    if (requestedAccess.length > 0 && !target.capabilities.userAccess) {
      throw bad(`Users of the '${target.datastore}' datastore cannot be given databases: leave out 'databases' for user '${name}'.`);
    }
    for (const db of requestedAccess) {
      validateDatabaseName(db.name, target);
      if (initial !== undefined && !initial.has(db.name)) {
        throw bad(
          `The request indicates that user ${name} should have access to database ${db.name}, but database ${db.name} is not included in the initial databases list.`,
        );
      }
      if (!access.some((a) => a.name === db.name)) access.push({ name: db.name });
    }
    return { name, password: user.password, host, databases: access };
  });
}
