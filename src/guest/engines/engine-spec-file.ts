import { statSync, type BigIntStats } from 'node:fs';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { accessSpec } from '../../bus/index.js';
import { configurationValues } from '../../common/index.js';

// `<instance dir>/engine-spec.json`: what the engine renders its whole configuration from, as
// last applied: the flavor's memory, the access rules and the configuration-group overrides.
// Every change (prepare, resize, access update, configuration apply) reads it, changes its own
// part and writes it back, so no change wipes what another set. The host's file: the engine's
// user neither reads nor writes it.

/**
 * The instance's place in replication: a replica names its source (the password lives in a file
 * of its own beside the spec, see postgresql/replication.ts), a source the replicas it keeps a
 * role, a slot and an access rule for. Absent: standalone. Part of the spec so that a restart
 * or an adoption renders a replica as a replica again. A source's `synchronous`: its commits wait
 * until one replica holds them (ReplicationAdmin.setSynchronous).
 */
export const replicationSpec = z.discriminatedUnion('role', [
  z.object({
    role: z.literal('replica'),
    source: z.object({ address: z.string(), port: z.number().int().positive(), user: z.string(), slot: z.string() }),
  }),
  z.object({
    role: z.literal('source'),
    replicas: z.array(z.object({ id: z.string(), address: z.string(), user: z.string(), slot: z.string() })),
    /** commits wait for one replica to hold them (ReplicationAdmin.setSynchronous) */
    synchronous: z.boolean().optional(),
  }),
]);
export type ReplicationSpec = z.infer<typeof replicationSpec>;

export const engineSpec = z.object({
  memoryMb: z.number().int().positive(),
  access: accessSpec,
  overrides: configurationValues,
  replication: replicationSpec.optional(),
  /** the tenant's logs turned on through the log API (guest-logs.ts), by log name */
  logs: z.record(z.string(), z.boolean()).optional(),
});
export type EngineSpec = z.infer<typeof engineSpec>;

const specFile = 'engine-spec.json';

/**
 * Specs as last read, by file: a replica's health check looks at its role every 15 s, and a
 * thousand instances reading and parsing their file each time was a share of the host's idle
 * CPU. An entry holds while the file keeps its inode (a write renames a new file in place), its
 * change time and its size. Bounded: a host that made and deleted many instances starts afresh.
 */
const readSpecs = new Map<string, { ino: bigint; ctimeNs: bigint; size: bigint; spec: EngineSpec }>();
const readSpecsLimit = 10_000;

/** The saved spec; undefined for an instance prepared before specs were saved (or not yet prepared). */
export async function readEngineSpec(dir: string): Promise<EngineSpec | undefined> {
  const file = join(dir, specFile);
  let seen: BigIntStats;
  try {
    // in place: a stat of the host's own small file is cheaper than a trip through the thread pool
    seen = statSync(file, { bigint: true });
  } catch (err) {
    readSpecs.delete(file);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const kept = readSpecs.get(file);
  if (kept !== undefined && kept.ino === seen.ino && kept.ctimeNs === seen.ctimeNs && kept.size === seen.size) return structuredClone(kept.spec);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const spec = engineSpec.parse(JSON.parse(text));
  if (readSpecs.size >= readSpecsLimit) readSpecs.clear();
  // the stat taken before the read: a write between the two makes the next read look again
  readSpecs.set(file, { ino: seen.ino, ctimeNs: seen.ctimeNs, size: seen.size, spec: structuredClone(spec) });
  return spec;
}

/**
 * The saved spec, or for an instance from before specs were saved one made of what is known:
 * `memoryMb` (the host's record of the flavor), no access rules, no overrides.
 */
export async function currentEngineSpec(dir: string, memoryMb: number | undefined): Promise<EngineSpec | undefined> {
  const saved = await readEngineSpec(dir);
  if (saved !== undefined || memoryMb === undefined) return saved;
  return { memoryMb, access: null, overrides: {} };
}

/** Written aside and renamed over: a crash never leaves half a spec. */
export async function writeEngineSpec(dir: string, spec: EngineSpec): Promise<void> {
  const temporary = join(dir, `.${specFile}.tmp`);
  await writeFile(temporary, `${JSON.stringify(engineSpec.parse(spec), null, 2)}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, join(dir, specFile));
}
