import { access } from 'node:fs/promises';
import { constants } from 'node:fs';
import type { ConfigurationParameter, EngineVersionReport } from '../../bus/index.js';
import type { ProcessRunner } from '../process-runner.js';
import type { EngineBinary, EngineCapabilities } from './engine.js';

// How every engine finds its servers: the candidate directories in order, each server's
// `--version` run to learn what it is, one binary per version name (the first found wins),
// and what went wrong kept for the reason an inactive version reports.

export async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** A server of this engine, one that does not run, or another engine's server under a shared name. */
export type Probe = { binary: EngineBinary } | { failure: string } | { other: string };

/**
 * Runs `server --version`; `parse` answers undefined for an output it does not know, and
 * `unknown` says what such an output means (by default, a server that cannot be used).
 */
export async function probeVersion(
  server: string,
  binDir: string,
  runner: ProcessRunner,
  parse: (output: string) => Omit<EngineBinary, 'binDir'> | undefined,
  unknown = (output: string): Probe => ({ failure: `${server} --version printed an unknown format: ${output.trim()}` }),
): Promise<Probe> {
  try {
    const { stdout } = await runner.run(server, ['--version'], { timeoutMs: 10_000 });
    const parsed = parse(stdout);
    return parsed === undefined ? unknown(stdout) : { binary: { ...parsed, binDir } };
  } catch (err) {
    return { failure: `${server} does not run: ${err instanceof Error ? err.message : String(err)}` };
  }
}

export interface Probed {
  binaries: EngineBinary[];
  failures: string[];
  others: string[];
}

/** Probes `binDirs` in order; `probe` answers undefined for a directory without this engine's server. */
export async function probeAll(binDirs: readonly string[], probe: (binDir: string) => Promise<Probe | undefined>): Promise<Probed> {
  const found: Probed = { binaries: [], failures: [], others: [] };
  for (const binDir of binDirs) {
    const result = await probe(binDir);
    if (result === undefined) continue;
    if ('failure' in result) found.failures.push(result.failure);
    else if ('other' in result) found.others.push(result.other);
    else if (!found.binaries.some((b) => b.versionName === result.binary.versionName)) found.binaries.push(result.binary);
  }
  return found;
}

export interface EngineIdentity {
  datastore: string;
  manager: string;
  capabilities: EngineCapabilities;
  parameters: ConfigurationParameter[];
}

/** What the agent announces for one version: active, or inactive with `inactiveReason`. */
export function versionReport(engine: EngineIdentity, name: string, version: string, inactiveReason: string | null): EngineVersionReport {
  return { ...engine, name, version, active: inactiveReason === null, inactiveReason };
}
