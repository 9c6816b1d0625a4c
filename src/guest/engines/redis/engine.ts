import { checkSocketPath } from '../engine-files.js';
import { defineEngine } from '../engine-modules.js';
import type { EngineFactory } from '../engine.js';
import { redisBackup } from './backup.js';
import { discoverRedis } from './binaries.js';
import { redisConfiguration } from './configuration.js';
import { layout, redisLifecycle, standardPort } from './lifecycle.js';
import { redisReplication } from './replication.js';
import { redisRoot } from './root.js';
import { redisTlsPort } from './tls.js';
import { redisUsers } from './users.js';

// Redis: its modules, and what the host needs to know of it. No databases module: Redis has no
// databases in Trove's sense (its numbered keyspaces are not named, created or granted). What it
// supports follows from the modules (engine-modules.ts).

export const redisEngine: EngineFactory = defineEngine({
  manager: 'redis',
  modules: {
    lifecycle: redisLifecycle,
    users: redisUsers,
    root: redisRoot,
    configuration: redisConfiguration,
    backup: redisBackup,
    replication: redisReplication,
  },
  // root is the default user, without CONFIG, MODULE or DEBUG: it cannot reach files or programs
  rootReachesOsUser: false,
  standardPort,
  tlsPort: redisTlsPort,
  discover: discoverRedis,
  checkInstanceDir: (dir) => checkSocketPath('Redis', layout(dir).socketPath),
});
