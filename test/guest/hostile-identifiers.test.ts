// test-long (minutes of CPU: MySQL's caching_sha2 hash of every password it checks)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCofferError } from '../../src/common/index.js';
import { mariadbFlavor } from '../../src/guest/engines/mariadb/engine.js';
import { mysqlFlavor } from '../../src/guest/engines/mysql/engine.js';
import {
  alterUserPasswordStatement,
  checkDatabaseName as checkMysqlDatabase,
  checkUserName as checkMysqlUser,
  createDatabaseStatement as mysqlCreateDatabase,
  createUserStatement,
  dropDatabaseStatement as mysqlDropDatabase,
  dropUserStatement,
  grantDatabaseStatement as mysqlGrantDatabase,
  grantSuperuserStatement,
  revokeAllStatement,
} from '../../src/guest/engines/mysql-family/sql.js';
import {
  alterRolePasswordStatement,
  checkName as checkPgName,
  createDatabaseStatement as pgCreateDatabase,
  createRoleStatement,
  disableRootStatement,
  dropDatabaseStatement as pgDropDatabase,
  dropOwnedStatement,
  dropRoleStatement,
  enableRootStatement,
  grantDatabaseStatement as pgGrantDatabase,
  grantPublicSchemaStatement,
  reassignOwnedStatement,
  renameRoleStatement,
  reservedDatabases,
  reservedRoles,
  revokeDatabaseStatement,
  revokePublicConnectStatement,
  revokePublicSchemaStatement,
} from '../../src/guest/engines/postgresql/admin.js';
import { checkUserName as checkRedisUser, rootEnableArguments, tenantUserArguments } from '../../src/guest/engines/redis/acl.js';
import { fuzzSeed, hostileNames, longStrings, randomNames, seededRandom } from '../support/hostile-corpus.js';

// Every statement an engine builds from a tenant's names and passwords, fed the hostile corpus
// and a seeded generated one. The check is structural: the statement is scanned as the server's
// lexer would (quoted identifiers, string literals, bare words) and must have exactly the tokens
// it has for harmless names, with each quoted token decoding back to the name it was given. A
// quote that escaped its token, or a comment opener outside one, changes the tokens and fails.

const seed = fuzzSeed();
console.log(`hostile identifiers: seed ${seed} (COFFER_FUZZ_SEED replays it)`);
const corpus = [...hostileNames, ...longStrings, ...randomNames(seededRandom(seed), 300)];

type Token = { kind: 'ident' | 'literal' | 'word'; value: string };

/** A delimited token from `start` (the opening quote); `''`-style doubling, and backslash escapes when asked. */
function delimited(sql: string, start: number, quote: string, backslash: boolean): { value: string; end: number } {
  let value = '';
  let i = start + 1;
  for (;;) {
    if (i >= sql.length) throw new Error(`unterminated ${quote} token in: ${sql}`);
    const c = sql[i]!;
    if (backslash && c === '\\') {
      const next = sql[i + 1];
      if (next === undefined) throw new Error(`dangling backslash in: ${sql}`);
      const escapes: Record<string, string> = { '0': '\0', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a' };
      value += escapes[next] ?? next;
      i += 2;
    } else if (c === quote) {
      if (sql[i + 1] === quote) {
        value += quote;
        i += 2;
      } else {
        return { value, end: i + 1 };
      }
    } else {
      value += c;
      i++;
    }
  }
}

/**
 * PostgreSQL's lexer, as far as these statements need it: "ident" with "" doubled, 'literal' with
 * '' doubled, E'literal' with backslash escapes, and bare words split at spaces and punctuation.
 */
function pgTokens(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === ' ') i++;
    else if (c === '"') {
      const t = delimited(sql, i, '"', false);
      tokens.push({ kind: 'ident', value: t.value });
      i = t.end;
    } else if (c === "'" || ((c === 'E' || c === 'e') && sql[i + 1] === "'" && (i === 0 || sql[i - 1] === ' '))) {
      const backslash = c !== "'";
      const t = delimited(sql, backslash ? i + 1 : i, "'", backslash);
      tokens.push({ kind: 'literal', value: t.value });
      i = t.end;
    } else if ('(),;'.includes(c)) {
      tokens.push({ kind: 'word', value: c });
      i++;
    } else {
      let word = '';
      while (i < sql.length && !' "\'(),;'.includes(sql[i]!)) word += sql[i++];
      tokens.push({ kind: 'word', value: word });
    }
  }
  return tokens;
}

/** MySQL's and MariaDB's: `ident` with `` doubled, 'literal' with backslash escapes (sql_mode pinned), words. */
function mysqlTokens(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === ' ') i++;
    else if (c === '`') {
      const t = delimited(sql, i, '`', false);
      tokens.push({ kind: 'ident', value: t.value });
      i = t.end;
    } else if (c === "'") {
      const t = delimited(sql, i, "'", true);
      tokens.push({ kind: 'literal', value: t.value });
      i = t.end;
    } else if ('(),;@'.includes(c)) {
      tokens.push({ kind: 'word', value: c });
      i++;
    } else {
      let word = '';
      while (i < sql.length && !' `\'(),;@'.includes(sql[i]!)) word += sql[i++];
      tokens.push({ kind: 'word', value: word });
    }
  }
  return tokens;
}

