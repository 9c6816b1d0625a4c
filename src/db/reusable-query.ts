import type { Compilable, CompiledQuery } from 'kysely';
import type { RepositoryContext } from './repository-context.js';

// Building a Kysely query and compiling it to SQL cost a sixth of a list page's CPU (issue 14),
// the same work with the same outcome on every request. A hot read is built here once per shape
// with stand-in values for its parameters; each call then runs the kept SQL text with its own
// values put where the stand-ins were.

/** The parameter values of one call: a value, a list (an IN list), or undefined (absent). */
export type QueryValue = string | number | Date | null | undefined | readonly (string | number)[];

/** The stand-ins handed to `build`, in the places of the call's values. */
export type Stand<V extends readonly QueryValue[]> = { [K in keyof V]: V[K] };

interface Kept {
  sql: string;
  query: CompiledQuery['query'];
  /** for each parameter of the SQL: the value's place ([value, item of a list]) or a constant */
  slots: readonly ({ value: number; item: number } | { constant: unknown })[];
}

/** Shapes kept, over all queries; an IN list's length makes a shape of its own. */
const shapesKept = 1000;
const kept = new Map<string, Kept>();

const marker = '\u0000coffer-parameter:';

/**
 * Runs the query `build` makes from `values`, built and compiled once per dialect, `name` and
 * shape (which values are undefined or null, each list's length). `build` must use the values
 * only as the query's parameters and may test them only for undefined and null: any other
 * choice it makes must go into `name`, and it must take no other per-call value from outside.
 */
export async function runReusable<R, V extends readonly QueryValue[]>(
  ctx: RepositoryContext,
  name: string,
  values: V,
  build: (stand: Stand<V>) => Compilable<R>,
): Promise<R[]> {
  const key = `${ctx.dialect.name}|${name}|${values.map(shapeOf).join(',')}`;
  let entry = kept.get(key);
  if (entry === undefined) {
    entry = compile(values, build);
    kept.set(key, entry);
    if (kept.size > shapesKept) kept.delete(kept.keys().next().value!);
  }
  const parameters = entry.slots.map((slot) => {
    if ('constant' in slot) return slot.constant;
    const value = values[slot.value];
    return Array.isArray(value) ? value[slot.item] : value;
  });
  const result = await ctx.db.executeQuery<R>({ sql: entry.sql, query: entry.query, parameters, queryId: { queryId: key } });
  return result.rows;
}

function shapeOf(value: QueryValue): string {
  if (value === undefined) return 'u';
  if (value === null) return 'n';
  return Array.isArray(value) ? `l${value.length}` : 'v';
}

function compile<R, V extends readonly QueryValue[]>(values: V, build: (stand: Stand<V>) => Compilable<R>): Kept {
  const stand = values.map((value, n) => {
    if (value === undefined || value === null) return value;
    if (Array.isArray(value)) return value.map((_, item) => `${marker}${n}:${item}`);
    return `${marker}${n}:-1`;
  }) as unknown as Stand<V>;
  const compiled = build(stand).compile();
  const used = new Set<string>();
  const slots = compiled.parameters.map((parameter) => {
    if (typeof parameter === 'string' && parameter.startsWith(marker)) {
      used.add(parameter);
      const [value, item] = parameter.slice(marker.length).split(':').map(Number);
      return { value: value!, item: item! };
    }
    if (typeof parameter === 'string' && parameter.includes(marker)) throw new Error('a reusable query changed a stand-in value');
    return { constant: parameter };
  });
  // a value that did not become a parameter was read as something else: the SQL would not follow it
  const expected = values.reduce<number>((n, value) => n + (value === undefined || value === null ? 0 : Array.isArray(value) ? value.length : 1), 0);
  if (used.size !== expected) throw new Error(`a reusable query used ${used.size} of its ${expected} parameter values`);
  return { sql: compiled.sql, query: compiled.query, slots };
}
