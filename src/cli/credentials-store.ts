import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRecord } from './api-client.js';
import { CliError } from './cli-error.js';

/** What `coffer login` keeps between commands. The token is a secret: the file is 0600. */
export interface StoredCredentials {
  /** The URL given to `coffer login`. */
  url: string;
  token: string;
  /** ISO 8601. */
  expiresAt: string;
  projectId: string;
  /** The catalog's public database endpoint; it already ends in `/v1.0/<project id>`. */
  databaseEndpoint: string;
}

const fileName = 'credentials.json';

export function configDir(env: Readonly<Record<string, string | undefined>>, homeDir: string): string {
  const fromEnv = env.COFFER_CONFIG_DIR;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homeDir, '.config', 'coffer');
}

export class CredentialsStore {
  readonly path: string;

  constructor(private readonly dir: string) {
    this.path = join(dir, fileName);
  }

  /** The saved credentials, or undefined when there are none (or the file is unreadable as such). */
  async read(): Promise<StoredCredentials | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CliError(`Cannot read ${this.path}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return undefined;
    }
    return isStoredCredentials(parsed) ? parsed : undefined;
  }

  async write(credentials: StoredCredentials): Promise<void> {
    const created = await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Tighten only a directory we made: COFFER_CONFIG_DIR may point at one the user shares.
    if (created !== undefined) await chmod(this.dir, 0o700);
    // Write then rename, so a reader never sees half a file and the token is never world-readable.
    const temp = join(this.dir, `.${fileName}.${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(temp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      await chmod(temp, 0o600);
      await rename(temp, this.path);
    } catch (err) {
      await rm(temp, { force: true });
      throw new CliError(`Cannot save credentials to ${this.path}: ${(err as Error).message}`);
    }
  }

  /** Deletes the file; false when there was none. */
  async remove(): Promise<boolean> {
    try {
      await rm(this.path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new CliError(`Cannot delete ${this.path}: ${(err as Error).message}`);
    }
  }
}

function isStoredCredentials(value: unknown): value is StoredCredentials {
  return (
    isRecord(value) &&
    ['url', 'token', 'expiresAt', 'projectId', 'databaseEndpoint'].every((key) => typeof value[key] === 'string')
  );
}
