import assert from 'node:assert/strict';
import { z } from 'zod';

// The shapes of Trove's and Keystone's response bodies, field by field, as Trove 18 and
// Keystone write them (Trove reference sections 2 and 8.2, and the api-ref samples). A shape
// names every field a client may read and its type; Coffer may add fields (a superset), never
// drop or retype one.

export const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
export const keystoneId = z.string().regex(/^[0-9a-f]{32}$/);
/** Trove's naive UTC datetimes: no fraction, no zone (reference 1.5). */
export const troveTime = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
/** Keystone's: microseconds and Z. */
export const keystoneTime = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
const int = z.number().int();

/** Trove's self + bookmark links, always https (reference 1.5). */
export const troveLinks = z.tuple([
  z.object({ href: z.string().startsWith('https://'), rel: z.literal('self') }),
  z.object({ href: z.string().startsWith('https://'), rel: z.literal('bookmark') }),
]);
export const nextLinks = z.tuple([z.object({ href: z.string().startsWith('https://'), rel: z.literal('next') })]);

export const troveError = (fault: string, code: number) =>
  z.object({ [fault]: z.object({ code: z.literal(code), message: z.string().min(1) }) });
export const keystoneError = (code: number, title: string) =>
  z.object({ error: z.object({ code: z.literal(code), title: z.literal(title), message: z.string().min(1) }) });

export const versionsDocument = z.object({
  versions: z.array(
    z.object({
      id: z.literal('v1.0'),
      status: z.literal('CURRENT'),
      updated: z.literal('2012-08-01T00:00:00Z'),
      links: z.array(z.object({ rel: z.literal('self'), href: z.string().endsWith('/v1.0/') })).length(1),
    }),
  ),
});

// --- Trove: flavors and datastores (reference 2.6, 2.7)

export const flavor = z.object({
  id: int.nullable(),
  str_id: z.string(),
  name: z.string(),
  ram: int,
  vcpus: int,
  disk: int,
  ephemeral: int,
  links: troveLinks,
});

const versionBase = { id: uuid, name: z.string(), version: z.string(), links: troveLinks };
/** The fields admins see besides (reference 2.7). */
const versionAdmin = { active: z.boolean(), packages: z.union([z.string(), z.array(z.string())]), image: z.string().nullable(), image_tags: z.array(z.string()) };

export const datastoreVersionInList = z.object(versionBase);
export const datastoreVersionInListAdmin = z.object({ ...versionBase, ...versionAdmin });
export const datastoreVersion = z.object({ ...versionBase, datastore: uuid });
export const datastoreVersionAdmin = z.object({ ...versionBase, datastore: uuid, ...versionAdmin });

export const datastore = z.object({
  id: uuid,
  name: z.string(),
  links: troveLinks,
  versions: z.array(datastoreVersionInList),
  default_version: uuid.optional(),
});

// --- Trove: instances (reference 2.2)

/** Coffer's extension: `port`, only where it is not the engine's standard one */
const address = z.object({ address: z.string(), type: z.enum(['private', 'public']), port: int.min(1).max(65535).optional() }).strict();
const summaryFields = {
  id: uuid,
  name: z.string(),
  status: z.string().min(1),
  operating_status: z.string(),
  links: troveLinks,
  flavor: z.object({ id: z.string(), links: troveLinks }),
  datastore: z.object({ type: z.string().nullable(), version: z.string().nullable() }),
  region: z.string(),
  access: z.object({ is_public: z.boolean().optional(), allowed_cidrs: z.array(z.string()).optional() }),
  volume: z.object({ size: int }),
};
const addressFields = { ip: z.array(z.string()).min(1), addresses: z.array(address).min(1) };
/** Coffer's extension (a superset of Trove's view): the instance's TLS, null until its guest reported it. */
export const instanceTls = z.object({
  required: z.boolean(),
  ca_certificate: z.string().startsWith('-----BEGIN CERTIFICATE-----').nullable(),
  expires: troveTime.nullable(),
  port: int.nullable(),
});
/** once the guest reported its certificate */
export const instanceTlsReported = instanceTls.extend({
  ca_certificate: z.string().startsWith('-----BEGIN CERTIFICATE-----'),
  expires: troveTime,
  port: int,
});
/** Coffer's extension: how far a running task's guest operation got, shown only while it runs and once the guest reported */
export const instanceProgress = z.object({ step: z.string().min(1), percent: int.min(0).max(100), updated: troveTime });
/** Coffer's extension: the version of what the instance should be, and the one its guest last applied */
export const instanceGeneration = z.object({ desired: int.min(0), applied: int.min(0) });
const detailFields = {
  ...summaryFields,
  tls: instanceTls,
  generation: instanceGeneration,
  progress: instanceProgress.optional(),
  datastore: z.object({ type: z.string().nullable(), version: z.string().nullable(), version_number: z.string().nullable() }),
  created: troveTime,
  updated: troveTime,
  service_status_updated: troveTime,
};
const adminFields = {
  tenant_id: keystoneId,
  server_id: z.string().nullable(),
  volume_id: z.string().nullable(),
  encrypted_rpc_messaging: z.boolean(),
};

