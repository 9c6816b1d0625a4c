import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CofferError } from '../../common/index.js';
import type { DatastoreRow, DatastoreVersionRow } from '../../db/index.js';
import { requireAdmin } from '../admin-context.js';
import { requireAuth } from '../auth-context.js';
import { parseTroveBody } from '../parse-body.js';
import { versionNotFound } from './datastore-lookup.js';
import type { TenantParams, TroveDeps } from './trove-deps.js';

// Datastore versions for administrators (reference 2.15, issue 13): the list and each version in
// Trove's management view, and PATCH to make a version the default or take it out of service.
//
// Coffer's versions are not images: they are the engines its agents find on their hosts, which
// register them (name, manager, full version). So the fields that describe an image (image,
// image_tags, packages), the manager and the name are the hosts' to say, and a PATCH that would
// change them is refused with the reason; creating or deleting a version is the hosts' too (501).
// An administrator's `active: false` outlasts what agents report (it is kept apart, migration
// 0024); `active: true` gives the version back to what they report.

type VersionParams = { Params: TenantParams & { versionId: string } };

const patchBody = z
  .object({
    active: z.boolean().optional(),
    default: z.boolean().optional(),
    name: z.string().optional(),
    datastore_manager: z.string().optional(),
    image: z.string().nullable().optional(),
    image_tags: z.array(z.string()).optional(),
    packages: z.union([z.array(z.string()), z.string()]).optional(),
  })
  .strict()
  .refine((body) => Object.keys(body).length > 0, { message: 'The request names nothing to change: give active or default.' });

const hostOwned = ['name', 'datastore_manager', 'image', 'image_tags', 'packages'] as const;

export function mgmtDatastoreVersionView(version: DatastoreVersionRow, datastore: DatastoreRow | undefined) {
  return {
    id: version.id,
    name: version.name,
    version: version.version,
    datastore_id: version.datastoreId,
    datastore_name: datastore?.name ?? null,
    datastore_manager: version.manager,
    // Trove's shape for a version with no image and no tags or packages
    image: null,
    image_tags: [''],
    packages: [''],
    active: version.active,
    default: datastore?.defaultVersionId === version.id,
    // Coffer's: why a version is out of service (no host can run it, or an administrator said so)
    ...(version.active ? {} : { inactive_reason: version.inactiveReason }),
  };
}

export async function mgmtDatastoreVersionRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;
  const admin = (request: FastifyRequest) => requireAdmin(requireAuth(request));

  async function loadVersion(id: string): Promise<{ version: DatastoreVersionRow; datastore: DatastoreRow | undefined }> {
    const version = await store.datastores.getVersion(id);
    if (version === undefined) throw versionNotFound(id);
    return { version, datastore: await store.datastores.getDatastore(version.datastoreId) };
  }

  app.get('/mgmt/datastore-versions', async (request) => {
    admin(request);
    const [datastores, versions] = await Promise.all([store.datastores.listDatastores(), store.datastores.listVersions()]);
    const byId = new Map(datastores.map((d) => [d.id, d]));
    return { versions: versions.map((v) => mgmtDatastoreVersionView(v, byId.get(v.datastoreId))) };
  });

  app.get<VersionParams>('/mgmt/datastore-versions/:versionId', async (request) => {
    admin(request);
    const { version, datastore } = await loadVersion(request.params.versionId);
    return { version: mgmtDatastoreVersionView(version, datastore) };
  });

  app.patch<VersionParams>('/mgmt/datastore-versions/:versionId', async (request, reply) => {
    admin(request);
    const body = parseTroveBody(patchBody, request.body);
    const { version, datastore } = await loadVersion(request.params.versionId);
    const changed = hostOwned.filter((field) => body[field] !== undefined);
    if (changed.length > 0) {
      throw new CofferError(
        'BadRequest',
        `Coffer's datastore versions are the engines its agents find on their hosts: ${changed.join(', ')} cannot be changed here. Install or remove the engine on the hosts instead.`,
      );
    }
    if (datastore === undefined) throw versionNotFound(version.id);
    const isDefault = datastore.defaultVersionId === version.id;
    const willBeActive = body.active ?? !version.disabledByAdmin;
    const willBeDefault = body.default ?? isDefault;
    if (willBeDefault && !willBeActive) {
      throw new CofferError(
        'BadRequest',
        isDefault
          ? `Datastore version ${version.name} is the default of ${datastore.name}: make another version the default first, or pass "default": false with "active": false.`
          : `Datastore version ${version.name} cannot be the default of ${datastore.name} while it is deactivated.`,
      );
    }
    // one no host can run would fail every create that relies on the default
    if (body.default === true && !isDefault && !version.active && !version.disabledByAdmin) {
      throw new CofferError('BadRequest', `Datastore version ${version.name} cannot be the default of ${datastore.name}: ${version.inactiveReason ?? 'it is inactive'}.`);
    }
    await store.transaction(async (tx) => {
      if (body.active !== undefined) await tx.datastores.setDisabledByAdmin(version.id, !body.active);
      if (body.default === true && !isDefault) await tx.datastores.setDefaultVersion(datastore.id, version.id);
      // Trove: `default: false` on the current default leaves the datastore with none
      if (body.default === false && isDefault) await tx.datastores.setDefaultVersion(datastore.id, null);
    });
    return reply.code(202).type('application/json').send();
  });

  const hostsOwnVersions = () =>
    new CofferError(
      'NotImplemented',
      "Coffer's datastore versions are the engines its agents find on their hosts: install or remove the engine on the hosts, and PATCH a version to deactivate it.",
    );
  app.post('/mgmt/datastore-versions', async (request) => {
    admin(request);
    throw hostsOwnVersions();
  });
  app.delete<VersionParams>('/mgmt/datastore-versions/:versionId', async (request) => {
    admin(request);
    await loadVersion(request.params.versionId);
    throw hostsOwnVersions();
  });
}
