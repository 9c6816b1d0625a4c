import { z } from 'zod';
import { isCidr } from './instance-create-schema.js';

// The bodies of PUT /instances/{id} (update) and PATCH /instances/{id} (edit), reference 2.2:
// no keys beyond the listed ones, at any level (trove/common/apischema.py instance.update/edit).

const configurationId = z
  .string()
  .regex(/^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/, 'is not a valid UUID')
  .nullable();

const common = {
  name: z.string().min(1).max(255),
  replica_of: z.unknown(),
  configuration: configurationId,
  datastore_version: z.string().min(1),
};

export const updateInstanceSchema = z.strictObject({
  instance: z
    .strictObject({
      ...common,
      access: z.strictObject({
        is_public: z.boolean().optional(),
        allowed_cidrs: z.array(z.string().refine(isCidr, 'is not a valid CIDR')).optional(),
      }),
      // Coffer's extension: refuse (or allow again) plaintext clients
      tls: z.strictObject({ required: z.boolean() }),
    })
    .partial(),
});

export const editInstanceSchema = z.strictObject({
  instance: z.strictObject({ ...common, slave_of: z.unknown() }).partial(),
});

export type UpdateInstanceInput = z.infer<typeof updateInstanceSchema>['instance'] &
  Partial<Pick<z.infer<typeof editInstanceSchema>['instance'], 'slave_of'>>;