export const instanceSummary = z.object(summaryFields);
export const instanceSummaryWithAddress = z.object({ ...summaryFields, ...addressFields });
export const instanceDetail = z.object(detailFields);
export const instanceDetailWithAddress = z.object({ ...detailFields, ...addressFields });
export const instanceDetailAdmin = z.object({ ...detailFields, ...addressFields, ...adminFields });
export const instanceFault = z.object({ message: z.string(), created: troveTime, details: z.string().nullable() });

// --- Trove: databases, users, root (reference 2.3 to 2.5)

export const databaseList = z.object({ databases: z.array(z.object({ name: z.string() })) });
export const user = z.object({ name: z.string(), host: z.string(), databases: z.array(z.object({ name: z.string() })) });
export const userList = z.object({ users: z.array(user) });
export const rootEnabled = z.object({ rootEnabled: z.boolean() });
export const rootCreated = z.object({ user: z.object({ name: z.string(), password: z.string().min(1) }) });

// --- Trove: limits and quotas (reference 2.13, 2.14)

export const absoluteLimits = z.object({
  verb: z.literal('ABSOLUTE'),
  max_instances: int,
  max_ram: int,
  max_backups: int,
  max_volumes: int,
});
export const rateLimit = z.object({
  verb: z.enum(['GET', 'POST', 'PUT', 'DELETE']),
  uri: z.string(),
  regex: z.string(),
  value: int,
  remaining: int,
  unit: z.literal('MINUTE'),
  nextAvailable: z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
});
export const quotaList = z.object({
  quotas: z.array(z.object({ resource: z.string(), in_use: int, reserved: int, limit: int })),
});

// --- Trove: what a datastore version goes with, its configuration parameters (reference 2.6, 2.7)

export const volumeType = z.object({ id: z.string(), name: z.string(), is_public: z.boolean(), description: z.string().nullable() });
/** `max`/`min` only when truthy, as Trove's view writes them. */
export const configurationParameter = z.object({
  name: z.string(),
  datastore_version_id: uuid,
  restart_required: z.boolean(),
  type: z.enum(['integer', 'string', 'boolean', 'float']),
  max: z.number().optional(),
  min: z.number().optional(),
});

// --- Trove: configuration groups (reference 2.8, 2.2, 2.15)

/** The list item carries `datastore_version_number` too (the OpenStack client reads it). */
export const configurationSummary = z.object({
  id: uuid,
  name: z.string(),
  description: z.string().nullable(),
  created: troveTime,
  updated: troveTime,
  datastore_version_id: uuid,
  datastore_name: z.string(),
  datastore_version_name: z.string(),
  datastore_version_number: z.string(),
});
export const configurationDetail = configurationSummary.extend({
  values: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  instance_count: int,
});
/** what an instance's detail view shows of its group */
export const instanceConfigurationRef = z.object({ id: uuid, name: z.string(), links: troveLinks });
export const configurationInstances = z.object({ instances: z.array(z.object({ id: uuid, name: z.string() })) });
/** the management view: the rule as stored, sizes null when none */
export const mgmtDatastoreVersion = z.object({
  id: uuid,
  name: z.string(),
  version: z.string(),
  datastore_id: uuid,
  datastore_name: z.string(),
  datastore_manager: z.string(),
  image: z.null(),
  image_tags: z.tuple([z.literal('')]),
  packages: z.tuple([z.literal('')]),
  active: z.boolean(),
  default: z.boolean(),
  inactive_reason: z.string().optional(),
});

