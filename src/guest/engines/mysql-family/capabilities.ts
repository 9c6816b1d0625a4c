import type { EngineCapabilities } from '../engine.js';

// What the MySQL-family guest implements, for MariaDB and MySQL alike. The configuration-group
// parameters differ by engine: each flavor's `parameters`.
export const mysqlFamilyCapabilities: EngineCapabilities = {
  databases: true,
  users: true,
  userHosts: true,
  userAccess: true,
  characterSets: true,
  root: true,
  accessRules: true,
  backup: false,
  replication: false,
  configurationGroups: true,
};
