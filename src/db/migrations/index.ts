import type { Migration } from 'kysely';
import * as initial from './0001-initial.js';
import * as capabilitiesRootHistory from './0002-capabilities-root-history.js';
import * as quotas from './0003-quotas.js';
import * as loginFailuresExactNames from './0004-login-failures-exact-names.js';
import * as instanceTls from './0005-instance-tls.js';
import * as agentContracts from './0006-agent-contracts.js';
import * as configurationGroups from './0007-configuration-groups.js';
import * as guestReports from './0008-guest-reports.js';
import * as taskProgress from './0009-task-progress.js';
import * as desiredGeneration from './0010-desired-generation.js';
import * as backups from './0011-backups.js';
import * as backupSchedules from './0012-backup-schedules.js';
import * as backupVerifications from './0013-backup-verifications.js';
import * as walArchive from './0014-wal-archive.js';
import * as scheduleVerify from './0015-schedule-verify.js';
import * as instanceEvents from './0020-instance-events.js';
import * as webhooks from './0021-webhooks.js';
import * as replicas from './0022-replicas.js';
import * as datastoreVersionAdmin from './0024-datastore-version-admin.js';
import * as failover from './0025-failover.js';
import * as engineMetrics from './0026-engine-metrics.js';
import * as awaitingAdoption from './0027-awaiting-adoption.js';

// Every migration, by name. Kysely runs them in name order and records each one it ran; a
// shipped migration never changes, a schema change is a new file with the next number.
export const migrations: Record<string, Migration> = {
  '0001-initial': initial,
  '0002-capabilities-root-history': capabilitiesRootHistory,
  '0003-quotas': quotas,
  '0004-login-failures-exact-names': loginFailuresExactNames,
  '0005-instance-tls': instanceTls,
  '0006-agent-contracts': agentContracts,
  '0007-configuration-groups': configurationGroups,
  '0008-guest-reports': guestReports,
  '0009-task-progress': taskProgress,
  '0010-desired-generation': desiredGeneration,
  '0011-backups': backups,
  '0012-backup-schedules': backupSchedules,
  '0013-backup-verifications': backupVerifications,
  '0014-wal-archive': walArchive,
  '0015-schedule-verify': scheduleVerify,
  '0020-instance-events': instanceEvents,
  '0021-webhooks': webhooks,
  '0022-replicas': replicas,
  '0024-datastore-version-admin': datastoreVersionAdmin,
  '0025-failover': failover,
  '0026-engine-metrics': engineMetrics,
  '0027-awaiting-adoption': awaitingAdoption,
};