export const mgmtConfigurationParameter = z.object({
  name: z.string(),
  datastore_version_id: uuid,
  restart_required: z.boolean(),
  type: z.enum(['integer', 'string', 'boolean', 'float']),
  max_size: z.number().nullable(),
  min_size: z.number().nullable(),
});

// --- Trove: management (reference 2.15)

const mgmtServer = z.object({ id: z.string(), name: z.string(), status: z.string(), tenant_id: keystoneId, host: z.string() });
const mgmtFields = {
  ...detailFields,
  tenant_id: keystoneId,
  server: mgmtServer.nullable(),
  service_status: z.string().nullable(),
  deleted: z.boolean(),
  deleted_at: troveTime.nullable(),
  task_description: z.string(),
};
export const mgmtInstance = z.object(mgmtFields);
export const mgmtInstanceDetail = z.object({
  ...mgmtFields,
  server: mgmtServer.extend({ addresses: z.record(z.string(), z.array(z.object({ addr: z.string(), version: int }))) }).nullable(),
  volume: z.object({
    attachments: z.array(z.unknown()),
    availability_zone: z.string().nullable(),
    created_at: z.string().nullable(),
    id: z.string().nullable(),
    size: int,
    status: z.string(),
    used: z.number().nullable().optional(),
    total: z.number().nullable().optional(),
  }),
  guest_status: z.object({ state_description: z.string() }),
});
export const rootHistory = z.object({
  root_history: z.object({ id: uuid, enabled: z.string(), user: z.string() }),
});

// --- Keystone v3 (reference 8.2, Keystone's own views)

const selfLink = z.object({ self: z.string().startsWith('http') });
export const keystoneListLinks = z.object({ self: z.string(), previous: z.null(), next: z.null() });
export const keystoneVersion = z.object({
  id: z.string().startsWith('v3'),
  status: z.literal('stable'),
  updated: z.string(),
  links: z.array(z.object({ rel: z.literal('self'), href: z.string().endsWith('/v3/') })),
  'media-types': z.array(z.object({ base: z.literal('application/json'), type: z.string() })),
});
const domainRef = z.object({ id: z.string(), name: z.string() });
const endpoint = z.object({
  id: z.string(),
  interface: z.enum(['public', 'internal', 'admin']),
  region: z.string(),
  region_id: z.string(),
  url: z.string().startsWith('http'),
});
export const token = z.object({
  token: z.object({
    methods: z.array(z.string()).min(1),
    expires_at: keystoneTime,
    issued_at: keystoneTime,
    audit_ids: z.array(z.string()).min(1),
    is_domain: z.literal(false),
    user: z.object({ id: keystoneId, name: z.string(), domain: domainRef, password_expires_at: z.null() }),
    project: z.object({ id: keystoneId, name: z.string(), domain: domainRef }),
    roles: z.array(z.object({ id: z.string(), name: z.string() })).min(1),
    catalog: z
      .array(z.object({ id: z.string(), type: z.string(), name: z.string(), endpoints: z.array(endpoint).min(1) }))
      .optional(),
  }),
});
export const keystoneUser = z.object({
  id: keystoneId,
  name: z.string(),
  domain_id: z.string(),
  enabled: z.boolean(),
  password_expires_at: z.null(),
  options: z.object({}),
  links: selfLink,
  default_project_id: keystoneId.optional(),
});
export const keystoneProject = z.object({
  id: keystoneId,
  name: z.string(),
  domain_id: z.string(),
  description: z.string(),
  enabled: z.boolean(),
  parent_id: z.string(),
  is_domain: z.literal(false),
  tags: z.array(z.string()),
  options: z.object({}),
  links: selfLink,
});
export const keystoneRole = z.object({
  id: z.string(),
  name: z.string(),
  domain_id: z.null(),
  options: z.object({}),
  links: selfLink,
});
export const keystoneDomain = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  enabled: z.boolean(),
  tags: z.array(z.string()),
  options: z.object({}),
  links: selfLink,
});
export const keystoneRoleAssignment = z.object({
  role: z.object({ id: z.string() }),
  user: z.object({ id: keystoneId }),
  scope: z.object({ project: z.object({ id: keystoneId }) }),
  links: z.object({ assignment: z.string().startsWith('http') }),
});

