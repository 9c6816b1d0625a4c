import { z } from 'zod';

// The bodies of the database, user and root APIs (reference 2.3-2.5, trove/common/apischema.py):
// their shape only. Names, hosts and passwords are checked against the engine's rules
// (database-user-rules.ts) once the instance is known. Unknown keys are ignored, as in Trove.

const name = z.string();
const databaseRef = z.object({ name });

export const createDatabasesSchema = z.object({
  databases: z
    .array(z.object({ name, character_set: z.string().optional(), collate: z.string().optional() }))
    .min(1),
});

export const createUsersSchema = z.object({
  users: z
    .array(
      z.object({
        name,
        password: z.string(),
        host: z.string().nullable().optional(),
        databases: z.array(databaseRef).optional(),
      }),
    )
    .min(1),
});

export const updateUserSchema = z.object({
  user: z
    .object({ name: name.optional(), password: z.string().optional(), host: z.string().optional() })
    .refine((u) => u.name !== undefined || u.password !== undefined || u.host !== undefined, {
      message: 'does not have enough properties',
    }),
});

export const changePasswordsSchema = z.object({
  users: z.array(z.object({ name, password: z.string(), host: z.string().nullable().optional() })).min(1),
});

export const grantAccessSchema = z.object({ databases: z.array(databaseRef).min(1) });

/** POST /root takes no body, or one with the password to give root. */
export const enableRootSchema = z.object({ password: z.string().optional() }).nullable();
