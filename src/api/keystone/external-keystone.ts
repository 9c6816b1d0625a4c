import type { Logger } from '../../common/index.js';
import type { CallerValidator } from '../auth-context.js';
import { registerEndpoints } from './endpoint-registration.js';
import { KeystoneCallers, type KeystoneCallerOptions } from './keystone-callers.js';
import { KeystoneClient, type KeystoneClientOptions } from './keystone-client.js';

export interface ExternalKeystoneOptions extends KeystoneClientOptions, KeystoneCallerOptions {
  /** register Coffer's endpoints in Keystone's catalog at start (needs an admin service user) */
  registerEndpoint: boolean;
}

export interface ExternalIdentity {
  callers: CallerValidator;
  /** Keystone's root URL, where clients authenticate */
  url: string;
}

/**
 * Signs in to Keystone as Coffer's service user (so that a wrong setting stops the start, not
 * the first request), registers Coffer's endpoints when asked, and returns the validator of
 * X-Auth-Token for the API (buildApiServer's externalIdentity).
 */
export async function connectKeystone(
  options: ExternalKeystoneOptions,
  publicUrl: string,
  logger: Logger,
): Promise<ExternalIdentity> {
  const client = new KeystoneClient(options, logger);
  await client.signIn();
  if (options.registerEndpoint) await registerEndpoints(client, { publicUrl, region: options.region }, logger);
  return { callers: new KeystoneCallers(client, options, logger), url: client.root };
}
