import { access } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import type { EngineVersionReport } from '../../../bus/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { EngineBinary, EngineDiscovery } from '../engine.js';
import { redisCapabilities, redisParameters } from './capabilities.js';

// Where redis-server comes from: directories named in the configuration first, then Debian's
// package (/usr/bin/redis-server). One binary per version name: the first found wins.

const defaultBinDirs = ['/usr/bin', '/usr/local/bin'];

export const missingBinaryReason =
  "No redis-server found: install Debian's redis-server package (apt-get install redis-server).";

/**
 * `Redis server v=7.0.15 sha=…` → name "7.0", version "7.0.15". The name is major.minor, not
 * the major alone: Redis raises its RDB format in minor releases (7.0 writes RDB 10, 7.2
 * RDB 11, which 7.0 cannot load), so an instance's files belong to a minor version.
 */
export function parseRedisVersion(output: string): { versionName: string; version: string } | undefined {
  const match = /\bv=(\d+)\.(\d+)\.(\d+)\b/.exec(output);
  if (match === null) return undefined;
  const [, major, minor, patch] = match;
  return { versionName: `${major}.${minor}`, version: `${major}.${minor}.${patch}` };
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

type Probe = { binary: EngineBinary } | { failure: string };

async function probe(binDir: string, runner: ProcessRunner): Promise<Probe | undefined> {
  const server = join(binDir, 'redis-server');
  if (!(await isExecutable(server))) return undefined;
  try {
    const { stdout } = await runner.run(server, ['--version'], { timeoutMs: 10_000 });
    const parsed = parseRedisVersion(stdout);
    if (parsed === undefined) return { failure: `${server} --version printed an unknown format: ${stdout.trim()}` };
    return { binary: { ...parsed, binDir } };
  } catch (err) {
    return { failure: `${server} does not run: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function report(name: string, version: string, inactiveReason: string | null): EngineVersionReport {
  return {
    datastore: 'redis',
    manager: 'redis',
    name,
    version,
    active: inactiveReason === null,
    inactiveReason,
    capabilities: redisCapabilities,
    parameters: redisParameters,
  };
}

export function discoverRedis(extraBinDirs: readonly string[], runner: ProcessRunner): Promise<EngineDiscovery> {
  return discoverRedisIn([...extraBinDirs, ...defaultBinDirs], runner);
}

/** Looks in exactly `binDirs`, in that order. */
export async function discoverRedisIn(binDirs: readonly string[], runner: ProcessRunner): Promise<EngineDiscovery> {
  const binaries: EngineBinary[] = [];
  const failures: string[] = [];
  for (const binDir of binDirs) {
    const result = await probe(binDir, runner);
    if (result === undefined) continue;
    if ('failure' in result) failures.push(result.failure);
    else if (!binaries.some((b) => b.versionName === result.binary.versionName)) binaries.push(result.binary);
  }
  if (binaries.length > 0) {
    return { binaries, reports: binaries.map((b) => report(b.versionName, b.version, null)) };
  }
  const reason = failures.length > 0 ? `${failures.join('; ')}. ${missingBinaryReason}` : missingBinaryReason;
  return { binaries, reports: [report('7.0', '7.0', reason)] };
}