/** Fails with every field that is missing or of the wrong type. */
export function assertShape(what: string, shape: z.ZodType, body: unknown): void {
  const parsed = shape.safeParse(body);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(body)'}: ${i.message}`).join('\n');
    assert.fail(`${what} does not have Trove's shape:\n${problems}\nbody: ${JSON.stringify(body)}`);
  }
}

/** Keys that would carry a secret, wherever they are; `password_expires_at` is Keystone's date. */
const secretKey = /^(?!password_expires_at$).*(pass|secret|hash|salt|private_key)/i;

/**
 * Nothing secret in a body: none of the `secrets` appears anywhere in it, and no key looks like
 * one except at the paths in `allowed` (e.g. `user.password` in a root-enable answer).
 */
export function assertNoSecrets(what: string, body: unknown, secrets: readonly string[], allowed: readonly string[] = []): void {
  const text = JSON.stringify(body) ?? '';
  for (const secret of secrets) assert.ok(!text.includes(secret), `${what} contains a secret`);
  const walk = (value: unknown, path: string) => {
    if (Array.isArray(value)) value.forEach((v) => walk(v, path));
    else if (value !== null && typeof value === 'object') {
      for (const [key, v] of Object.entries(value)) {
        const at = path === '' ? key : `${path}.${key}`;
        assert.ok(!secretKey.test(key) || allowed.includes(at), `${what} has a secret-looking field ${at}`);
        walk(v, at);
      }
    }
  };
  walk(body, '');
}

// --- Trove: backups and backup strategies (reference 2.9, 2.10)

export const backup = z.object({
  id: uuid,
  name: z.string(),
  description: z.string().nullable(),
  locationRef: z.string().nullable(),
  instance_id: uuid,
  created: troveTime,
  updated: troveTime,
  size: z.number().nullable(),
  status: z.enum(['NEW', 'BUILDING', 'SAVING', 'COMPLETED', 'FAILED', 'DELETE_FAILED', 'RESTORED']),
  parent_id: uuid.nullable(),
  project_id: keystoneId,
  datastore: z.object({ type: z.string(), version: z.string(), version_id: uuid }),
  // Coffer's: the latest verification, null when the backup was never verified
  verification: z
    .object({
      status: z.enum(['RUNNING', 'PASSED', 'FAILED']),
      started: troveTime,
      finished: troveTime.nullable(),
      message: z.string().nullable(),
      checks: z.record(z.string(), int),
    })
    .nullable(),
});
/** Coffer's extension: one of an instance's events. */
export const instanceEvent = z.object({
  id: z.string().regex(/^[0-9a-f]{12}-[0-9a-f]{6}-[0-9a-f]{16}$/),
  type: z.enum(['status', 'task.started', 'task.done', 'task.failed']),
  name: z.string(),
  message: z.string().nullable(),
  created: troveTime,
});
/** Coffer's extension: a project's webhook, never with its secret but when it is created. */
export const webhook = z.object({
  id: uuid,
  url: z.string().url(),
  events: z.array(z.string().regex(/^org\.coffer\.instance\./)).nullable(),
  created: troveTime,
});
export const createdWebhook = webhook.extend({ secret: z.string().min(16) });
/** Coffer's extension: one entry of a webhook's delivery log. */
export const webhookDelivery = z.object({
  id: uuid,
  event_id: z.string().regex(/^[0-9a-f]{12}-[0-9a-f]{6}-[0-9a-f]{16}$/),
  type: z.string().regex(/^org\.coffer\.instance\./),
  instance_id: uuid,
  state: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int().min(0),
  last_status_code: z.number().int().nullable(),
  last_error: z.string().nullable(),
  created: troveTime,
  updated: troveTime,
  delivered: troveTime.nullable(),
  next_attempt: troveTime.nullable(),
});
/** Coffer's extension: an instance's backup schedule. */
export const backupSchedule = z.object({
  id: uuid,
  instance_id: uuid,
  project_id: keystoneId,
  name: z.string().nullable(),
  pattern: z.string(),
  incremental: z.boolean(),
  retain_count: int.nullable(),
  retain_days: int.nullable(),
  verify: z.boolean(),
  last_verified_backup_id: uuid.nullable(),
  next_run: troveTime,
  last_run: troveTime.nullable(),
  last_backup_id: uuid.nullable(),
  last_error: z.string().nullable(),
  created: troveTime,
  updated: troveTime,
});
export const backupStrategy = z.object({ project_id: keystoneId, instance_id: z.string(), backend: z.literal('swift'), swift_container: z.string() });

