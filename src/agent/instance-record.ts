import { chmod, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { engineRef, flavorSpec } from '../bus/index.js';
import type { Logger } from '../common/index.js';

// `<dataDir>/instances/<id>/instance.json`: what the agent needs to re-adopt an instance after a
// restart. The state database is the system's record; this file is the host's own, so an agent
// never needs the state database to bring its instances back.

const instanceRecord = z.object({
  id: z.string(),
  engine: engineRef,
  address: z.string(),
  port: z.number().int(),
  flavor: flavorSpec,
  volumeSizeGb: z.number().int().positive(),
  desiredState: z.enum(['running', 'stopped']),
  createdAt: z.string(),
  /**
   * The OS user the engine runs as when the agent runs as root, one per instance; absent when
   * the engines run as the agent's own user (and in records from before per-instance users).
   */
  osUser: z.string().optional(),
  /**
   * A replica's primary, which its engine's user may reach through the network wall (besides
   * its own engine); absent for an instance that is no replica.
   */
  replicationSource: z.object({ address: z.string(), port: z.number().int().positive() }).optional(),
});
export type InstanceRecord = z.infer<typeof instanceRecord>;

const recordFile = 'instance.json';

/** ids name directories and topics: nothing that could climb out of the instances directory */
export function isSafeInstanceId(id: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(id);
}

export async function readInstanceRecord(dir: string): Promise<InstanceRecord | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, recordFile), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return instanceRecord.parse(JSON.parse(text));
}

/** Written aside and renamed over, so a crash never leaves half a record. */
export async function writeInstanceRecord(dir: string, record: InstanceRecord): Promise<void> {
  const temporary = join(dir, `.${recordFile}.tmp`);
  // the host's alone: the engine's user never needs it
  await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  // a temporary file a crash left keeps its mode through writeFile
  await chmod(temporary, 0o600);
  await rename(temporary, join(dir, recordFile));
}

export interface FoundInstance {
  dir: string;
  record: InstanceRecord;
}

export async function scanInstanceRecords(instancesDir: string, logger: Logger): Promise<FoundInstance[]> {
  const found: FoundInstance[] = [];
  for (const name of await readdir(instancesDir).catch(() => [] as string[])) {
    if (!isSafeInstanceId(name)) continue;
    const dir = join(instancesDir, name);
    try {
      const record = await readInstanceRecord(dir);
      if (record === undefined) continue;
      // the directory name is authoritative: a copied or renamed directory must not pass for another instance
      if (record.id !== name) {
        logger.warn({ instanceId: name, recordId: record.id }, 'instance record names another instance: skipped');
        continue;
      }
      found.push({ dir, record });
    } catch (err) {
      logger.error({ err, instanceId: name }, 'unreadable instance record: skipped');
    }
  }
  return found;
}
