import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { ensureEngineUser, LocalProcessRunner } from '../../src/agent/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { isProcessAlive, killDataDirProcesses, readPostmasterPid } from '../../src/guest/engines/postgresql/postmaster.js';

// Shared by the engine and agent integration tests: real binaries, real processes, and a
// runner that, as root (how CI runs), runs engines as the unprivileged engine user.

export async function localRunner(): Promise<LocalProcessRunner> {
  const identity = process.getuid?.() === 0 ? await ensureEngineUser('coffer-db', silentLogger()) : undefined;
  return new LocalProcessRunner(identity);
}

/** A temp directory the engine user can traverse (mkdtemp makes it 0700). Short: sockets live under it. */
export async function tempDataDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

/** A /24 pool unlikely to meet anyone else's on this shared machine (not 127.0/16, not 127.77/16). */
export function randomPool(): string {
  return `127.${randomInt(100, 250)}.${randomInt(0, 256)}.0/24`;
}

export function randomAddress(): string {
  return `127.${randomInt(100, 250)}.${randomInt(0, 256)}.${randomInt(2, 255)}`;
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

export async function waitUntil<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
