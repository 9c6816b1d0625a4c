import { checkSocketPath } from '../engine-files.js';
import { defineEngine } from '../engine-modules.js';
import type { EngineFactory } from '../engine.js';
import { mysqlFamilyBackup } from './backup.js';
import { discoverMysqlFamily } from './binaries.js';
import { mysqlFamilyConfiguration } from './configuration.js';
import { mysqlFamilyDatabases } from './databases.js';
import type { MysqlFamilyFlavor } from './flavor.js';
import { mysqlFamilyWarmStart } from './install.js';
import { layout, mysqlFamilyLifecycle, standardPort } from './lifecycle.js';
import { mysqlFamilyReplication } from './replication.js';
import { mysqlFamilyRoot } from './root.js';
import { mysqlFamilyUsers } from './users.js';

// The modules every member of the MySQL family (mariadb/, mysql/) is made of; what differs
// between members is their flavor (flavor.ts), including the parameters a configuration group
// may set. What they support follows from the modules (engine-modules.ts).

/** The engine factory of one member of the family. */
export function mysqlFamilyEngine(flavor: MysqlFamilyFlavor): EngineFactory {
  return defineEngine({
    manager: flavor.manager,
    modules: {
      lifecycle: mysqlFamilyLifecycle(flavor),
      databases: mysqlFamilyDatabases,
      users: mysqlFamilyUsers,
      root: mysqlFamilyRoot,
      configuration: mysqlFamilyConfiguration(flavor),
      backup: mysqlFamilyBackup,
      ...(flavor.replication === true ? { replication: mysqlFamilyReplication } : {}),
    },
    rootReachesOsUser: true,
    standardPort,
    // TLS and plaintext on one port: the client switches to TLS in the handshake
    tlsPort: (port) => port,
    discover: (extraBinDirs, runner, identity) => discoverMysqlFamily(flavor, extraBinDirs, runner, identity),
    checkInstanceDir: (dir) => checkSocketPath(flavor.title, layout(dir).socket),
    ...(flavor.warmPool === true ? { warm: mysqlFamilyWarmStart(flavor) } : {}),
  });
}
