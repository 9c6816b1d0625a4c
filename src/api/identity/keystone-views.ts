import { createHash } from 'node:crypto';
import { keystoneTimestamp } from '../../common/index.js';
import type { ProjectRow, RoleAssignmentRow, RoleRow, UserRow } from '../../db/index.js';
import type { TokenSession } from './token-service.js';

// Keystone v3 JSON shapes, as python-openstackclient and keystoneauth read them. `base` is the
// identity v3 URL (`<public url>/identity/v3`).

/** Coffer has one domain, Keystone's `default`. */
export const defaultDomain = { id: 'default', name: 'Default', description: 'The default domain' } as const;

export function domainView(base: string) {
  return {
    id: defaultDomain.id,
    name: defaultDomain.name,
    description: defaultDomain.description,
    enabled: true,
    tags: [],
    options: {},
    links: { self: `${base}/domains/${defaultDomain.id}` },
  };
}

const domainRef = { id: defaultDomain.id, name: defaultDomain.name };

export function userView(user: UserRow, base: string) {
  return {
    id: user.id,
    name: user.name,
    domain_id: user.domainId,
    enabled: user.enabled,
    password_expires_at: null,
    options: {},
    ...(user.defaultProjectId === null ? {} : { default_project_id: user.defaultProjectId }),
    ...(user.email === null ? {} : { email: user.email }),
    ...(user.description === '' ? {} : { description: user.description }),
    links: { self: `${base}/users/${user.id}` },
  };
}

export function projectView(project: ProjectRow, base: string) {
  return {
    id: project.id,
    name: project.name,
    domain_id: project.domainId,
    description: project.description,
    enabled: project.enabled,
    parent_id: project.domainId,
    is_domain: false,
    tags: [],
    options: {},
    links: { self: `${base}/projects/${project.id}` },
  };
}

export function roleView(role: RoleRow, base: string) {
  return {
    id: role.id,
    name: role.name,
    domain_id: null,
    description: null,
    options: {},
    links: { self: `${base}/roles/${role.id}` },
  };
}

export function roleAssignmentView(
  row: RoleAssignmentRow,
  base: string,
  names?: { role?: RoleRow; user?: UserRow; project?: ProjectRow },
) {
  const withName = <T extends object>(ref: T, name: string | undefined) =>
    names === undefined || name === undefined ? ref : { ...ref, name, domain: domainRef };
  return {
    role: names?.role === undefined ? { id: row.roleId } : { id: row.roleId, name: names.role.name },
    user: withName({ id: row.userId }, names?.user?.name),
    scope: { project: withName({ id: row.projectId }, names?.project?.name) },
    links: { assignment: `${base}/projects/${row.projectId}/users/${row.userId}/roles/${row.roleId}` },
  };
}

/** Keystone list bodies carry `links` with the collection's own URL. */
export function listLinks(self: string) {
  return { self, previous: null, next: null };
}

/** Endpoint and service ids are derived from their names, so they are stable across restarts. */
function stableId(...parts: string[]): string {
  return createHash('md5').update(parts.join('/')).digest('hex');
}

export interface CatalogOptions {
  /** public base URL, no trailing slash */
  publicBase: string;
  region: string;
}

function endpoints(service: string, url: string, region: string) {
  return (['public', 'internal', 'admin'] as const).map((iface) => ({
    id: stableId(service, iface),
    interface: iface,
    region,
    region_id: region,
    url,
  }));
}

function catalogView(projectId: string, options: CatalogOptions) {
  return [
    {
      id: stableId('database'),
      type: 'database',
      name: 'trove',
      // Keystone substitutes the project id; troveclient appends /instances etc. to this URL.
      endpoints: endpoints('database', `${options.publicBase}/v1.0/${projectId}`, options.region),
    },
    {
      id: stableId('compute'),
      type: 'compute',
      name: 'nova',
      // Coffer's read-only compute view (src/api/compute): an instance's server is its engine process
      endpoints: endpoints('compute', `${options.publicBase}/v2.1`, options.region),
    },
    {
      id: stableId('image'),
      type: 'image',
      name: 'glance',
      // an empty image list (src/api/image): OpenStack's client needs one to list servers
      endpoints: endpoints('image', `${options.publicBase}/image`, options.region),
    },
    {
      id: stableId('identity'),
      type: 'identity',
      name: 'keystone',
      endpoints: endpoints('identity', `${options.publicBase}/identity/v3`, options.region),
    },
  ];
}

export function tokenView(session: TokenSession, catalog: CatalogOptions | null) {
  const { token, user, project, roles } = session;
  return {
    token: {
      methods: token.methods,
      user: { id: user.id, name: user.name, domain: domainRef, password_expires_at: null },
      audit_ids: [token.auditId],
      expires_at: keystoneTimestamp(token.expiresAt),
      issued_at: keystoneTimestamp(token.issuedAt),
      project: { id: project.id, name: project.name, domain: domainRef },
      is_domain: false,
      roles: roles.map((r) => ({ id: r.id, name: r.name })),
      ...(catalog === null ? {} : { catalog: catalogView(project.id, catalog) }),
    },
  };
}
