import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRecord } from './api-client.js';
import { CliError } from './cli-error.js';

/** What `coffer login` keeps between commands for one server. The token is a secret: the file is 0600. */
export interface StoredCredentials {
  /** The URL given to `coffer login` (without trailing slashes): the key of this login. */
  url: string;
  token: string;
  /** ISO 8601. */
  expiresAt: string;
  projectId: string;
  /** The catalog's public database endpoint; it already ends in `/v1.0/<project id>`. */
  databaseEndpoint: string;
}

/**
 * The file's content: one login per server URL, and the URL commands use when COFFER_URL names
 * none. Logins to several servers live side by side, so logging in to a second server does not
 * log the user out of the first.
 */
export interface CredentialsFile {
  current: string | undefined;
  servers: Record<string, StoredCredentials>;
}

const fileName = 'credentials.json';

export function configDir(env: Readonly<Record<string, string | undefined>>, homeDir: string): string {
  const fromEnv = env.COFFER_CONFIG_DIR;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homeDir, '.config', 'coffer');
}

/** The key a URL is saved under: what `coffer login --url` keeps of it. */
export function serverKey(url: string): string {
  return url.replace(/\/+$/, '');
}

export class CredentialsStore {
  readonly path: string;

  constructor(private readonly dir: string) {
    this.path = join(dir, fileName);
  }

  /** Every saved login; none when there is no file (or it is unreadable as one). */
  async readAll(): Promise<CredentialsFile> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { current: undefined, servers: {} };
      throw new CliError(`Cannot read ${this.path}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { current: undefined, servers: {} };
    }
    return parseCredentialsFile(parsed);
  }

  /** The login for `url`, or for the current server when `url` is undefined. */
  async read(url?: string): Promise<StoredCredentials | undefined> {
    const all = await this.readAll();
    const key = url === undefined ? all.current : serverKey(url);
    return key === undefined ? undefined : all.servers[key];
  }

  /** Saves the login under its URL (replacing an older one for that URL) and makes it current. */
  async write(credentials: StoredCredentials): Promise<void> {
    const all = await this.readAll();
    await this.save({ current: credentials.url, servers: { ...all.servers, [credentials.url]: credentials } });
  }

  /**
   * Forgets the login for `url`; the current server becomes another saved one, if any. The file
   * goes when nothing is left in it. False when there was no such login.
   */
  async remove(url: string): Promise<boolean> {
    const all = await this.readAll();
    const key = serverKey(url);
    if (all.servers[key] === undefined) return false;
    const { [key]: _removed, ...servers } = all.servers;
    const remaining = Object.keys(servers);
    if (remaining.length === 0) {
      try {
        await rm(this.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new CliError(`Cannot delete ${this.path}: ${(err as Error).message}`);
        }
      }
      return true;
    }
    const current = all.current === key ? remaining[0] : all.current;
    await this.save({ current, servers });
    return true;
  }

  private async save(content: CredentialsFile): Promise<void> {
    const created = await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Tighten only a directory we made: COFFER_CONFIG_DIR may point at one the user shares.
    if (created !== undefined) await chmod(this.dir, 0o700);
    // Write then rename, so a reader never sees half a file and the token is never world-readable.
    const temp = join(this.dir, `.${fileName}.${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(temp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      await chmod(temp, 0o600);
      await rename(temp, this.path);
    } catch (err) {
      await rm(temp, { force: true });
      throw new CliError(`Cannot save credentials to ${this.path}: ${(err as Error).message}`);
    }
  }
}

/** Today's shape, or the one-login file that earlier versions wrote (read as that one server). */
function parseCredentialsFile(value: unknown): CredentialsFile {
  if (isStoredCredentials(value)) {
    const key = serverKey(value.url);
    return { current: key, servers: { [key]: { ...value, url: key } } };
  }
  if (!isRecord(value) || !isRecord(value.servers)) return { current: undefined, servers: {} };
  const servers: Record<string, StoredCredentials> = {};
  for (const [key, entry] of Object.entries(value.servers)) {
    if (isStoredCredentials(entry) && serverKey(entry.url) === key) servers[key] = entry;
  }
  const current = typeof value.current === 'string' && servers[value.current] !== undefined ? value.current : undefined;
  return { current, servers };
}

function isStoredCredentials(value: unknown): value is StoredCredentials {
  return (
    isRecord(value) &&
    ['url', 'token', 'expiresAt', 'projectId', 'databaseEndpoint'].every((key) => typeof value[key] === 'string')
  );
}