/**
 * `build(args)` must scan to the same tokens as `build(harmless)`, except that each token which
 * held harmless[k] now holds args[k] (after `decode`, for wildcard escaping).
 */
function assertQuoted(
  lexer: (sql: string) => Token[],
  build: (...args: string[]) => string,
  harmless: string[],
  args: string[],
  decode: (token: Token) => string = (t) => t.value,
): void {
  const template = lexer(build(...harmless));
  const sql = build(...args);
  let tokens: Token[];
  try {
    tokens = lexer(sql);
  } catch (err) {
    assert.fail(`${JSON.stringify(args)}: ${String(err)}`);
  }
  assert.equal(tokens.length, template.length, `${JSON.stringify(args)} changed the statement's tokens: ${JSON.stringify(sql)}`);
  template.forEach((expected, k) => {
    const actual = tokens[k]!;
    assert.equal(actual.kind, expected.kind, `${JSON.stringify(args)}: token ${k} of ${JSON.stringify(sql)}`);
    const slot = harmless.indexOf(decode(expected));
    if (slot >= 0) assert.equal(decode(actual), args[slot], `${JSON.stringify(args)}: token ${k} of ${JSON.stringify(sql)}`);
    else assert.equal(actual.value, expected.value, `${JSON.stringify(args)}: token ${k} of ${JSON.stringify(sql)}`);
  });
}

const badRequest = (err: unknown) => isCofferError(err) && err.code === 'BadRequest';
const pairs = corpus.map((name, i) => [name, corpus[(i * 7 + 3) % corpus.length]!] as const);

describe('the statement scanner', () => {
  it('notices names quoted naively, which is what the engine tests below rely on', () => {
    const naivePg = (n: string) => `DROP ROLE "${n}"`;
    const naiveMysql = (n: string, h: string) => `DROP USER '${n}'@'${h}'`;
    assert.throws(() => assertQuoted(pgTokens, naivePg, ['harmless1'], ['x"; DROP DATABASE "y']), assert.AssertionError);
    assert.throws(() => assertQuoted(pgTokens, naivePg, ['harmless1'], ['x" --']), assert.AssertionError);
    assert.throws(() => assertQuoted(mysqlTokens, naiveMysql, ['harmless1', 'harmless2'], ["a\\", 'b']), assert.AssertionError);
    assert.throws(() => assertQuoted(mysqlTokens, naiveMysql, ['harmless1', 'harmless2'], ["a'@'b", 'c']), assert.AssertionError);
    assertQuoted(pgTokens, naivePg, ['harmless1'], ['plain name']);
  });
});

describe('postgresql statements with hostile names', () => {
  it('quote every name as one identifier and every password as one literal', () => {
    const one: [string, (n: string) => string][] = [
      ['drop database', (n) => pgDropDatabase(n)],
      ['drop database (no force)', (n) => pgDropDatabase(n, false)],
      ['create database', (n) => pgCreateDatabase({ name: n })],
      ['revoke connect', revokePublicConnectStatement],
      ['grant schema', grantPublicSchemaStatement],
      ['revoke schema', revokePublicSchemaStatement],
      ['reassign owned', reassignOwnedStatement],
      ['drop owned', dropOwnedStatement],
      ['drop role', dropRoleStatement],
      ['enable root', (p) => enableRootStatement(false, p)],
      ['enable root again', (p) => enableRootStatement(true, p)],
      ['disable root', disableRootStatement],
    ];
    const two: [string, (a: string, b: string) => string][] = [
      ['create role', createRoleStatement],
      ['alter role', alterRolePasswordStatement],
      ['grant database', pgGrantDatabase],
      ['revoke database', revokeDatabaseStatement],
      ['rename role', renameRoleStatement],
      ['create database with encoding and collation', (n, c) => pgCreateDatabase({ name: n, characterSet: c, collate: c })],
    ];
    let checked = 0;
    for (const name of corpus) {
      for (const [, build] of one) {
        assertQuoted(pgTokens, build, ['harmless1'], [name]);
        checked++;
      }
    }
    for (const [a, b] of pairs) {
      for (const [, build] of two) {
        assertQuoted(pgTokens, build, ['harmless1', 'harmless2'], [a, b]);
        checked++;
      }
    }
    assert.ok(checked > 5000, `${checked} statements checked`);
  });

  it('refuse what a quoted identifier cannot carry: NUL, more than 63 bytes (truncated), reserved names', () => {
    for (const name of corpus) {
      const bytes = Buffer.byteLength(name, 'utf8');
      const refusable = bytes === 0 || bytes > 63 || name.includes('\0') || name.startsWith('pg_');
      for (const [kind, reserved] of [['database', reservedDatabases], ['user', reservedRoles]] as const) {
        if (refusable || reserved.has(name)) assert.throws(() => checkPgName(kind, name, reserved), badRequest, JSON.stringify(name));
        else assert.doesNotThrow(() => checkPgName(kind, name, reserved), JSON.stringify(name));
      }
    }
  });
});

