// Finds the fields of a message that its schema does not know. Zod strips unknown keys from
// objects by default, so a sender speaking a newer contract would see its new fields silently
// dropped; comparing what arrived with what the schema kept names them instead. Done at the
// receiving edge rather than by declaring every contract object strict, so one rule holds for
// every contract, including the schemas contracts share with the state database.

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Paths (`users[0].colour`) present in `raw` but absent from what the schema made of it. */
export function unknownFields(raw: unknown, parsed: unknown, path = ''): string[] {
  if (Array.isArray(raw) && Array.isArray(parsed)) {
    return raw.flatMap((item, i) => unknownFields(item, parsed[i], `${path}[${i}]`));
  }
  if (!isRecord(raw) || !isRecord(parsed)) return [];
  const found: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const at = path === '' ? key : `${path}.${key}`;
    if (!Object.hasOwn(parsed, key)) found.push(at);
    else found.push(...unknownFields(value, parsed[key], at));
  }
  return found;
}
