import { checkSocketPath } from '../engine-files.js';
import { defineEngine } from '../engine-modules.js';
import type { EngineFactory } from '../engine.js';
import { postgresqlBackup } from './backup.js';
import { discoverPostgresql } from './binaries.js';
import { postgresqlConfiguration } from './configuration.js';
import { postgresqlDatabases } from './databases.js';
import { postgresqlLifecycle, socketPath, standardPort } from './lifecycle.js';
import { postgresqlReplication } from './replication.js';
import { postgresqlRoot } from './root.js';
import { postgresqlUsers } from './users.js';
import { upgradePostgresql } from './upgrade.js';
import { postgresqlWarmStart } from './warm-cluster.js';

// PostgreSQL: its modules, and what the host needs to know of it. What it supports follows from
// the modules (engine-modules.ts); none of it is declared twice.

export const postgresqlEngine: EngineFactory = defineEngine({
  manager: 'postgresql',
  modules: {
    lifecycle: postgresqlLifecycle,
    databases: postgresqlDatabases,
    users: postgresqlUsers,
    root: postgresqlRoot,
    configuration: postgresqlConfiguration,
    backup: postgresqlBackup,
    replication: postgresqlReplication,
  },
  rootReachesOsUser: true,
  standardPort,
  // TLS and plaintext on one port: the client asks for TLS first (SSLRequest)
  tlsPort: (port) => port,
  discover: discoverPostgresql,
  checkInstanceDir: (dir) => checkSocketPath('PostgreSQL', socketPath(dir)),
  warm: postgresqlWarmStart,
  upgrade: upgradePostgresql,
});
