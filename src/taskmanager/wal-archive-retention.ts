import type { BackupRow } from '../db/index.js';
import { storageOf, type BackupFlowDeps } from './backup-flow-deps.js';

// An instance's archived log (point in time) serves the full backups it rolls forward, each
// from the first file it needs (its `wal-start`) on. Once a backup is deleted, the files older
// than the oldest remaining backup's first one serve nothing, and go; with no such backup left,
// the whole archive goes. File names sort in log order (PostgreSQL's segment names do).

/** The most backups of one instance looked through; an instance keeps far fewer. */
const maxBackupsScanned = 10_000;

export async function pruneWalArchive(deps: BackupFlowDeps, deleted: BackupRow, log: BackupFlowDeps['logger']): Promise<void> {
  const container = deleted.facts?.['wal-container'];
  const prefix = deleted.facts?.['wal-prefix'];
  if (container === undefined || prefix === undefined) return;
  try {
    const backups = await deps.store.backups.list({ instanceId: deleted.instanceId, limit: maxBackupsScanned, offset: 0 });
    // a full backup still running has recorded nothing yet, and needs the log from its start
    if (backups.some((b) => b.backupType === 'full' && ['NEW', 'BUILDING', 'SAVING'].includes(b.state))) return;
    const starts = backups
      .filter((b) => b.id !== deleted.id && b.facts?.['wal-container'] === container && b.facts['wal-prefix'] === prefix)
      .map((b) => b.facts?.['wal-start']);
    // a remaining backup that does not say where it starts keeps the whole archive
    if (starts.some((start) => start === undefined)) return;
    const keepFrom = starts.length === 0 ? undefined : starts.reduce((a, b) => (a! < b! ? a : b));
    const storage = storageOf(deps);
    const objects = await storage.list(container, `${prefix}/`);
    const old = objects.filter((o) => keepFrom === undefined || o.name.slice(prefix.length + 1) < keepFrom);
    for (const object of old) await storage.delete(container, object.name);
    if (old.length > 0) log.info({ removed: old.length, keepFrom: keepFrom ?? null }, 'archived log no backup needs removed');
  } catch (err) {
    // the backup is gone either way; what is left is removed with the next backup deleted
    log.warn({ err }, 'could not remove archived log no backup needs');
  }
}
