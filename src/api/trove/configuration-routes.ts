import type { FastifyInstance, FastifyRequest } from 'fastify';
import { newUuid } from '../../common/index.js';
import type { ConfigurationRow } from '../../db/index.js';
import { requireAuth } from '../auth-context.js';
import { parseTroveBody } from '../parse-body.js';
import { enforce } from '../policy.js';
import { checkValues, configurationNotFound, deleteGroup, updateGroup } from './configuration-apply.js';
import { createConfigurationSchema, editConfigurationSchema, updateConfigurationSchema } from './configuration-schemas.js';
import { ConfigurationViewLoader, configurationDetailView, configurationView, maskedValues } from './configuration-views.js';
import { resolveVersion } from './create-instance.js';
import { loadGuestTarget } from './guest-target.js';
import { nextPageLink, pageRequest } from './pagination.js';
import { busContext, viewContext, type TenantParams, type TroveDeps } from './trove-deps.js';

// Configuration groups (reference 2.8) and an instance's effective configuration (2.2). Admins
// see every project's groups; a member only its own, and another project's group is 404.

type GroupParams = { Params: TenantParams & { configurationId: string } };
type InstanceParams = { Params: TenantParams & { instanceId: string } };

export async function configurationRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;

  /** The group the URL names, then the policy for `action` on its project. */
  async function loadGroup(request: FastifyRequest<GroupParams>, action: string): Promise<ConfigurationRow> {
    const auth = requireAuth(request);
    const { configurationId } = request.params;
    const group = await store.configurations.get(configurationId, auth.isAdmin ? {} : { tenantId: auth.projectId });
    if (group === undefined) throw configurationNotFound(configurationId);
    enforce(auth, action, group.tenantId);
    return group;
  }

  /** Admins count every project's instances, members their own (Trove's instance_count). */
  const instanceCount = (request: FastifyRequest, group: ConfigurationRow) => {
    const auth = requireAuth(request);
    return store.configurations.countInstances(group.id, auth.isAdmin ? {} : { tenantId: auth.projectId });
  };

  app.get('/configurations', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'configuration:index', auth.projectId);
    const page = await store.configurations.list({ ...(auth.isAdmin ? {} : { tenantId: auth.projectId }), ...pageRequest(request) });
    const loader = new ConfigurationViewLoader(store);
    const views = await Promise.all(page.items.map(async (group) => configurationView(await loader.load(group))));
    return {
      configurations: views,
      ...(page.nextMarker === null ? {} : { links: [nextPageLink(request, viewContext(request).linkBase, page.nextMarker)] }),
    };
  });

  app.post('/configurations', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'configuration:create', auth.projectId);
    const input = parseTroveBody(createConfigurationSchema, request.body).configuration;
    const { datastore, version } = await resolveVersion(deps, input);
    const values = await checkValues(store, version, input.values);
    const now = new Date();
    const group: ConfigurationRow = {
      id: newUuid(),
      tenantId: auth.projectId,
      name: input.name,
      description: input.description ?? null,
      datastoreVersionId: version.id,
      values,
      createdAt: now,
      updatedAt: now,
      deleted: false,
      deletedAt: null,
    };
    const { deleted: _deleted, deletedAt: _deletedAt, ...row } = group;
    await store.configurations.create(row);
    return { configuration: configurationDetailView({ group, version, datastore }, 0) };
  });

  app.get<GroupParams>('/configurations/:configurationId', async (request) => {
    const group = await loadGroup(request, 'configuration:show');
    const data = await new ConfigurationViewLoader(store).load(group);
    return { configuration: configurationDetailView(data, await instanceCount(request, group)) };
  });

  app.get<GroupParams>('/configurations/:configurationId/instances', async (request) => {
    const auth = requireAuth(request);
    const group = await loadGroup(request, 'configuration:instances');
    const page = await store.configurations.instances(group.id, { ...(auth.isAdmin ? {} : { tenantId: auth.projectId }), ...pageRequest(request) });
    return {
      instances: page.items.map((i) => ({ id: i.id, name: i.name })),
      ...(page.nextMarker === null ? {} : { links: [nextPageLink(request, viewContext(request).linkBase, page.nextMarker)] }),
    };
  });

  // PUT replaces the values (and the name and description given): 202. PATCH adds the values
  // given to the group's and changes those it had: 200 with no body, as Trove answers.
  app.put<GroupParams>('/configurations/:configurationId', async (request, reply) => {
    const input = parseTroveBody(updateConfigurationSchema, request.body).configuration;
    const group = await loadGroup(request, 'configuration:update');
    const values = await checkValues(store, await versionOf(group), input.values);
    await updateGroup(
      deps,
      group,
      { values, ...(input.name === undefined ? {} : { name: input.name }), ...(input.description === undefined ? {} : { description: input.description }) },
      busContext(request),
    );
    reply.code(202).type('application/json').send();
  });

  app.patch<GroupParams>('/configurations/:configurationId', async (request, reply) => {
    const input = parseTroveBody(editConfigurationSchema, request.body).configuration;
    const group = await loadGroup(request, 'configuration:edit');
    const values = await checkValues(store, await versionOf(group), input.values);
    await updateGroup(deps, group, { values: { ...group.values, ...values } }, busContext(request));
    reply.code(200).type('application/json').send();
  });

  app.delete<GroupParams>('/configurations/:configurationId', async (request, reply) => {
    const group = await loadGroup(request, 'configuration:delete');
    await deleteGroup(deps, group);
    reply.code(202).type('application/json').send();
  });

  /**
   * The configuration the engine runs with, as its guest renders it (Trove renders its template);
   * a setting named like a password is masked as in the group views.
   */
  app.get<InstanceParams>('/instances/:instanceId/configuration', async (request) => {
    const target = await loadGuestTarget(deps, request, 'instance:configuration', (c) => c.configurationGroups, 'Its configuration needs');
    const { values } = await target.guest.getConfiguration({}, target.context);
    return { instance: { configuration: maskedValues(values) } };
  });

  async function versionOf(group: ConfigurationRow) {
    const version = await store.datastores.getVersion(group.datastoreVersionId);
    if (version === undefined) throw configurationNotFound(group.id);
    return version;
  }
}
