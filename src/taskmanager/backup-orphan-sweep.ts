import type { BackupStorage } from '../backup/index.js';
import { sleep, type Logger } from '../common/index.js';
import type { BackupRow, StateStore } from '../db/index.js';
import { isFailedImport } from './backup-flow-deps.js';

// What a backup left in storage that nothing will ever read, found and removed. The flows tidy
// up as they go (a failed backup's object, a deleted backup's log no backup needs), but a storage
// that was down at that moment keeps what it held, and a guest that went silent (its backup was
// failed as stalled) may still finish its upload afterwards. Removed here, each once its grace
// has passed since the backup or instance ended, so that a late writer has stopped first:
//
// - the object of a backup that is FAILED or deleted (with what an unfinished upload of it left:
//   each storage's `delete` removes those too);
// - the archived log (`<instance>/wal/…`) of an instance that is deleted, once no live backup
//   rolls forward from it.
//
// Only names Coffer gives are looked at, and only what the state database says has ended is
// removed: an object no backup row names (another deployment's, an operator's) is left alone.
// Every taskmanager sweeps; two sweeping at once delete the same objects, which is harmless.

export interface OrphanSweepDeps {
  store: StateStore;
  storage: BackupStorage;
  logger: Logger;
  /** how long after a backup failed or was deleted, or its instance deleted, its leftovers are kept */
  graceMs: number;
}

export interface OrphanSweepResult {
  /** objects removed, as `<container>/<name>` */
  removed: string[];
}

const backupObject = /^[0-9a-f-]{36}\.[a-z0-9_-]+\.zst\.enc$/;
// `<instance>/wal-<version>/…`, and `<instance>/wal/…` as archives were named before versions had places of their own
const walObject = /^([0-9a-f-]{36})\/wal(?:-[^/]+)?\/./;

/** One pass over every container backups were stored in. */
export async function sweepBackupOrphans(deps: OrphanSweepDeps, now: Date): Promise<OrphanSweepResult> {
  const removed: string[] = [];
  for (const container of await deps.store.backups.containers()) {
    const objects = await deps.storage.list(container).catch((err: unknown) => {
      deps.logger.warn({ err, container }, 'backup orphan sweep could not list a container');
      return [];
    });
    const doomed = [
      ...(await endedBackupObjects(deps, container, objects.map((o) => o.name).filter((name) => backupObject.test(name)), now)),
      ...(await deadInstanceLogs(deps, container, objects.map((o) => o.name), now)),
    ];
    for (const name of doomed) {
      try {
        await deps.storage.delete(container, name);
        removed.push(`${container}/${name}`);
      } catch (err) {
        deps.logger.warn({ err, container, name }, 'backup orphan sweep could not remove an object; the next pass tries again');
      }
    }
  }
  if (removed.length > 0) deps.logger.info({ removed: removed.length }, 'backup orphan sweep removed what no backup needs');
  return { removed };
}

async function endedBackupObjects(deps: OrphanSweepDeps, container: string, names: string[], now: Date): Promise<string[]> {
  const rows = await deps.store.backups.byObjectNames(container, names);
  // a failed import's object was there before it and is not Coffer's to remove; but one that
  // another backup row of the name still holds is never removed either
  const kept = new Set(rows.filter((row) => isFailedImport(row) || (!row.deleted && row.state !== 'FAILED')).map((row) => row.objectName));
  return rows
    .filter((row) => (row.deleted || row.state === 'FAILED') && !kept.has(row.objectName) && now.getTime() - row.updatedAt.getTime() >= deps.graceMs)
    .map((row) => row.objectName);
}

async function deadInstanceLogs(deps: OrphanSweepDeps, container: string, names: string[], now: Date): Promise<string[]> {
  const byInstance = new Map<string, string[]>();
  for (const name of names) {
    const instanceId = walObject.exec(name)?.[1];
    if (instanceId === undefined) continue;
    byInstance.set(instanceId, [...(byInstance.get(instanceId) ?? []), name]);
  }
  const doomed: string[] = [];
  for (const [instanceId, logNames] of byInstance) {
    const instance = await deps.store.instances.get(instanceId, { includeDeleted: true });
    // an unknown instance is not ours to judge; a live one ships on, and retention prunes behind it
    if (instance === undefined || !instance.deleted || instance.deletedAt === null) continue;
    if (now.getTime() - instance.deletedAt.getTime() < deps.graceMs) continue;
    const backups = await deps.store.backups.list({ instanceId, limit: 10_000, offset: 0 });
    if (backups.some((b) => rollsForwardFrom(b, container, instanceId))) continue;
    doomed.push(...logNames);
  }
  return doomed;
}

/** a live backup that may read the log: one still running has recorded nothing yet */
function rollsForwardFrom(backup: BackupRow, container: string, instanceId: string): boolean {
  if (backup.state === 'FAILED') return false;
  if (backup.state !== 'COMPLETED') return true;
  const facts = backup.facts ?? {};
  return facts['wal-container'] === container && walObject.exec(`${facts['wal-prefix'] ?? ''}/x`)?.[1] === instanceId;
}

/** Sweeps every `intervalMs` until stopped; the first pass comes one interval after start. */
export class BackupOrphanSweeper {
  private readonly stopController = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly options: OrphanSweepDeps & { intervalMs: number }) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopController.abort(new Error('backup orphan sweeper stopping'));
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.stopController.signal;
    for (;;) {
      await sleep(this.options.intervalMs, signal).catch(() => undefined);
      if (signal.aborted) return;
      try {
        await sweepBackupOrphans(this.options, new Date());
      } catch (err) {
        this.options.logger.warn({ err }, 'backup orphan sweep failed');
      }
    }
  }
}
