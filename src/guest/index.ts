// The guest: one per instance, hosted by the agent of its host (or later standalone next to a
// container). It serves `guest.<instanceId>`, turns abstract commands into engine-specific ones
// through an engine driver, supervises the engine and heartbeats its health to the conductor.
// It holds no state-database access and runs programs only through the ProcessRunner port its
// host provides.

export { startGuest } from './guest.js';
export { CheckRound } from './check-round.js';
export { HeartbeatBatch } from './heartbeat-batch.js';
export type { RoundOfChecks } from './check-round.js';
export { forgetWalTarget } from './wal-shipper.js';
export type { CertificateIssuer, DesiredState, Guest, GuestInstance, GuestOptions } from './guest.js';
export type { GuestBackupHost } from './backup-runner.js';
export type {
  DetachedProcess,
  ProcessExit,
  ProcessRunner,
  RunOptions,
  RunResult,
  SpawnDetachedOptions,
  StreamingProcess,
  StreamOptions,
} from './process-runner.js';
export { engineNames, engineRegistry, isEngineName } from './engines/registry.js';
export type { EngineName } from './engines/registry.js';
export type {
  EngineBinary,
  EngineCapabilities,
  EngineContext,
  EngineDiscovery,
  EngineDriver,
  EngineFactory,
  EngineHealth,
  InstancePlacement,
  PrepareProgress,
  PrepareStep,
  PrepareTimings,
  TlsMaterial,
  UpgradeContext,
  UpgradeOutcome,
  WarmSource,
  WarmStart,
} from './engines/engine.js';
