import type { EngineCapabilities } from '../engine.js';

// What the Redis guest implements. Redis has no databases in Trove's sense (its numbered
// keyspaces are not named, created or granted), users are ACL users without hosts, and it
// cannot tell clients apart by address, so `access` rules cannot be enforced by the engine.
export const redisCapabilities: EngineCapabilities = {
  databases: false,
  users: true,
  userHosts: false,
  userAccess: false,
  characterSets: false,
  root: true,
  accessRules: false,
  backup: false,
  replication: false,
  // redis.conf rendered from the saved spec, applied live with CONFIG SET where Redis can
  configurationGroups: true,
};

/** The settings a configuration group may change, with Trove's rules (see parameters.ts). */
export { redisParameters } from './parameters.js';
