import type { ConfigurationParameter } from '../../../bus/index.js';
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
  configurationGroups: false,
};

/** The settings a configuration group may change (Trove's Redis validation-rules.json, abridged). */
export const redisParameters: ConfigurationParameter[] = [
  { name: 'maxmemory-policy', type: 'string', restartRequired: false },
  { name: 'timeout', type: 'integer', restartRequired: false, min: 0, max: 2_147_483_647 },
  { name: 'tcp-keepalive', type: 'integer', restartRequired: false, min: 0, max: 2_147_483_647 },
  { name: 'appendfsync', type: 'string', restartRequired: false },
  { name: 'hz', type: 'integer', restartRequired: false, min: 1, max: 500 },
  { name: 'slowlog-log-slower-than', type: 'integer', restartRequired: false, min: -1, max: 2_147_483_647 },
  { name: 'slowlog-max-len', type: 'integer', restartRequired: false, min: 0, max: 2_147_483_647 },
  { name: 'notify-keyspace-events', type: 'string', restartRequired: false },
  { name: 'lazyfree-lazy-eviction', type: 'boolean', restartRequired: false },
  { name: 'maxclients', type: 'integer', restartRequired: false, min: 1, max: 100_000 },
];
