import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errors, type ConfigurationParameter } from '../../common/index.js';
import type { DatastoreVersionRow } from '../../db/index.js';
import { requireAuth } from '../auth-context.js';
import { enforce } from '../policy.js';
import { findActiveVersion } from './active-version.js';
import { versionNotFound } from './datastore-lookup.js';
import type { TenantParams, TroveDeps } from './trove-deps.js';

// The settings a configuration group may change (reference 2.7), as the version's engine
// declared them. By datastore and version (id or name; must be active) or by version id alone.
// A single parameter is answered unwrapped, as Trove does.

type ByDatastore = { Params: TenantParams & { datastore: string; version: string; name?: string } };
type ByVersion = { Params: TenantParams & { versionId: string; name?: string } };

/** Trove's ConfigurationParameterView: `max`/`min` only when truthy, so `min: 0` is left out. */
function parameterView(parameter: ConfigurationParameter, versionId: string) {
  return {
    name: parameter.name,
    datastore_version_id: versionId,
    restart_required: parameter.restartRequired,
    type: parameter.type,
    ...(parameter.max ? { max: Math.trunc(parameter.max) } : {}),
    ...(parameter.min ? { min: Math.trunc(parameter.min) } : {}),
  };
}

function list(version: DatastoreVersionRow) {
  return { 'configuration-parameters': version.parameters.map((p) => parameterView(p, version.id)) };
}

function show(version: DatastoreVersionRow, name: string) {
  const parameter = version.parameters.find((p) => p.name === name);
  if (parameter === undefined) throw errors.notFound(name);
  return parameterView(parameter, version.id);
}

export async function configurationParameterRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;

  const byDatastore = async (request: FastifyRequest<ByDatastore>, action: string) => {
    const auth = requireAuth(request);
    enforce(auth, action, auth.projectId);
    return (await findActiveVersion(store, request.params.datastore, request.params.version)).version;
  };
  const byVersion = async (request: FastifyRequest<ByVersion>, action: string) => {
    const auth = requireAuth(request);
    enforce(auth, action, auth.projectId);
    const version = await store.datastores.getVersion(request.params.versionId);
    if (version === undefined) throw versionNotFound(request.params.versionId);
    return version;
  };

  app.get<ByDatastore>('/datastores/:datastore/versions/:version/parameters', async (request) =>
    list(await byDatastore(request, 'configuration-parameter:index')),
  );
  app.get<ByDatastore & { Params: { name: string } }>(
    '/datastores/:datastore/versions/:version/parameters/:name',
    async (request) => show(await byDatastore(request, 'configuration-parameter:show'), request.params.name),
  );
  app.get<ByVersion>('/datastores/versions/:versionId/parameters', async (request) =>
    list(await byVersion(request, 'configuration-parameter:index_by_version')),
  );
  app.get<ByVersion & { Params: { name: string } }>('/datastores/versions/:versionId/parameters/:name', async (request) =>
    show(await byVersion(request, 'configuration-parameter:show_by_version'), request.params.name),
  );
}
