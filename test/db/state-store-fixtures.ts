import { randomUUID } from 'node:crypto';
import type { NewConfiguration, NewInstance, ProjectRow, TaskRow, TokenRow, UserRow } from '../../src/db/index.js';

// Rows for the state-store suite. Every id and name is fresh, so tests sharing one database
// never see each other's rows.

export const uid = (): string => randomUUID();

/** Instants with milliseconds that a seconds-only or local-time column would get wrong. */
export const at = {
  leapDay: new Date('2024-02-29T23:59:59.987Z'),
  oneMs: new Date('2001-09-09T01:46:40.001Z'),
  past2038: new Date('2038-01-19T03:14:08.999Z'),
  dstSwitch: new Date('2024-03-31T01:30:00.500Z'),
};

export function project(overrides: Partial<ProjectRow> = {}): ProjectRow {
  return {
    id: uid().replaceAll('-', ''),
    name: `project-${uid()}`,
    domainId: 'default',
    description: 'a project',
    enabled: true,
    createdAt: at.leapDay,
    ...overrides,
  };
}

export function user(overrides: Partial<UserRow> = {}): UserRow {
  return {
    id: uid().replaceAll('-', ''),
    name: `user-${uid()}`,
    domainId: 'default',
    passwordHash: 'scrypt$16384$8$1$c2FsdA$aGFzaA',
    defaultProjectId: null,
    email: null,
    description: '',
    enabled: true,
    createdAt: at.oneMs,
    ...overrides,
  };
}

export function token(userId: string, projectId: string, overrides: Partial<TokenRow> = {}): TokenRow {
  return {
    tokenHash: uid().replaceAll('-', '') + uid().replaceAll('-', ''),
    userId,
    projectId,
    methods: ['password'],
    auditId: uid(),
    issuedAt: at.leapDay,
    expiresAt: new Date('2099-01-01T00:00:00.123Z'),
    ...overrides,
  };
}

export function instance(overrides: Partial<NewInstance> = {}): NewInstance {
  return {
    id: uid(),
    name: 'db-1',
    tenantId: `tenant-${uid()}`,
    flavorId: 'small',
    volumeSizeGb: 2,
    datastoreVersionId: uid(),
    taskStatus: 'BUILDING',
    taskDescription: 'The instance is building.',
    taskStartTime: at.leapDay,
    access: null,
    createdAt: at.leapDay,
    updatedAt: at.leapDay,
    ...overrides,
  };
}

export function task(instanceId: string, overrides: Partial<TaskRow> = {}): TaskRow {
  return {
    id: uid(),
    instanceId,
    kind: 'create_instance',
    step: 'start',
    state: 'pending',
    owner: null,
    leaseExpiresAt: null,
    payload: { rootPassword: 'secret', databases: [{ name: 'app' }], volumeSizeGb: 2 },
    attempts: 0,
    createdAt: at.leapDay,
    updatedAt: at.leapDay,
    progress: null,
    ...overrides,
  };
}

export function configuration(overrides: Partial<NewConfiguration> = {}): NewConfiguration {
  return {
    id: uid(),
    tenantId: `tenant-${uid()}`,
    name: 'reporting',
    description: null,
    datastoreVersionId: uid(),
    values: { max_connections: 100 },
    createdAt: at.leapDay,
    updatedAt: at.leapDay,
    ...overrides,
  };
}
