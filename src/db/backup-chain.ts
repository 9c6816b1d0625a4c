import { CofferError } from '../common/index.js';
import type { BackupRow, Repositories } from './state-store.js';

/** How deep a chain of incrementals may go before a restore refuses it as corrupt (a cycle). */
const maxChain = 1000;

/**
 * The backups a restore from `backup` reads, the full one first: its parents, then itself. Every
 * link must be COMPLETED (or RESTORED) with its checksum recorded; a deleted or failed parent
 * makes the backup unrestorable, which is said before any instance is touched.
 */
export async function backupChain(store: Pick<Repositories, 'backups'>, backup: BackupRow): Promise<BackupRow[]> {
  const chain: BackupRow[] = [backup];
  for (let link = backup; link.parentId !== null; ) {
    if (chain.length > maxChain) throw new CofferError('Conflict', `Backup ${backup.id} has a chain of parents that does not end.`);
    const parent = await store.backups.get(link.parentId);
    if (parent === undefined) {
      throw new CofferError('Conflict', `Backup ${backup.id} cannot be restored: its parent backup ${link.parentId} no longer exists.`);
    }
    chain.unshift(parent);
    link = parent;
  }
  for (const link of chain) {
    if ((link.state !== 'COMPLETED' && link.state !== 'RESTORED') || link.sha256 === null) {
      throw new CofferError('Conflict', `Backup ${link.id} is not completed (it is ${link.state}).`);
    }
  }
  if (chain[0]!.backupType !== 'full') throw new CofferError('Conflict', `Backup ${backup.id} has no full backup at the root of its chain.`);
  return chain;
}
