import type { FastifyInstance } from 'fastify';
import { CofferError } from '../../common/index.js';
import type { DatastoreVersionRow } from '../../db/index.js';
import { requireAuth } from '../auth-context.js';
import { enforce } from '../policy.js';
import { findDatastore, findVersionOf, isUuidLike, versionNotFound } from './datastore-lookup.js';
import { datastoreVersionView, datastoreView } from './datastore-views.js';
import { viewContext, type TenantParams, type TroveDeps } from './trove-deps.js';

// Datastores and their versions (reference 2.7). In the lists non-admins see only active
// versions, and only datastores that have one; admins see everything, with each version's state.
// Showing one datastore lists its active versions only, for admins too, as Trove does.

export async function datastoreRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;
  const visible = (versions: DatastoreVersionRow[], isAdmin: boolean) =>
    isAdmin ? versions : versions.filter((v) => v.active);

  app.get('/datastores', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'datastore:index', auth.projectId);
    const ctx = viewContext(request);
    const [datastores, versions] = await Promise.all([store.datastores.listDatastores(), store.datastores.listVersions()]);
    const shown = visible(versions, auth.isAdmin);
    return {
      datastores: datastores
        .map((d) => ({ d, versions: shown.filter((v) => v.datastoreId === d.id) }))
        .filter(({ versions: vs }) => auth.isAdmin || vs.length > 0)
        .map(({ d, versions: vs }) => datastoreView(d, vs, ctx)),
    };
  });

  // Static segments win over parameters in Fastify's router, so this does not shadow
  // /datastores/:datastore below.
  app.get<{ Params: TenantParams & { versionId: string } }>('/datastores/versions/:versionId', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'datastore:version_show_by_uuid', auth.projectId);
    const version = await store.datastores.getVersion(request.params.versionId);
    if (version === undefined) throw versionNotFound(request.params.versionId);
    return { version: datastoreVersionView(version, viewContext(request), true) };
  });

  app.get<{ Params: TenantParams & { datastore: string } }>('/datastores/:datastore', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'datastore:show', auth.projectId);
    const datastore = await findDatastore(store, request.params.datastore);
    const versions = (await store.datastores.listVersions(datastore.id)).filter((v) => v.active);
    return { datastore: datastoreView(datastore, versions, viewContext(request)) };
  });

  app.get<{ Params: TenantParams & { datastore: string } }>('/datastores/:datastore/versions', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'datastore:version_index', auth.projectId);
    const datastore = await findDatastore(store, request.params.datastore);
    const ctx = viewContext(request);
    const versions = visible(await store.datastores.listVersions(datastore.id), auth.isAdmin);
    return { versions: versions.map((v) => datastoreVersionView(v, ctx, true)) };
  });

  app.get<{ Params: TenantParams & { datastore: string; version: string } }>(
    '/datastores/:datastore/versions/:version',
    async (request) => {
      const auth = requireAuth(request);
      enforce(auth, 'datastore:version_show', auth.projectId);
      const datastore = await findDatastore(store, request.params.datastore);
      const { version: idOrName } = request.params;
      const version = await findVersionOf(store, datastore, idOrName);
      // Trove: an unknown version given by UUID is 404, given by name 400.
      if (version === undefined) {
        throw isUuidLike(idOrName) ? new CofferError('NotFound', `Resource ${idOrName} cannot be found.`) : versionNotFound(idOrName);
      }
      return { version: datastoreVersionView(version, viewContext(request), true) };
    },
  );
}
