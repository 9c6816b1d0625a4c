import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CofferError, newKeystoneId } from '../../common/index.js';
import type { ProjectRow } from '../../db/index.js';
import { authenticate } from '../auth-context.js';
import { parseKeystoneBody } from '../parse-body.js';
import { queryParam } from '../query-param.js';
import { forbidden, notFound, requireAdmin, resolveDomainId, v3Base, type IdentityDeps } from './identity-deps.js';
import { defaultDomain, listLinks, projectView } from './keystone-views.js';

// /identity/v3/projects: admin CRUD, as `openstack project create|list|show|set|delete` drive it.

const createSchema = z.object({
  project: z.object({
    name: z.string().min(1).max(64),
    domain_id: z.string().nullable().optional(),
    parent_id: z.string().nullable().optional(),
    description: z.string().nullable().optional(),
    enabled: z.boolean().optional(),
  }),
});

const updateSchema = z.object({
  project: z.object({
    name: z.string().min(1).max(64).optional(),
    description: z.string().nullable().optional(),
    enabled: z.boolean().optional(),
  }),
});

function conflict(name: string): CofferError {
  return new CofferError(
    'Conflict',
    `Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : ${name}.`,
  );
}

export async function projectRoutes(app: FastifyInstance, deps: IdentityDeps): Promise<void> {
  const { store } = deps;

  async function loadProject(id: string): Promise<ProjectRow> {
    const project = await store.projects.get(id);
    if (project === undefined) throw notFound('project', id);
    return project;
  }

  app.post('/v3/projects', async (request, reply) => {
    await requireAdmin(request, deps, 'identity:create_project');
    const { project: input } = parseKeystoneBody(createSchema, request.body);
    const domainRef = input.domain_id ?? input.parent_id ?? defaultDomain.id;
    const domainId = resolveDomainId({ id: domainRef });
    // Coffer projects are flat: the only parent a project can have is its domain.
    if (domainId === undefined) throw notFound(input.domain_id == null ? 'project' : 'domain', domainRef);
    if ((await store.projects.getByName(input.name, domainId)) !== undefined) throw conflict(input.name);
    const row: ProjectRow = {
      id: newKeystoneId(),
      name: input.name,
      domainId,
      description: input.description ?? '',
      enabled: input.enabled ?? true,
      createdAt: new Date(),
    };
    await store.projects.create(row);
    reply.code(201);
    return { project: projectView(row, v3Base(request, deps)) };
  });

  // Keystone's list of the projects the token's user can scope a token to (a dashboard's project picker)
  app.get('/v3/auth/projects', async (request) => {
    const auth = await authenticate(request, deps.tokens);
    const ids = [...new Set((await store.roleAssignments.list({ userId: auth.userId })).map((assignment) => assignment.projectId))];
    const rows = (await Promise.all(ids.map((id) => store.projects.get(id)))).filter((p): p is ProjectRow => p?.enabled === true);
    rows.sort((a, b) => a.name.localeCompare(b.name));
    const base = v3Base(request, deps);
    return { projects: rows.map((p) => projectView(p, base)), links: listLinks(`${base}/auth/projects`) };
  });

  app.get('/v3/projects', async (request) => {
    await requireAdmin(request, deps, 'identity:list_projects');
    const name = queryParam(request.query, 'name');
    const domainId = queryParam(request.query, 'domain_id');
    const rows = await store.projects.list({
      ...(name === undefined ? {} : { name }),
      ...(domainId === undefined ? {} : { domainId }),
    });
    const base = v3Base(request, deps);
    return { projects: rows.map((p) => projectView(p, base)), links: listLinks(`${base}/projects`) };
  });

  app.get<{ Params: { projectId: string } }>('/v3/projects/:projectId', async (request) => {
    const auth = await authenticate(request, deps.tokens);
    if (!auth.isAdmin && auth.projectId !== request.params.projectId) throw forbidden('identity:get_project');
    return { project: projectView(await loadProject(request.params.projectId), v3Base(request, deps)) };
  });

  app.patch<{ Params: { projectId: string } }>('/v3/projects/:projectId', async (request) => {
    await requireAdmin(request, deps, 'identity:update_project');
    const { project: input } = parseKeystoneBody(updateSchema, request.body);
    const current = await loadProject(request.params.projectId);
    if (input.name !== undefined && input.name !== current.name) {
      if ((await store.projects.getByName(input.name, current.domainId)) !== undefined) throw conflict(input.name);
    }
    await store.transaction(async (tx) => {
      await tx.projects.update(current.id, {
        ...(input.name === undefined ? {} : { name: input.name }),
        ...(input.description === undefined ? {} : { description: input.description ?? '' }),
        ...(input.enabled === undefined ? {} : { enabled: input.enabled }),
      });
      // Keystone revokes a disabled project's tokens: re-enabling it does not bring them back.
      if (input.enabled === false) await tx.tokens.deleteForProject(current.id);
    });
    return { project: projectView(await loadProject(current.id), v3Base(request, deps)) };
  });

  app.delete<{ Params: { projectId: string } }>('/v3/projects/:projectId', async (request, reply) => {
    await requireAdmin(request, deps, 'identity:delete_project');
    const project = await loadProject(request.params.projectId);
    // Tokens scoped to the project stop validating once it is gone; instances it owns stay
    // until an admin deletes them, as with Keystone and Trove.
    await store.transaction(async (tx) => {
      for (const a of await tx.roleAssignments.list({ projectId: project.id })) await tx.roleAssignments.revoke(a);
      await tx.projects.delete(project.id);
    });
    reply.code(204).send();
  });
}
