import { ApiClient } from './api-client.js';
import { notLoggedIn } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { configDir, CredentialsStore, type StoredCredentials } from './credentials-store.js';

export function credentialsStore(io: CliIo): CredentialsStore {
  return new CredentialsStore(configDir(io.env, io.homeDir));
}

/** The server COFFER_URL names, if it names one: commands then use the login saved for it. */
export function chosenServer(io: CliIo): string | undefined {
  const url = io.env.COFFER_URL;
  return url === undefined || url === '' ? undefined : url;
}

/** The login for COFFER_URL's server, else for the server of the last `coffer login`. */
export function savedLogin(io: CliIo): Promise<StoredCredentials | undefined> {
  return credentialsStore(io).read(chosenServer(io));
}

/** A client for the Trove API from the saved login; "Not logged in" when there is none or it expired. */
export async function openSession(io: CliIo, now: Date = new Date()): Promise<ApiClient> {
  const credentials = await savedLogin(io);
  if (credentials === undefined) throw notLoggedIn(chosenServer(io));
  const expiresAt = Date.parse(credentials.expiresAt);
  if (!Number.isFinite(expiresAt) || expiresAt <= now.getTime()) {
    throw notLoggedIn(credentials.url, 'the saved token has expired');
  }
  return new ApiClient({
    baseUrl: credentials.databaseEndpoint,
    serverUrl: credentials.url,
    token: credentials.token,
  });
}
