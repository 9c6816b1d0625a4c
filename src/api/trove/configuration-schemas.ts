import { z } from 'zod';

// The bodies of POST, PUT and PATCH /configurations (reference 2.8, trove/common/apischema.py
// configuration). The values are an object here; whether each one is a setting the datastore
// version accepts, and of its type and range, is checked against its parameters afterwards (422).

const nonEmpty = z.string().min(1);
const values = z.record(z.string(), z.unknown());

export const createConfigurationSchema = z.object({
  configuration: z.object({
    name: nonEmpty.max(255),
    values,
    description: z.string().max(255).nullable().optional(),
    datastore: z
      .object({ type: nonEmpty.optional(), version: nonEmpty.optional(), version_number: nonEmpty.optional() })
      .optional(),
  }),
});
export type CreateConfigurationBody = z.infer<typeof createConfigurationSchema>;

export const updateConfigurationSchema = z.object({
  configuration: z.object({
    values,
    name: nonEmpty.max(255).optional(),
    description: z.string().max(255).nullable().optional(),
  }),
});

export const editConfigurationSchema = z.object({
  configuration: z.object({ values }),
});
