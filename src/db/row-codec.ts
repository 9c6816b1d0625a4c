// Normalises what the drivers hand back: SQLite returns times as ISO text and booleans as 0/1,
// MySQL booleans as 0/1; PostgreSQL and mysql2 (timezone 'Z') return Dates already in UTC.

export function toDate(value: Date | string | number): Date {
  return value instanceof Date ? value : new Date(value);
}

export function toNullableDate(value: Date | string | number | null): Date | null {
  return value === null ? null : toDate(value);
}

export function toBool(value: boolean | number | string): boolean {
  return value === true || value === 1 || value === '1';
}

export function toJson(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

export function fromJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}
