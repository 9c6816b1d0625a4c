import type { CofferError } from '../common/index.js';

/** Which constraint a driver error reports, whatever the engine. */
export function constraintViolation(err: unknown): 'unique' | 'foreign-key' | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, errno } = err as { code?: unknown; errno?: unknown };
  // PostgreSQL SQLSTATE, MySQL/MariaDB errno, better-sqlite3 extended result code.
  if (
    code === '23505' ||
    errno === 1062 ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  ) {
    return 'unique';
  }
  if (code === '23503' || errno === 1452 || errno === 1216 || code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
    return 'foreign-key';
  }
  return undefined;
}

/**
 * Runs `write` and turns a unique or foreign-key violation into the caller's error (given the
 * driver's error as its cause); any other error passes through unchanged.
 */
export async function mapConstraintErrors<T>(
  write: () => Promise<T>,
  errors: { unique?: (cause: unknown) => CofferError; foreignKey?: (cause: unknown) => CofferError },
): Promise<T> {
  try {
    return await write();
  } catch (err) {
    const violation = constraintViolation(err);
    const make = violation === 'unique' ? errors.unique : violation === 'foreign-key' ? errors.foreignKey : undefined;
    if (make === undefined) throw err;
    throw make(err);
  }
}
