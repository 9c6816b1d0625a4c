import { createHash, randomBytes } from 'node:crypto';
import { newToken } from '../../common/index.js';
import type { Logger } from '../../common/index.js';
import type { ProjectRow, Repositories, RoleRow, TokenRow, UserRow } from '../../db/index.js';

// Bearer tokens are random and stored only as their sha256: a copy of the state database does
// not hold usable credentials. A token is valid while it has not expired, its user and project
// exist and are enabled, and the user still holds a role on the project (Keystone revokes tokens
// when the last assignment goes; checking on every use gives the same effect).

export interface TokenSession {
  token: TokenRow;
  user: UserRow;
  project: ProjectRow;
  roles: RoleRow[];
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Keystone audit ids: 16 random bytes, base64url without padding (22 characters). */
function newAuditId(): string {
  return randomBytes(16).toString('base64url');
}

// Expired rows are swept at most this often, piggybacking on token issue.
const sweepIntervalMs = 60_000;

export class TokenService {
  private lastSweep = 0;

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
    const row = await this.store.tokens.get(hashToken(token));
    if (row === undefined || row.expiresAt.getTime() <= now.getTime()) return undefined;
    const [user, project, roles] = await Promise.all([
      this.store.users.get(row.userId),
      this.store.projects.get(row.projectId),
      this.store.roleAssignments.rolesOf(row.userId, row.projectId),
    ]);
    if (user === undefined || !user.enabled || project === undefined || !project.enabled) return undefined;
    if (roles.length === 0) return undefined;
    return { token: row, user, project, roles };
  }

  async revoke(token: string): Promise<void> {
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
