// The SQLSTATE codes the guest turns into Coffer errors (PostgreSQL's errcodes.txt).
export const sqlStates = {
  invalidCatalogName: '3D000',
  duplicateDatabase: '42P04',
  duplicateObject: '42710',
  undefinedObject: '42704',
  invalidParameterValue: '22023',
  featureNotSupported: '0A000',
  objectInUse: '55006',
  /** a restart-only setting whose new value waits for the next start */
  cantChangeRuntimeParam: '55P02',
} as const;

/** The SQLSTATE of an error the server answered, undefined for any other error. */
export function pgErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}
