import type { BackupVerificationView, BackupView } from './api-types.js';
import { timestampText } from './instance-format.js';
import type { Cell } from './table-format.js';

// How backups look in tables. The API's `size` is the stored object in GB, rounded to hundredths.

export function backupListHead(allProjects: boolean): string[] {
  return ['ID', 'Name', 'Instance', 'Status', 'Type', 'Size', 'Created', ...(allProjects ? ['Project'] : [])];
}

/** `instanceNames`: the names of the instances that still exist, by id; a gone one shows its id. */
export function backupListRow(backup: BackupView, instanceNames: ReadonlyMap<string, string>, allProjects: boolean): Cell[] {
  const instanceId = backup.instance_id ?? undefined;
  return [
    backup.id,
    backup.name,
    instanceId === undefined ? undefined : (instanceNames.get(instanceId) ?? instanceId),
    backup.status,
    typeText(backup),
    sizeText(backup),
    timestampText(backup.created),
    ...(allProjects ? [backup.project_id] : []),
  ];
}

export function typeText(backup: BackupView): string {
  return backup.parent_id == null ? 'full' : 'incremental';
}

/** A stored backup smaller than 5 MB rounds to 0 GB: say it is small rather than empty. */
export function sizeText(backup: BackupView): string | undefined {
  if (typeof backup.size !== 'number') return undefined;
  return backup.size === 0 ? '< 0.01 GB' : `${backup.size} GB`;
}

export interface BackupContext {
  /** the name of the instance it was taken of, when that still exists */
  instanceName?: string | undefined;
  /** the name of its parent, when that still exists */
  parentName?: string | undefined;
  /** while it runs: the step and percent its instance shows */
  progress?: string | undefined;
}

export function backupFields(backup: BackupView, context: BackupContext = {}): Array<[string, Cell]> {
  const instanceId = backup.instance_id ?? undefined;
  const parentId = backup.parent_id ?? undefined;
  return [
    ['ID', backup.id],
    ['Name', backup.name],
    ['Description', backup.description],
    ['Status', backup.status],
    ['Progress', context.progress],
    ['Fail reason', backup.fail_reason],
    ['Type', typeText(backup)],
    ['Parent', parentId === undefined ? undefined : named(parentId, context.parentName)],
    ['Instance', instanceId === undefined ? undefined : named(instanceId, context.instanceName)],
    ['Datastore', backup.datastore === undefined ? undefined : `${backup.datastore.type} ${backup.datastore.version}`],
    ['Size', sizeText(backup)],
    ['Location', backup.locationRef],
    ['Verification', verificationText(backup.verification)],
    ['Verification says', backup.verification?.status === 'RUNNING' ? undefined : backup.verification?.message],
    ['Created', timestampText(backup.created)],
    ['Updated', timestampText(backup.updated)],
    ['Project', backup.project_id],
  ];
}

function named(id: string, name: string | undefined): string {
  return name === undefined ? id : `${name} (${id})`;
}

/** `databases 2, tables 14, indexes 9, errors 0`: what the engine's check counted */
export function checksText(checks: Record<string, number>): string {
  return Object.entries(checks)
    .map(([name, count]) => `${name.replace(/_/g, ' ')} ${count}`)
    .join(', ');
}

/** one line for `backup show`: `PASSED at 2030-01-01 00:00:00 UTC (databases 1, tables 3, errors 0)` */
export function verificationText(verification: BackupVerificationView | null | undefined): string | undefined {
  if (verification == null) return undefined;
  if (verification.status === 'RUNNING') {
    return `RUNNING since ${timestampText(verification.started) ?? verification.started}${verification.message === null ? '' : ` — ${verification.message}`}`;
  }
  const checks = checksText(verification.checks);
  const at = verification.finished ?? verification.started;
  return `${verification.status} at ${timestampText(at) ?? at}${checks === '' ? '' : ` (${checks})`}`;
}