// Nova's compute view (src/api/compute) and the empty image service.
const novaTime = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
export const novaLinks = z.tuple([
  z.object({ rel: z.literal('self'), href: z.string().regex(/\/v2\.1\/(?:[0-9a-f]{32}\/)?(servers|flavors)\/[^/]+$/) }),
  z.object({ rel: z.literal('bookmark'), href: z.string().regex(/\/(servers|flavors)\/[^/]+$/) }),
]);
export const novaError = (fault: string, code: number) => z.object({ [fault]: z.object({ code: z.literal(code), message: z.string().min(1) }) }).strict();
export const novaVersion = z.object({
  version: z.object({
    id: z.literal('v2.1'),
    status: z.literal('CURRENT'),
    version: z.string().regex(/^2\.\d+$/),
    min_version: z.literal('2.1'),
    updated: novaTime,
    links: z.array(z.object({ rel: z.string(), href: z.string() })).min(1),
    'media-types': z.array(z.object({ base: z.string(), type: z.string() })),
  }),
});
export const serverSummary = z.object({ id: uuid, name: z.string(), links: novaLinks }).strict();
const embeddedFlavor = z.object({ vcpus: int, ram: int, disk: int, ephemeral: int, swap: int, original_name: z.string(), extra_specs: z.record(z.string(), z.string()) });
const serverFields = {
  id: uuid,
  name: z.string(),
  status: z.enum(['ACTIVE', 'BUILD', 'SHUTOFF', 'ERROR', 'REBOOT', 'RESIZE', 'PAUSED']),
  tenant_id: keystoneId,
  user_id: z.null(),
  metadata: z.object({}).strict(),
  hostId: z.string(),
  image: z.literal(''),
  flavor: z.union([z.object({ id: z.string(), links: z.tuple([z.object({ rel: z.literal('bookmark'), href: z.string() })]) }).strict(), embeddedFlavor]),
  created: novaTime,
  updated: novaTime,
  addresses: z.record(z.string(), z.array(z.object({ version: z.union([z.literal(4), z.literal(6)]), addr: z.string(), 'OS-EXT-IPS:type': z.literal('fixed') }))),
  accessIPv4: z.string(),
  accessIPv6: z.string(),
  links: novaLinks,
  'OS-DCF:diskConfig': z.literal('MANUAL'),
  'OS-EXT-AZ:availability_zone': z.string(),
  config_drive: z.string(),
  key_name: z.null(),
  'OS-SRV-USG:launched_at': z.string().nullable(),
  'OS-SRV-USG:terminated_at': z.null(),
  'OS-EXT-STS:task_state': z.string().nullable(),
  'OS-EXT-STS:vm_state': z.string(),
  'OS-EXT-STS:power_state': int,
  'os-extended-volumes:volumes_attached': z.array(z.unknown()),
};
export const server = z.object(serverFields);
export const serverAdmin = z.object({
  ...serverFields,
  'OS-EXT-SRV-ATTR:host': z.string().nullable(),
  'OS-EXT-SRV-ATTR:hypervisor_hostname': z.string().nullable(),
  'OS-EXT-SRV-ATTR:instance_name': z.string(),
  host_status: z.enum(['UP', 'UNKNOWN', '']),
  locked: z.boolean(),
});
export const novaFlavorSummary = z.object({ id: z.string(), name: z.string(), links: novaLinks }).strict();
export const novaFlavor = z.object({
  id: z.string(),
  name: z.string(),
  ram: int,
  disk: int,
  vcpus: int,
  'OS-FLV-EXT-DATA:ephemeral': int,
  'OS-FLV-DISABLED:disabled': z.boolean(),
  swap: z.union([z.literal(''), int]),
  rxtx_factor: z.number(),
  'os-flavor-access:is_public': z.boolean(),
  links: novaLinks,
});
export const glanceVersions = z.object({ versions: z.array(z.object({ id: z.string(), status: z.string(), links: z.array(z.object({ rel: z.string(), href: z.string() })) })).min(1) });
