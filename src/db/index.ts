// The state database: the one place where the api, the taskmanager and the conductor keep what
// they know (identity, catalogue, instances, durable tasks). One schema and one set of
// migrations serve SQLite (embedded default), MySQL/MariaDB and PostgreSQL. Roles see only the
// StateStore port; Kysely and the drivers stay inside this folder.

export { openStateStore, type OpenStateStoreOptions } from './open-state-store.js';
export type * from './state-store.js';
export { runningBackupStates } from './state-store.js';
export { backupChain } from './backup-chain.js';
export { webhookEventTypes, webhookEventTypeNames } from './webhook-event-types.js';
