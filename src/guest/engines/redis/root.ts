import type { RootAdmin } from '../engine.js';
import type { RootModule } from '../engine-modules.js';
import { rootDisableArguments, rootEnableArguments, rootUser } from './acl.js';
import { applyAcl, withAdminClient, type AdminEndpoint, type AdminEndpointSource } from './admin.js';

// The root module: root is Redis's `default` user, turned on with the tenant's password and
// every command but those that would undo the guest's guarantees (see acl.ts).

export const redisRoot: RootModule<AdminEndpointSource> = {
  create: (lifecycle) => new RedisRootAdmin(() => lifecycle.endpoint()),
};

export class RedisRootAdmin implements RootAdmin {
  constructor(private readonly endpoint: () => Promise<AdminEndpoint>) {}

  async enable(password: string): Promise<string> {
    const args = rootEnableArguments(password);
    await withAdminClient(await this.endpoint(), (client) => applyAcl(client, [['SETUSER', ...args]]));
    return rootUser;
  }

  async disable(): Promise<void> {
    await withAdminClient(await this.endpoint(), async (client) => {
      await applyAcl(client, [['SETUSER', ...rootDisableArguments()]]);
      // sessions already logged in as root would otherwise keep it (unauthenticated
      // connections count as `default` too: they just connect again)
      await client.call('CLIENT', ['KILL', 'USER', rootUser]);
    });
  }
}
