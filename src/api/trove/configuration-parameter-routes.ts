import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CofferError, errors, type ConfigurationParameter } from '../../common/index.js';
import type { DatastoreVersionRow } from '../../db/index.js';
import { requireAdmin } from '../admin-context.js';
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

/** Trove's management view: the stored rule as it is, `max_size`/`min_size` (null when none). */
function mgmtParameterView(parameter: ConfigurationParameter, versionId: string) {
  return {
    name: parameter.name,
    datastore_version_id: versionId,
    restart_required: parameter.restartRequired,
    type: parameter.type,
    max_size: parameter.max ?? null,
    min_size: parameter.min ?? null,
  };
}

/**
 * Why the management API does not add, change or delete parameters: the guest renders only what
 * its engine publishes (nothing a tenant sets reaches a configuration file otherwise), so a rule
 * added here could only let groups save values every guest refuses; and the list is what the
 * version's agents report, so a change here would be undone at their next report.
 */
const parametersArePublished = new CofferError(
  'NotImplemented',
  "Configuration parameters are published by each datastore version's engine and reported by its agents; " +
    'they cannot be created, changed or deleted through the API. Upgrade the engine (or Coffer) to change them.',
);

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

/** /mgmt/datastores/versions/{id}/parameters (reference 2.15): admins only, Trove's 401 otherwise. */
export async function mgmtConfigurationParameterRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;
  type MgmtParams = { Params: TenantParams & { versionId: string; name?: string } };
  const versionFor = async (request: FastifyRequest<MgmtParams>) => {
    requireAdmin(requireAuth(request));
    const version = await store.datastores.getVersion(request.params.versionId);
    if (version === undefined) throw versionNotFound(request.params.versionId);
    return version;
  };
  const refuse = async (request: FastifyRequest<MgmtParams>) => {
    requireAdmin(requireAuth(request));
    throw parametersArePublished;
  };

  app.get<MgmtParams>('/mgmt/datastores/versions/:versionId/parameters', async (request) => {
    const version = await versionFor(request);
    return { 'configuration-parameters': version.parameters.map((p) => mgmtParameterView(p, version.id)) };
  });
  app.get<MgmtParams>('/mgmt/datastores/versions/:versionId/parameters/:name', async (request) => {
    const version = await versionFor(request);
    const parameter = version.parameters.find((p) => p.name === request.params.name);
    if (parameter === undefined) throw errors.notFound(String(request.params.name));
    return mgmtParameterView(parameter, version.id);
  });
  app.post<MgmtParams>('/mgmt/datastores/versions/:versionId/parameters', refuse);
  app.put<MgmtParams>('/mgmt/datastores/versions/:versionId/parameters/:name', refuse);
  app.delete<MgmtParams>('/mgmt/datastores/versions/:versionId/parameters/:name', refuse);
}
