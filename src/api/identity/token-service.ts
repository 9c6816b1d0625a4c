import { createHash, randomBytes } from 'node:crypto';
import { newToken } from '../../common/index.js';
import type { Logger } from '../../common/index.js';
import type { ProjectRow, Repositories, RoleRow, TokenHolder, TokenRow, UserRow } from '../../db/index.js';

// Bearer tokens are random and stored only as their sha256: a copy of the state database does
// not hold usable credentials. A token is valid while it has not expired, its user and project
// exist and are enabled, and the user still holds a role on the project (Keystone revokes tokens
// when the last assignment goes; checking on every use gives the same effect).

export type TokenSession = TokenHolder;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Keystone audit ids: 16 random bytes, base64url without padding (22 characters). */
function newAuditId(): string {
  return randomBytes(16).toString('base64url');
}

// Expired rows are swept at most this often, piggybacking on token issue.
const sweepIntervalMs = 60_000;

/**
 * How long a validated token's holder (user, project, roles) is reused without reading it again.
 * Every revocation deletes the token's row (logout; a user or project disabled or deleted, a
 * password changed, a role assignment removed: see the identity routes and the foreign keys), so
 * a reuse still looks the row up by its key and a revocation holds at once in every API process;
 * what may lag by this long is only what adds (a role granted, a name changed).
 */
export const holderReuseMs = 5_000;
/** holders kept at most (the oldest go first) */
const holdersKept = 10_000;

export class TokenService {
  private lastSweep = 0;
  private readonly holders = new Map<string, { holder: TokenSession; readAt: number }>();

  constructor(
    private readonly store: Repositories,
    private readonly ttlSeconds: number,
    private readonly logger: Logger,
  ) {}

  async issue(input: {
    user: UserRow;
    project: ProjectRow;
    roles: RoleRow[];
    methods: string[];
    now: Date;
    /** a token issued from another token never outlives it */
    notAfter?: Date;
  }): Promise<{ token: string; session: TokenSession }> {
    const token = newToken();
    let expiresAt = new Date(input.now.getTime() + this.ttlSeconds * 1000);
    if (input.notAfter !== undefined && input.notAfter < expiresAt) expiresAt = input.notAfter;
    const row: TokenRow = {
      tokenHash: hashToken(token),
      userId: input.user.id,
      projectId: input.project.id,
      methods: input.methods,
      auditId: newAuditId(),
      issuedAt: input.now,
      expiresAt,
    };
    await this.store.tokens.create(row);
    await this.sweep(input.now);
    return { token, session: { token: row, user: input.user, project: input.project, roles: input.roles } };
  }

  async validate(token: string | undefined, now: Date): Promise<TokenSession | undefined> {
    if (token === undefined || token === '') return undefined;
    const tokenHash = hashToken(token);
    const kept = this.holders.get(tokenHash);
    if (kept !== undefined && now.getTime() - kept.readAt < holderReuseMs && now.getTime() >= kept.readAt) {
      // still one statement a request, but by key on one table instead of the five-table join:
      // a revoked token's row is gone (holderReuseMs says why), so it is refused at once
      if ((await this.store.tokens.get(tokenHash)) === undefined) {
        this.holders.delete(tokenHash);
        return undefined;
      }
      return kept.holder.token.expiresAt.getTime() <= now.getTime() ? undefined : kept.holder;
    }
    this.holders.delete(tokenHash);
    const holder = await this.store.tokens.holder(tokenHash);
    if (holder === undefined || holder.token.expiresAt.getTime() <= now.getTime()) return undefined;
    if (!holder.user.enabled || !holder.project.enabled) return undefined;
    this.holders.set(tokenHash, { holder, readAt: now.getTime() });
    if (this.holders.size > holdersKept) this.holders.delete(this.holders.keys().next().value!);
    return holder;
  }

  async revoke(token: string): Promise<void> {
    this.holders.delete(hashToken(token));
    await this.store.tokens.delete(hashToken(token));
  }

  private async sweep(now: Date): Promise<void> {
    if (now.getTime() - this.lastSweep < sweepIntervalMs) return;
    this.lastSweep = now.getTime();
    try {
      await this.store.tokens.deleteExpired(now);
    } catch (err) {
      this.logger.warn({ err }, 'sweeping expired tokens failed');
    }
  }
}
