import type { ConfigurationParameter } from '../../../bus/index.js';
import type { EngineCapabilities } from '../engine.js';

// What the PostgreSQL guest implements today: an engine declares only what it can do.
export const postgresqlCapabilities: EngineCapabilities = {
  databases: true,
  users: true,
  // roles have no host; client addresses are limited by pg_hba.conf (accessRules)
  userHosts: false,
  userAccess: true,
  characterSets: true,
  root: true,
  accessRules: true,
  backup: false,
  replication: false,
  configurationGroups: false,
};

/** The settings a configuration group may change (Trove's validation-rules.json, abridged). */
export const postgresqlParameters: ConfigurationParameter[] = [
  { name: 'max_connections', type: 'integer', restartRequired: true, min: 10, max: 10_000 },
  { name: 'shared_buffers', type: 'string', restartRequired: true },
  { name: 'work_mem', type: 'string', restartRequired: false },
  { name: 'maintenance_work_mem', type: 'string', restartRequired: false },
  { name: 'effective_cache_size', type: 'string', restartRequired: false },
  { name: 'statement_timeout', type: 'integer', restartRequired: false, min: 0, max: 2_147_483_647 },
  { name: 'log_min_duration_statement', type: 'integer', restartRequired: false, min: -1, max: 2_147_483_647 },
  { name: 'autovacuum', type: 'boolean', restartRequired: false },
  { name: 'random_page_cost', type: 'float', restartRequired: false, min: 0, max: 1_000_000 },
  { name: 'timezone', type: 'string', restartRequired: false },
];
