import { CofferError } from '../common/index.js';
import type { AuthContext } from './auth-context.js';

// Trove's @admin_context: every /mgmt call (and quota update) checks is_admin itself instead of
// going through the policy, and fails with Forbidden, which Trove answers with 401 (reference 8.3).

export function requireAdmin(auth: AuthContext): void {
  if (!auth.isAdmin) throw new CofferError('AdminRequired', 'User does not have admin privileges.');
}
