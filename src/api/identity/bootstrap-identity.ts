import { newKeystoneId } from '../../common/index.js';
import type { StateStore } from '../../db/index.js';
import { defaultDomain } from './keystone-views.js';
import { hashPassword } from './password-hash.js';

/**
 * Idempotent first-run setup, like `keystone-manage bootstrap`: roles `admin` and `member`,
 * project `admin` and user `admin` in the default domain, and admin holding the admin role on
 * project admin. The password is set only when the user is created, so a restart with another
 * configured password never silently changes it.
 */
export async function bootstrapIdentity(store: StateStore, adminPassword: string): Promise<{ created: boolean }> {
  const passwordHash = await hashPassword(adminPassword);
  return store.transaction(async (tx) => {
    const adminRole = await tx.roles.ensure('admin', newKeystoneId());
    await tx.roles.ensure('member', newKeystoneId());
    let project = await tx.projects.getByName('admin', defaultDomain.id);
    if (project === undefined) {
      project = {
        id: newKeystoneId(),
        name: 'admin',
        domainId: defaultDomain.id,
        description: 'Bootstrap project for initializing the cloud.',
        enabled: true,
        createdAt: new Date(),
      };
      await tx.projects.create(project);
    }
    let user = await tx.users.getByName('admin', defaultDomain.id);
    const created = user === undefined;
    if (user === undefined) {
      user = {
        id: newKeystoneId(),
        name: 'admin',
        domainId: defaultDomain.id,
        passwordHash,
        defaultProjectId: project.id,
        email: null,
        description: '',
        enabled: true,
        createdAt: new Date(),
      };
      await tx.users.create(user);
    }
    await tx.roleAssignments.grant({ userId: user.id, projectId: project.id, roleId: adminRole.id });
    return { created };
  });
}
