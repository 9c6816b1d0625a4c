import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { randomInt } from 'node:crypto';
import { ensureEngineUser, LocalProcessRunner } from '../../src/agent/index.js';
import { decodeBackup, newProjectKey, startBackupEncoding } from '../../src/backup/index.js';
import { silentLogger } from '../../src/common/logger.js';
import type { EngineDriver } from '../../src/guest/index.js';
import type { BackupFacts, RestoreLink } from '../../src/guest/engines/engine.js';
import { killDataDirProcesses, readPostmasterPid } from '../../src/guest/engines/postgresql/postmaster.js';
import { isProcessAlive } from '../../src/guest/engines/process-watch.js';

// Shared by the engine and agent integration tests: real binaries, real processes, and a
// runner that, as root (how CI runs), runs engines as the unprivileged engine user.

/**
 * Not the agents' `coffer-db`: every agent walls its host engine user off the network and leaves
 * it so, which refused TCP between these tests' engines whenever an agent test had run before.
 */
const testEngineUser = 'coffer-test-db';

export async function localRunner(): Promise<LocalProcessRunner> {
  const identity = process.getuid?.() === 0 ? await ensureEngineUser(testEngineUser, silentLogger()) : undefined;
  return new LocalProcessRunner(identity);
}

/**
 * The first three octets of a /24 unlikely to meet anyone else's on this shared machine (not
 * 127.0/16, not 127.77/16), where test files run side by side: one of 38,400.
 */
export function randomNet(): string {
  return `127.${randomInt(100, 250)}.${randomInt(0, 256)}`;
}

export function randomPool(): string {
  return `${randomNet()}.0/24`;
}

export function randomAddress(): string {
  return `${randomNet()}.${randomInt(2, 255)}`;
}

/** Who owns `path` and its permission bits in octal, as the layout assertions compare them. */
export async function ownerOf(path: string): Promise<{ uid: number; mode: string }> {
  const stats = await stat(path);
  return { uid: stats.uid, mode: (stats.mode & 0o777).toString(8) };
}

export function suffix(): string {
  return randomInt(1e9).toString(36);
}

/**
 * Kills whatever postmaster a test left under `root` (a data directory at most three levels
 * down), then removes `root`: a failing test must not leave a database running.
 */
export async function cleanUp(root: string): Promise<void> {
  const dataDirs: string[] = [];
  const visit = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    if (entries.some((entry) => entry.name === 'PG_VERSION')) dataDirs.push(dir);
    if (depth > 0) await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => visit(join(dir, e.name), depth - 1)));
  };
  await visit(root, 3);
  for (const dataDir of dataDirs) {
    const lock = await readPostmasterPid(dataDir);
    if (lock !== undefined && (await isProcessAlive(lock.pid))) process.kill(lock.pid, 'SIGKILL');
    await killDataDirProcesses(dataDir);
  }
  await rm(root, { recursive: true, force: true });
}

/**
 * A full backup of `driver` as a backup storage takes it (the engine's tool writing into the
 * compressor, sealed under a key of its own), and the restore link that reads it back.
 */
export async function sealedFullBackup(driver: EngineDriver): Promise<{ facts: BackupFacts; link: RestoreLink }> {
  const key = newProjectKey();
  const encoding = startBackupEncoding({ compression: 'zstd', key });
  const run = await driver.backup!.start({ signal: new AbortController().signal, output: encoding.input });
  const body = encoding.fedDirectly();
  run.stream.resume();
  const stored: Buffer[] = [];
  for await (const chunk of body) stored.push(chunk as Buffer);
  const facts = await run.finished;
  return { facts, link: { kind: 'full', facts, open: async () => decodeBackup(Readable.from(stored), { key }) } };
}
