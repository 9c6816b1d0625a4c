import { isIP } from 'node:net';
import { CofferError } from '../../common/index.js';
import { mysqlCharsets, mysqlCollations } from './mysql-charsets.js';

// Initial databases and users of POST /instances (reference 2.2 step 5). Trove checks names
// with MySQL's rules for every datastore (trove/common/db/mysql/models.py); the reserved names
// and the character-set table follow the instance's engine. Messages follow Trove's, except
// that a password is never quoted back.

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
  /** false for engines (Redis) that have neither databases nor users */
  supportsSchemas: boolean;
  mysqlCharsets: boolean;
}

const mysqlRules: EngineRules = {
  reservedDatabases: ['mysql', 'information_schema', 'performance_schema', 'sys'],
  reservedUsers: ['os_admin', 'root'],
  supportsSchemas: true,
  mysqlCharsets: true,
};

const rulesByManager: Readonly<Record<string, EngineRules>> = {
  mysql: mysqlRules,
  mariadb: mysqlRules,
  postgresql: {
    reservedDatabases: ['os_admin', 'postgres', 'template0', 'template1'],
    reservedUsers: ['os_admin', 'postgres', 'root'],
    supportsSchemas: true,
    mysqlCharsets: false,
  },
  redis: { reservedDatabases: [], reservedUsers: [], supportsSchemas: false, mysqlCharsets: false },
};

const bad = (message: string) => new CofferError('BadRequest', message);
const pyList = (items: string[]) => `[${items.map((i) => `'${i}'`).join(', ')}]`;

const databaseName = /^[A-Za-z0-9_-]+[\s?#@]*[A-Za-z0-9_-]+$/;
// Trove also refuses anything Python's repr() would escape: control characters and backslashes.
const controlOrBackslash = /[\u0000-\u001f\u007f\\]/;
const unsupportedInUser = /^\s|\s$|'|"|;|`|,|\//;
// Identifiers handed to engines that do not use the MySQL table still must be plain words.
const plainWord = /^[A-Za-z0-9_.@-]+$/;

function checkDatabaseName(name: string): void {
  if (name === '') throw bad('Schema name empty.');
  if (name.length > 64) throw bad(`Schema name '${name}' is too long. Max length = 64.`);
  if (!databaseName.test(name) || controlOrBackslash.test(name)) throw bad(`'${name}' is not a valid schema name.`);
}

function isValidString(value: string): boolean {
  return value !== '' && !unsupportedInUser.test(value) && !controlOrBackslash.test(value);
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

function notSupported(operation: string, datastore: string): CofferError {
  return new CofferError('NotImplemented', `The '${operation}' operation is not supported for the '${datastore}' datastore.`);
}

export function validateDatabases(requested: DatabaseRequest[], manager: string, datastore: string): DatabaseSpec[] {
  const rules = engineRules(manager);
  if (requested.length > 0 && !rules.supportsSchemas) throw notSupported('create database', datastore);
  const seen = new Set<string>();
  return requested.map((db) => {
    checkDatabaseName(db.name);
    if (rules.reservedDatabases.includes(db.name)) {
      throw bad(`Database name "${db.name}" is on the reserved list: ${pyList(rules.reservedDatabases)}.`);
    }
    if (seen.has(db.name)) {
      throw bad('Two or more databases share the same name in the initial databases list. Please correct the names or remove the duplicate entries.');
    }
    seen.add(db.name);
    const spec: DatabaseSpec = { name: db.name };
    const charset = db.character_set || undefined;
    const collate = db.collate || undefined;
    if (rules.mysqlCharsets) {
      if (charset !== undefined && mysqlCharsets[charset] === undefined) throw bad(`'${charset}' not a valid character set.`);
      if (collate !== undefined) {
        if (charset !== undefined && !mysqlCharsets[charset]?.includes(collate)) {
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

export function validateUsers(
  requested: UserRequest[],
  databases: DatabaseSpec[],
  manager: string,
  datastore: string,
): UserSpec[] {
  const rules = engineRules(manager);
  if (requested.length > 0 && !rules.supportsSchemas) throw notSupported('create user', datastore);
  const initial = new Set(databases.map((d) => d.name));
  const seen = new Set<string>();
  return requested.map((user) => {
    const { name } = user;
    if (name === '') throw bad('User name empty.');
    if (name.length > 16) throw bad(`User name '${name}' is too long. Max length = 16.`);
    if (!isValidString(name)) throw bad(`'${name}' is not a valid user name.`);
    if (rules.reservedUsers.includes(name)) {
      throw bad(`User name "${name}" is on the reserved list: ${pyList(rules.reservedUsers)}.`);
    }
    const host = user.host ?? '%';
    if (!isValidHost(host)) throw bad(`'${host}' is not a valid hostname.`);
    const identity = `${name}@${host}`;
    if (seen.has(identity)) {
      throw bad('Two or more users share the same name and host in the initial users list. Please correct the names or remove the duplicate entries.');
    }
    seen.add(identity);
    if (!isValidString(user.password)) throw bad(`The password of user '${name}' is not a valid password.`);
    const access: { name: string }[] = [];
    for (const db of user.databases ?? []) {
      checkDatabaseName(db.name);
      if (!initial.has(db.name)) {
        throw bad(
          `The request indicates that user ${name} should have access to database ${db.name}, but database ${db.name} is not included in the initial databases list.`,
        );
      }
      if (!access.some((a) => a.name === db.name)) access.push({ name: db.name });
    }
    return { name, password: user.password, host, databases: access };
  });
}
