import type { Logger } from '../../common/index.js';
import { CofferError } from '../../common/index.js';
import type { Repositories, UserRow } from '../../db/index.js';
import { authRequiredMessage } from '../error-replies.js';

// Keystone's lockout (`[security_compliance] lockout_failure_attempts` and `lockout_duration`):
// after N failed password checks in a row a user is locked for D seconds, even with the right
// password, and a success resets the count. Beside it, a limit per source address, so that
// guessing across many user names from one place stops too. Counts live in the state database,
// so every API process sees them. A refused attempt is answered like a wrong password (401
// with Keystone's generic message, as Keystone answers AccountLocked) and costs no hash.

export interface LoginLimits {
  /** failed logins in a row that lock a user; 0: no lockout */
  lockoutAttempts: number;
  /** how long a user stays locked, and how long a quiet spell restarts its count */
  lockoutSeconds: number;
  /** failed logins from one source address that refuse it; 0: no address limit */
  addressAttempts: number;
  /** how long an address stays refused, and how long a quiet spell restarts its count */
  addressSeconds: number;
}

export const noLoginLimits: LoginLimits = Object.freeze({ lockoutAttempts: 0, lockoutSeconds: 0, addressAttempts: 0, addressSeconds: 0 });

const refused = () => new CofferError('Unauthorized', authRequiredMessage);

export class LoginLimiter {
  constructor(
    private readonly store: Pick<Repositories, 'loginFailures'>,
    private readonly limits: LoginLimits,
    private readonly logger: Logger,
  ) {}

  /** Throws when the address or the user may not try now; call before checking the password. */
  async check(address: string, user: UserRow | undefined, now: Date): Promise<void> {
    if (await this.blocked(`address:${address}`, this.limits.addressAttempts, this.limits.addressSeconds, now)) {
      this.logger.warn({ address }, 'login refused: too many failed logins from this address');
      throw refused();
    }
    if (user !== undefined && (await this.blocked(`user:${user.id}`, this.limits.lockoutAttempts, this.limits.lockoutSeconds, now))) {
      this.logger.warn({ userId: user.id, address }, 'login refused: the user is locked after failed logins');
      throw refused();
    }
  }

  async failed(address: string, user: UserRow | undefined, now: Date): Promise<void> {
    const { addressAttempts, addressSeconds, lockoutAttempts, lockoutSeconds } = this.limits;
    if (addressAttempts > 0) {
      await this.store.loginFailures.recordFailure(`address:${address}`, now, new Date(now.getTime() - addressSeconds * 1000));
    }
    if (user !== undefined && lockoutAttempts > 0) {
      const row = await this.store.loginFailures.recordFailure(`user:${user.id}`, now, new Date(now.getTime() - lockoutSeconds * 1000));
      if (row.failures === lockoutAttempts) this.logger.warn({ userId: user.id, address }, `user locked for ${lockoutSeconds} s after ${row.failures} failed logins`);
    }
  }

  /** A right password: the user's count starts again (the address's runs out with time only). */
  async succeeded(user: UserRow): Promise<void> {
    if (this.limits.lockoutAttempts > 0) await this.store.loginFailures.clear(`user:${user.id}`);
  }

  /** An admin enabling the user unlocks it at once, as Keystone's manual unlock does. */
  async unlock(userId: string): Promise<void> {
    await this.store.loginFailures.clear(`user:${userId}`);
  }

  private async blocked(subject: string, attempts: number, seconds: number, now: Date): Promise<boolean> {
    if (attempts <= 0) return false;
    const row = await this.store.loginFailures.get(subject);
    return row !== undefined && row.failures >= attempts && now.getTime() < row.lastFailureAt.getTime() + seconds * 1000;
  }
}
