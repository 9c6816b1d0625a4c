import { CofferError, type Logger } from '../../common/index.js';
import type { Caller, CallerValidator } from '../auth-context.js';
import type { KeystoneClient } from './keystone-client.js';
import { tokenBodySchema } from './keystone-schemas.js';
import { TokenCache } from './token-cache.js';

// Validates X-Auth-Token against an external Keystone as keystonemiddleware's auth_token does:
// GET /v3/auth/tokens with Coffer's service token in X-Auth-Token and the user's in
// X-Subject-Token (200: valid; 404: invalid, expired or revoked), and takes the user, the project
// and the role names from Keystone's answer. Answers, invalid ones too, are cached (token-cache.ts).
// Only project-scoped tokens name a project for Trove's URLs; others are refused like bad ones.

interface Verdict {
  caller: Caller | undefined;
}

export interface KeystoneCallerOptions {
  /** keystonemiddleware's token_cache_time; 0: ask Keystone every time */
  cacheSeconds: number;
  /** entries kept at most, least recently used first out */
  cacheSize: number;
}

// Keystone's tokens (Fernet, JWS) are short printable ASCII; anything else is not one of them and
// could not be sent as a header anyway.
const plausibleToken = /^[\x21-\x7e]{1,8192}$/;

export class KeystoneCallers implements CallerValidator {
  private readonly cache: TokenCache<Verdict>;
  /** validations under way, so that concurrent requests with one new token ask Keystone once */
  private readonly pending = new Map<string, Promise<Verdict>>();

  constructor(
    private readonly client: KeystoneClient,
    options: KeystoneCallerOptions,
    private readonly logger: Logger,
  ) {
    this.cache = new TokenCache(options.cacheSeconds * 1000, options.cacheSize);
  }

  async validate(token: string | undefined, now: Date): Promise<Caller | undefined> {
    if (token === undefined || !plausibleToken.test(token)) return undefined;
    const cached = this.cache.get(token, now);
    if (cached !== undefined) return cached.caller;
    const key = TokenCache.key(token);
    let pending = this.pending.get(key);
    if (pending === undefined) {
      pending = this.ask(token, now).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return (await pending).caller;
  }

  private async ask(token: string, now: Date): Promise<Verdict> {
    const reply = await this.client.call('GET', '/v3/auth/tokens?nocatalog', { headers: { 'x-subject-token': token } });
    if (reply.status === 404) {
      const verdict = { caller: undefined };
      this.cache.set(token, verdict, now);
      return verdict;
    }
    if (reply.status !== 200) {
      const err = this.client.refused('a token validation', reply);
      this.logger.error({ status: reply.status }, err.message);
      throw err;
    }
    const parsed = tokenBodySchema.safeParse(reply.body);
    if (!parsed.success) {
      throw new CofferError('IdentityUnavailable', 'Keystone answered a token validation with a body Coffer cannot read.', {
        cause: parsed.error,
      });
    }
    const { user, project, roles, expires_at: expiresAt } = parsed.data.token;
    const verdict = {
      caller: project === undefined ? undefined : { userId: user.id, projectId: project.id, roles: roles.map((r) => r.name) },
    };
    this.cache.set(token, verdict, now, new Date(expiresAt));
    return verdict;
  }
}
