import { isIP } from 'node:net';
import { z } from 'zod';

// The body of POST /instances (reference 2.2, trove/common/apischema.py instance.create).
// Unknown keys are allowed and ignored, as Trove's schema allows additional properties.

const nonEmpty = z.string().min(1);

export function isCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || prefix === undefined || rest.length > 0 || !/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

export const createInstanceSchema = z.object({
  instance: z.object({
    name: z.string().min(1).max(255).regex(/[0-9a-zA-Z]/, "does not match '^.*[0-9a-zA-Z]+.*$'"),
    // required unless replica_of: a replica takes its source's
    flavorRef: z.union([nonEmpty, z.number().int()]).optional(),
    volume: z
      .object({
        size: z.union([z.number().int().min(1), z.string().regex(/^0*[1-9]+[0-9]*$/, 'is not a positive integer')]).optional(),
        type: z.string().nullable().optional(),
      })
      .optional(),
    datastore: z
      .object({ type: nonEmpty.optional(), version: nonEmpty.optional(), version_number: nonEmpty.optional() })
      .optional(),
    databases: z
      .array(z.object({ name: z.string(), character_set: z.string().optional(), collate: z.string().optional() }))
      .optional(),
    users: z
      .array(
        z.object({
          name: z.string(),
          password: z.string(),
          host: z.string().nullable().optional(),
          databases: z.array(z.object({ name: z.string() })).optional(),
        }),
      )
      .optional(),
    access: z
      .object({
        is_public: z.boolean().optional(),
        allowed_cidrs: z.array(z.string().refine(isCidr, 'is not a valid CIDR')).optional(),
      })
      .optional(),
    // Coffer's extension: refuse plaintext clients from the start
    tls: z.strictObject({ required: z.boolean().optional() }).optional(),
    replica_of: nonEmpty.optional(),
    replica_count: z.number().int().min(1).max(3).optional(),
    // Trove's backupRef; Coffer's point in time adds restore_time (with backupRef or instance_id)
    restorePoint: z
      .object({ backupRef: nonEmpty.optional(), instance_id: nonEmpty.optional(), restore_time: nonEmpty.optional() })
      .refine((p) => p.backupRef !== undefined || p.instance_id !== undefined, 'needs backupRef (or instance_id with restore_time)')
      .optional(),
    configuration: nonEmpty.optional(),
    modules: z.array(z.unknown()).optional(),
    locality: z.enum(['affinity', 'anti-affinity']).optional(),
  }).superRefine((instance, ctx) => {
    if (instance.flavorRef === undefined && instance.replica_of === undefined) {
      ctx.addIssue({ code: 'custom', path: ['flavorRef'], message: 'is a required property' });
    }
  }),
});

export type CreateInstanceBody = z.infer<typeof createInstanceSchema>;
