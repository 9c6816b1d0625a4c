import type { RootAdmin } from '../engine.js';
import type { RootModule } from '../engine-modules.js';
import { tenantUsers } from './account-registry.js';
import type { MysqlFamilyAdmin } from './admin.js';
import { rootUser } from './sql.js';

// The root module: root is the registry's superuser `root@%`, derived into a server account
// like any tenant user; disabled, the row and so the account go.

export const mysqlFamilyRoot: RootModule<{ readonly admin: MysqlFamilyAdmin }> = {
  create: (lifecycle) => rootAdmin(lifecycle.admin),
};

function rootAdmin(admin: MysqlFamilyAdmin): RootAdmin {
  return {
    enable: (password) =>
      admin.run(async (connection) => {
        await connection.query(
          `INSERT INTO ${tenantUsers} (name, host, superuser, password_hash) VALUES (?, '%', TRUE, ?) ` +
            'ON DUPLICATE KEY UPDATE superuser = TRUE, password_hash = VALUES(password_hash)',
          [rootUser, admin.flavor.hashPassword(password)],
        );
        await admin.registry.reconcile(connection, rootUser);
        return rootUser;
      }),
    disable: () =>
      admin.run(async (connection) => {
        await connection.query(`DELETE FROM ${tenantUsers} WHERE name = ?`, [rootUser]);
        await admin.registry.reconcile(connection, rootUser);
      }),
  };
}
