import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { authenticateWith, type CallerValidator } from '../auth-context.js';
import { publicBase } from '../base-url.js';

// The smallest honest Image service (Glance v2): Coffer boots no images, so its list is empty.
// OpenStack's client builds an image client for `openstack server list` and `server show` (to
// name each server's image) and fails without an `image` entry in the catalog; with this one,
// the compute view (src/api/compute) works with the commands as users type them.

export interface ImageDeps {
  callers: CallerValidator;
  publicUrl: string | undefined;
}

export function imagePlugin(deps: ImageDeps): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get('/', async (request) => ({
      versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ rel: 'self', href: `${publicBase(request, deps.publicUrl)}/image/v2/` }] }],
    }));
    app.get('/v2/images', async (request) => {
      await authenticateWith(request, deps.callers);
      return { images: [], first: '/v2/images', schema: '/v2/schemas/images' };
    });
  };
}
