import type { z } from 'zod';
import { CofferError } from '../common/index.js';

// Every request body is checked against a zod schema at the edge; handlers only ever see the
// parsed, typed value. Messages name the field and never quote the value (it may be a password).

function pathOf(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
}

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let value = body;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function describe(issue: z.core.$ZodIssue, body: unknown): string {
  const path = pathOf(issue.path);
  if (issue.path.length > 0 && valueAt(body, issue.path) === undefined) {
    const parent = pathOf(issue.path.slice(0, -1));
    const key = String(issue.path[issue.path.length - 1] ?? '');
    return `${parent === '' ? '' : `${parent} `}'${key}' is a required property`;
  }
  return path === '' ? issue.message : `${path} ${issue.message}`;
}

/** Trove's wording: "Validation error: <path> <message>; …" (400 badRequest). */
export function parseTroveBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body ?? null);
  if (!result.success) {
    const messages = result.error.issues.map((issue) => describe(issue, body));
    throw new CofferError('ValidationError', `Validation error: ${messages.join('; ')}`);
  }
  return result.data;
}

/** Keystone's wording: "Invalid input for field '<path>': <message>" (400). */
export function parseKeystoneBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body ?? null);
  if (!result.success) {
    const issue = result.error.issues[0];
    const message =
      issue === undefined
        ? 'Invalid input.'
        : `Invalid input for field '${pathOf(issue.path)}': ${issue.message}`;
    throw new CofferError('ValidationError', message);
  }
  return result.data;
}
