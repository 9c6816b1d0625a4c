import { z } from 'zod';

// The bodies of POST /backups and POST /backup_strategies (reference 2.9, 2.10;
// trove/common/apischema.py backup, backup_strategy).

const nonEmpty = z.string().min(1);

/**
 * Trove refuses a container name a shell could read as more than a name; the same rule keeps a
 * name a valid Swift container, S3 key prefix and directory name everywhere.
 */
export const containerName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be 1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit');

export const createBackupSchema = z.object({
  backup: z.object({
    name: nonEmpty.max(255),
    instance: nonEmpty.optional(),
    description: z.string().max(512).nullable().optional(),
    parent_id: nonEmpty.optional(),
    // Trove's schema takes 0 or 1; troveclient sends a boolean
    incremental: z.union([z.literal(0), z.literal(1), z.boolean()]).optional(),
    swift_container: z.string().optional(),
    // Trove's import of a backup object that already exists (reference 2.9): backup-import.ts
    restore_from: z
      .strictObject({
        remote_location: z.string().min(1).max(2048),
        local_datastore_version_id: nonEmpty.max(64),
        // Trove's backup view's size: GB as a float
        size: z.number().nonnegative().finite(),
      })
      .optional(),
  }),
});
export type CreateBackupBody = z.infer<typeof createBackupSchema>;

export const createBackupStrategySchema = z.object({
  backup_strategy: z.strictObject({
    swift_container: containerName,
    instance_id: nonEmpty.optional(),
  }),
});

/**
 * PUT /instances/{id}/backup_schedule (Coffer's extension): a five-field cron pattern in UTC and
 * at least one retention limit. Unknown keys are refused: a misspelt limit would keep every backup.
 */
export const backupScheduleSchema = z.object({
  backup_schedule: z
    .strictObject({
      pattern: z.string().min(1).max(255),
      incremental: z.union([z.literal(0), z.literal(1), z.boolean()]).optional(),
      retain_count: z.number().int().min(1).max(1000).nullable().optional(),
      retain_days: z.number().int().min(1).max(3650).nullable().optional(),
      name: z.string().min(1).max(64).nullable().optional(),
      verify: z.boolean().optional(),
    })
    .refine((s) => (s.retain_count ?? null) !== null || (s.retain_days ?? null) !== null, {
      message: 'needs retain_count (1 to 1000 backups) or retain_days (1 to 3650 days), or both',
    }),
});
export type BackupScheduleBody = z.infer<typeof backupScheduleSchema>;

/** POST /backups/{id}/action (Coffer's): `verify` is the one action, with no options yet. */
export const backupActionSchema = z.strictObject({ verify: z.strictObject({}) });
