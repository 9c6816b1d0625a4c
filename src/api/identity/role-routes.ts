import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CofferError } from '../../common/index.js';
import type { RoleAssignmentRow } from '../../db/index.js';
import { queryParam } from '../query-param.js';
import { notFound, requireAdmin, v3Base, type IdentityDeps } from './identity-deps.js';
import { listLinks, roleAssignmentView, roleView } from './keystone-views.js';

// Roles and project role assignments, as `openstack role list|show|add|remove` and
// `openstack role assignment list` drive them.

type AssignmentParams = { Params: { projectId: string; userId: string; roleId: string } };

export async function roleRoutes(app: FastifyInstance, deps: IdentityDeps): Promise<void> {
  const { store } = deps;

  app.get('/v3/roles', async (request) => {
    await requireAdmin(request, deps, 'identity:list_roles');
    const name = queryParam(request.query, 'name');
    const base = v3Base(request, deps);
    const roles = (await store.roles.list()).filter((r) => name === undefined || r.name === name);
    return { roles: roles.map((r) => roleView(r, base)), links: listLinks(`${base}/roles`) };
  });

  app.get<{ Params: { roleId: string } }>('/v3/roles/:roleId', async (request) => {
    await requireAdmin(request, deps, 'identity:get_role');
    const role = await store.roles.get(request.params.roleId);
    if (role === undefined) throw notFound('role', request.params.roleId);
    return { role: roleView(role, v3Base(request, deps)) };
  });

  /** The assignment named by the URL, after checking that its project, user and role exist. */
  async function assignment(request: FastifyRequest<AssignmentParams>): Promise<RoleAssignmentRow> {
    const { projectId, userId, roleId } = request.params;
    if ((await store.projects.get(projectId)) === undefined) throw notFound('project', projectId);
    if ((await store.users.get(userId)) === undefined) throw notFound('user', userId);
    if ((await store.roles.get(roleId)) === undefined) throw notFound('role', roleId);
    return { projectId, userId, roleId };
  }

  async function isGranted(row: RoleAssignmentRow): Promise<boolean> {
    const roles = await store.roleAssignments.rolesOf(row.userId, row.projectId);
    return roles.some((r) => r.id === row.roleId);
  }

  function assignmentNotFound(row: RoleAssignmentRow): CofferError {
    return new CofferError(
      'NotFound',
      `Could not find role assignment with role: ${row.roleId}, user or group: ${row.userId}, project, domain, or system: ${row.projectId}.`,
    );
  }

  const path = '/v3/projects/:projectId/users/:userId/roles/:roleId';

  app.put<AssignmentParams>(path, async (request, reply) => {
    await requireAdmin(request, deps, 'identity:create_grant');
    await store.roleAssignments.grant(await assignment(request));
    reply.code(204).send();
  });

  // Keystone's "check grant" is HEAD; Fastify answers HEAD from this GET.
  app.get<AssignmentParams>(path, async (request, reply) => {
    await requireAdmin(request, deps, 'identity:check_grant');
    const row = await assignment(request);
    if (!(await isGranted(row))) throw assignmentNotFound(row);
    reply.code(204).send();
  });

  app.delete<AssignmentParams>(path, async (request, reply) => {
    await requireAdmin(request, deps, 'identity:revoke_grant');
    const row = await assignment(request);
    if (!(await isGranted(row))) throw assignmentNotFound(row);
    // Keystone revokes the user's tokens on the project with the assignment: their role list is
    // stale, and granting the role again must not revive them.
    await store.transaction(async (tx) => {
      await tx.roleAssignments.revoke(row);
      await tx.tokens.deleteForUserOnProject(row.userId, row.projectId);
    });
    reply.code(204).send();
  });

  app.get<{ Params: { projectId: string; userId: string } }>(
    '/v3/projects/:projectId/users/:userId/roles',
    async (request) => {
      await requireAdmin(request, deps, 'identity:list_grants');
      const { projectId, userId } = request.params;
      if ((await store.projects.get(projectId)) === undefined) throw notFound('project', projectId);
      if ((await store.users.get(userId)) === undefined) throw notFound('user', userId);
      const base = v3Base(request, deps);
      const roles = await store.roleAssignments.rolesOf(userId, projectId);
      return { roles: roles.map((r) => roleView(r, base)), links: listLinks(`${base}/projects/${projectId}/users/${userId}/roles`) };
    },
  );

  app.get('/v3/role_assignments', async (request) => {
    await requireAdmin(request, deps, 'identity:list_role_assignments');
    const q = request.query;
    const userId = queryParam(q, 'user.id');
    const projectId = queryParam(q, 'scope.project.id');
    const roleId = queryParam(q, 'role.id');
    const rows = await store.roleAssignments.list({
      ...(userId === undefined ? {} : { userId }),
      ...(projectId === undefined ? {} : { projectId }),
      ...(roleId === undefined ? {} : { roleId }),
    });
    const base = v3Base(request, deps);
    const includeNames = ['', 'true', 'True', '1'].includes(queryParam(q, 'include_names') ?? 'no');
    const views = await Promise.all(
      rows.map(async (row) => {
        if (!includeNames) return roleAssignmentView(row, base);
        const [role, user, project] = await Promise.all([
          store.roles.get(row.roleId),
          store.users.get(row.userId),
          store.projects.get(row.projectId),
        ]);
        return roleAssignmentView(row, base, {
          ...(role === undefined ? {} : { role }),
          ...(user === undefined ? {} : { user }),
          ...(project === undefined ? {} : { project }),
        });
      }),
    );
    return { role_assignments: views, links: listLinks(`${base}/role_assignments`) };
  });
}
