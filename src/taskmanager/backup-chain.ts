import type { RestoreLinkSpec } from '../bus/index.js';
import type { BackupRow } from '../db/index.js';

/** The chain as a guest's prepare reads it, each object with the project's wrapped key. */
export function restoreLinks(chain: readonly BackupRow[], wrappedKey: string): RestoreLinkSpec[] {
  return chain.map((link) => ({
    backupId: link.id,
    container: link.container,
    objectName: link.objectName,
    sha256: link.sha256!,
    wrappedKey,
    kind: link.backupType,
    facts: link.facts ?? {},
  }));
}
