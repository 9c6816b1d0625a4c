import { CofferError, redactUrl } from '../common/index.js';

// The one string that says where the state lives, as operators write it on the command line.

export type DatabaseTarget =
  | { engine: 'sqlite'; /** a file path, or ':memory:' */ path: string }
  | { engine: 'mysql'; host: string; port: number; user: string; password: string | undefined; database: string }
  | { engine: 'postgres'; /** handed to pg as is, so its own options (sslmode, host=...) work */ url: string; database: string };

const supported =
  'sqlite:<path>, sqlite:///<absolute path>, sqlite::memory:, mysql://user:password@host:port/database, ' +
  'mariadb://..., postgres://user:password@host:port/database or postgresql://...';

export function parseDatabaseUrl(url: string): DatabaseTarget {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'sqlite':
      return { engine: 'sqlite', path: sqlitePath(url.slice('sqlite:'.length)) };
    case 'mysql':
    case 'mariadb':
      return mysqlTarget(url);
    case 'postgres':
    case 'postgresql':
      return { engine: 'postgres', url, database: databaseName(parse(url)) };
    default:
      throw new CofferError(
        'BadRequest',
        `Unsupported state database URL ${redactUrl(url)}: use one of ${supported}.`,
      );
  }
}

function sqlitePath(rest: string): string {
  // sqlite:///abs/path keeps its leading slash; sqlite:relative/path is relative to the cwd.
  const path = rest.startsWith('//') ? rest.slice(2) : rest;
  if (path === '') throw new CofferError('BadRequest', `The SQLite URL names no file: use one of ${supported}.`);
  return path;
}

function mysqlTarget(url: string): DatabaseTarget {
  const parsed = parse(url);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new CofferError('BadRequest', `The URL ${redactUrl(url)} names no host.`);
  return {
    engine: 'mysql',
    host,
    port: parsed.port === '' ? 3306 : Number(parsed.port),
    user: decodeURIComponent(parsed.username),
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    database: databaseName(parsed),
  };
}

function parse(url: string): URL {
  try {
    return new URL(url);
  } catch (cause) {
    throw new CofferError('BadRequest', `The state database URL ${redactUrl(url)} is malformed.`, { cause });
  }
}

function databaseName(url: URL): string {
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (name === '' || name.includes('/')) {
    throw new CofferError(
      'BadRequest',
      `The URL ${redactUrl(url.href)} must name one database, e.g. ${url.protocol}//host/coffer.`,
    );
  }
  return name;
}