describe('mysql-family statements with hostile names', () => {
  // Wildcards in GRANT ... ON db.* are escaped with a backslash inside the backquotes.
  const unwildcard = (t: Token) => (t.kind === 'ident' ? t.value.replace(/\\([\\_%])/g, '$1') : t.value);

  it('quote every name and host, and every password hash, as one token', () => {
    let checked = 0;
    for (const name of corpus) {
      assertQuoted(mysqlTokens, (n) => mysqlCreateDatabase({ name: n }), ['harmless1'], [name]);
      assertQuoted(mysqlTokens, (n) => mysqlCreateDatabase({ name: n }, true), ['harmless1'], [name]);
      assertQuoted(mysqlTokens, mysqlDropDatabase, ['harmless1'], [name]);
      checked += 3;
    }
    for (const [a, b] of pairs) {
      for (const build of [dropUserStatement, revokeAllStatement, grantSuperuserStatement]) {
        assertQuoted(mysqlTokens, build, ['harmless1', 'harmless2'], [a, b]);
      }
      assertQuoted(mysqlTokens, mysqlGrantDatabase, ['harmless1', 'harmless2', 'harmless3'], [a, b, `${b}${a}`], unwildcard);
      for (const flavor of [mariadbFlavor, mysqlFlavor]) {
        const identified = (password: string) => flavor.identifiedClause(flavor.hashPassword(password));
        for (const build of [createUserStatement, alterUserPasswordStatement]) {
          const clause = identified(a); // salted: computed once for the template and the statement
          assertQuoted(mysqlTokens, (n, h) => build(n, h, clause), ['harmless1', 'harmless2'], [a, b]);
          // the hash of any password is one literal
          const template = mysqlTokens(build('u', 'h', identified('harmless')));
          assert.deepEqual(mysqlTokens(build('u', 'h', identified(b))).map((t) => t.kind), template.map((t) => t.kind), JSON.stringify(b));
        }
      }
      checked += 10;
    }
    assert.ok(checked > 2000, `${checked} statements checked`);
  });

  it('refuse names a server would cut or misread: empty, NUL, too long, trailing space, system names', () => {
    for (const name of corpus) {
      const length = [...name].length;
      const badDatabase = length === 0 || length > 64 || name.includes('\0') || name.endsWith(' ');
      if (badDatabase) assert.throws(() => checkMysqlDatabase(name), badRequest, JSON.stringify(name));
      else if (!['mysql', 'information_schema', 'performance_schema', 'sys', 'os_admin'].includes(name.toLowerCase())) {
        assert.doesNotThrow(() => checkMysqlDatabase(name), JSON.stringify(name));
      }
      if (length === 0 || length > 32 || name.includes('\0')) assert.throws(() => checkMysqlUser(name, 32, () => false), badRequest, JSON.stringify(name));
    }
  });
});

describe('redis ACL arguments with hostile names', () => {
  it('keep a name in the user position and a password in one > rule, nothing else taken from them', () => {
    const template = tenantUserArguments('harmless', { password: 'harmless-pw' });
    const rootTemplate = rootEnableArguments('harmless-pw');
    let accepted = 0;
    for (const [name, password] of pairs) {
      let args: string[];
      try {
        args = tenantUserArguments(name, { password });
      } catch (err) {
        // refused only for what Redis cannot take or reads otherwise: whitespace, control characters, empty, too long, reserved
        assert.ok(badRequest(err), String(err));
        const bytes = Buffer.byteLength(name, 'utf8');
        const refusable = /[\s\u0000-\u001f\u007f]/.test(name) || bytes === 0 || bytes > 128 || ['default', 'os_admin'].includes(name) || password === '';
        assert.ok(refusable, `${JSON.stringify(name)} was refused: ${String(err)}`);
        continue;
      }
      accepted++;
      assert.equal(args.length, template.length);
      assert.equal(args[0], name);
      assert.equal(args[3], `>${password}`);
      assert.deepEqual([args[1], args[2], ...args.slice(4)], [template[1], template[2], ...template.slice(4)]);
      const root = rootEnableArguments(password);
      assert.deepEqual(root.filter((a) => a !== `>${password}`), rootTemplate.filter((a) => a !== '>harmless-pw'));
      assert.throws(() => checkRedisUser(`${name} x`), badRequest);
    }
    assert.ok(accepted > 100, `${accepted} accepted names checked`);
  });
});
