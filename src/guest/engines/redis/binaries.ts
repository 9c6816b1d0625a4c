import { join } from 'node:path';
import type { ProcessRunner } from '../../process-runner.js';
import { isExecutable, probeAll, probeVersion, versionReport, type EngineIdentity, type Probe } from '../binary-discovery.js';
import type { EngineDiscovery } from '../engine.js';

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

async function probe(binDir: string, runner: ProcessRunner): Promise<Probe | undefined> {
  const server = join(binDir, 'redis-server');
  if (!(await isExecutable(server))) return undefined;
  return probeVersion(server, binDir, runner, parseRedisVersion);
}

/** `redis` is what each version is reported as: the capabilities and parameters of the engine's modules. */
export function discoverRedis(extraBinDirs: readonly string[], runner: ProcessRunner, redis: EngineIdentity): Promise<EngineDiscovery> {
  return discoverRedisIn([...extraBinDirs, ...defaultBinDirs], runner, redis);
}

/** Looks in exactly `binDirs`, in that order. */
export async function discoverRedisIn(binDirs: readonly string[], runner: ProcessRunner, redis: EngineIdentity): Promise<EngineDiscovery> {
  const { binaries, failures } = await probeAll(binDirs, (binDir) => probe(binDir, runner));
  if (binaries.length > 0) {
    return { binaries, reports: binaries.map((b) => versionReport(redis, b.versionName, b.version, null)) };
  }
  const reason = failures.length > 0 ? `${failures.join('; ')}. ${missingBinaryReason}` : missingBinaryReason;
  return { binaries, reports: [versionReport(redis, '7.0', '7.0', reason)] };
}
