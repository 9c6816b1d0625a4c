import { ApiClient } from './api-client.js';
import { notLoggedIn } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { configDir, CredentialsStore } from './credentials-store.js';

export function credentialsStore(io: CliIo): CredentialsStore {
  return new CredentialsStore(configDir(io.env, io.homeDir));
}

/** A client for the Trove API from the saved login; "Not logged in" when there is none or it expired. */
export async function openSession(io: CliIo, now: Date = new Date()): Promise<ApiClient> {
  const credentials = await credentialsStore(io).read();
  if (credentials === undefined) throw notLoggedIn();
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
