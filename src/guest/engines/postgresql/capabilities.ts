import type { EngineCapabilities } from '../engine.js';

// What the PostgreSQL guest implements today: an engine declares only what it can do.
export const postgresqlCapabilities: EngineCapabilities = {
  databases: false,
  users: false,
  userHosts: false,
  userAccess: false,
  characterSets: false,
  root: false,
  accessRules: true,
  backup: false,
  replication: false,
  configurationGroups: false,
};
