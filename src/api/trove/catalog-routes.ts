import type { FastifyInstance } from 'fastify';
import { errors } from '../../common/index.js';
import { requireAuth } from '../auth-context.js';
import { enforce } from '../policy.js';
import { findActiveVersion } from './active-version.js';
import { flavorView } from './flavor-view.js';
import { viewContext, type TenantParams, type TroveDeps } from './trove-deps.js';
import { volumeTypes } from './volume-types.js';

// What a datastore version can be created with (reference 2.6): flavors and volume types. Coffer
// keeps no per-version associations, so every flavor and the one volume type go with every
// version; the version must exist and be active, as in Trove.

type VersionParams = { Params: TenantParams & { datastore: string; version: string } };

export async function catalogRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;

  app.get<VersionParams>('/datastores/:datastore/versions/:version/flavors', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'datastore:list_associated_flavors', auth.projectId);
    await findActiveVersion(store, request.params.datastore, request.params.version);
    const ctx = viewContext(request);
    return { flavors: (await store.flavors.list()).map((f) => flavorView(f, ctx)) };
  });

  app.get<VersionParams>('/datastores/:datastore/versions/:version/volume-types', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'datastore:list_associated_volume_types', auth.projectId);
    await findActiveVersion(store, request.params.datastore, request.params.version);
    return { volume_types: volumeTypes };
  });

  // Not in Zed (404 there); troveclient's volume-type-list and volume-type-show call them.
  app.get('/volume-types', async () => ({ volume_types: volumeTypes }));

  app.get<{ Params: TenantParams & { volumeType: string } }>('/volume-types/:volumeType', async (request) => {
    const wanted = request.params.volumeType;
    const found = volumeTypes.find((t) => t.id === wanted || t.name === wanted);
    if (found === undefined) throw errors.notFound(wanted);
    return { volume_type: found };
  });
}
