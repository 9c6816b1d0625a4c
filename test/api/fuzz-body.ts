import { deeplyNested, hostileNames, hostileNumbers, longStrings, randomNames } from '../support/hostile-corpus.js';

// Request bodies described just well enough to fuzz them: each field's JSON types, a valid sample,
// and what must be refused. From a description come the sample body and its mutations (wrong
// type at every field, a field missing, unknown and __proto__ keys, hostile strings and numbers),
// each marked `mustReject` when it breaks the description. The description is conservative: what
// it calls invalid the API must refuse; what it calls valid the API may still refuse.

export type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'null' | 'array' | 'object';

interface Common {
  optional?: boolean;
}

export interface LeafSpec extends Common {
  kind: 'leaf';
  types: JsonType[];
  sample: unknown;
  /** true for values the API must refuse though their JSON type is accepted */
  invalid?: (value: unknown) => boolean;
  /** a database, user or host name, or a password: handed to an engine when accepted */
  engineString?: boolean;
  /** only a few hostile strings: accepted values cost a password hash each */
  fewStrings?: boolean;
}

export interface ObjectSpec extends Common {
  kind: 'object';
  fields: Record<string, Spec>;
  /** unknown keys are refused */
  strict?: boolean;
  nullable?: boolean;
}

export interface ArraySpec extends Common {
  kind: 'array';
  item: Spec;
  nonEmpty?: boolean;
}

export type Spec = LeafSpec | ObjectSpec | ArraySpec;

export const leaf = (types: JsonType[], sample: unknown, options: Omit<LeafSpec, 'kind' | 'types' | 'sample'> = {}): LeafSpec => ({
  kind: 'leaf',
  types,
  sample,
  ...options,
});
export const str = (sample: string, options: Omit<LeafSpec, 'kind' | 'types' | 'sample'> = {}) => leaf(['string'], sample, options);
export const obj = (fields: Record<string, Spec>, options: Omit<ObjectSpec, 'kind' | 'fields'> = {}): ObjectSpec => ({
  kind: 'object',
  fields,
  ...options,
});
export const arr = (item: Spec, options: Omit<ArraySpec, 'kind' | 'item'> = {}): ArraySpec => ({ kind: 'array', item, ...options });

/** A lone surrogate cannot be written in UTF-8: an engine would get U+FFFD, another name. */
export function isWellFormed(value: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value);
}

/** What no engine can be handed faithfully: NUL and other control characters, lone surrogates. */
export function unfitForEngine(value: string): boolean {
  return /[\u0000-\u001f\u007f]/.test(value) || !isWellFormed(value);
}

export function jsonType(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value as JsonType;
}

function typeAccepted(types: JsonType[], value: unknown): boolean {
  const t = jsonType(value);
  return types.includes(t) || (t === 'integer' && types.includes('number'));
}

export function sampleOf(spec: Spec): unknown {
  switch (spec.kind) {
    case 'leaf':
      return spec.sample;
    case 'object':
      return Object.fromEntries(Object.entries(spec.fields).map(([k, f]) => [k, sampleOf(f)]));
    case 'array':
      return [sampleOf(spec.item)];
  }
}

/** True when `value` certainly breaks `spec`. */
export function violates(spec: Spec, value: unknown): boolean {
  switch (spec.kind) {
    case 'leaf':
      if (!typeAccepted(spec.types, value)) return true;
      if (spec.engineString === true && typeof value === 'string' && unfitForEngine(value)) return true;
      return spec.invalid?.(value) ?? false;
    case 'object': {
      if (value === null) return spec.nullable !== true;
      if (jsonType(value) !== 'object') return true;
      const record = value as Record<string, unknown>;
      for (const [key, field] of Object.entries(spec.fields)) {
        const has = Object.prototype.hasOwnProperty.call(record, key);
        if (!has) {
          if (field.optional !== true) return true;
        } else if (violates(field, record[key])) {
          return true;
        }
      }
      return spec.strict === true && Object.keys(record).some((k) => !(k in spec.fields));
    }
    case 'array': {
      if (!Array.isArray(value)) return true;
      if (spec.nonEmpty === true && value.length === 0) return true;
      return value.some((item) => violates(spec.item, item));
    }
  }
}

export interface BodyCase {
  what: string;
  body: unknown;
}

/** Wrong JSON types, edge values and shapes put in place of any field. */
const replacements = (sample: unknown): [string, unknown][] => [
  ['null', null],
  ['true', true],
  ['0', 0],
  ['-1', -1],
  ['1.5', 1.5],
  ['1e308', 1e308],
  ['2**53+1', 2 ** 53 + 1],
  ['empty string', ''],
  ['a string', 'x'],
  ['[]', []],
  ['{}', {}],
  ['[sample]', [sample]],
  ['nested 500 deep', deeplyNested(500)],
];

/** `count` items of `items`, chosen by `random`. */
function pick<T>(random: () => number, items: readonly T[], count: number): T[] {
  return Array.from({ length: count }, () => items[Math.floor(random() * items.length)]!);
}

/** `body` with the value at `path` replaced (or removed when `value` is `remove`). */
const remove = Symbol('remove');
function setAt(body: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (Array.isArray(body)) {
    const copy = [...body];
    copy[head as number] = setAt(copy[head as number], rest, value);
    return copy;
  }
  const record = body as Record<string, unknown>;
  if (rest.length === 0 && value === remove) {
    const { [head as string]: _gone, ...others } = record;
    return others;
  }
  return { ...record, [head as string]: setAt(record[head as string], rest, value) };
}

/** `{"__proto__": ...}` as an own key, as JSON.parse makes it from a request. */
function withProtoKey(record: Record<string, unknown>): Record<string, unknown> {
  const text = JSON.stringify(record);
  const proto = '"__proto__":{"polluted":true,"isAdmin":true}';
  return JSON.parse(text === '{}' ? `{${proto}}` : `{${proto},${text.slice(1)}`) as Record<string, unknown>;
}

function label(path: (string | number)[]): string {
  return path.length === 0 ? '(body)' : path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').slice(1);
}

/**
 * Every mutation of `spec`'s sample; `random` adds generated strings to each string field.
 * `light`: a few wrong types and strings per field, for endpoints that hash a password per request.
 */
export function bodyCases(spec: Spec, random: () => number, light = false): BodyCase[] {
  const root = sampleOf(spec);
  const cases: BodyCase[] = [];
  const walk = (node: Spec, path: (string | number)[], parentIsObject: boolean) => {
    const sample = sampleOf(node);
    const wrong = light ? replacements(sample).filter(([what]) => ['null', '0', '[]', '{}'].includes(what)) : replacements(sample);
    for (const [what, value] of wrong) cases.push({ what: `${label(path)} = ${what}`, body: setAt(root, path, value) });
    if (parentIsObject && path.length > 0) cases.push({ what: `${label(path)} missing`, body: setAt(root, path, remove) });
    if (node.kind === 'leaf') {
      if (node.types.includes('string')) {
        // the whole corpus where a string reaches an engine; elsewhere a seeded sample of it
        const strings =
          node.fewStrings === true || light
            ? ["a'b", 'a\u0000b', 'a\ud800b']
            : node.engineString === true
              ? [...hostileNames, ...longStrings, ...randomNames(random, 6)]
              : [...pick(random, hostileNames, 16), ...longStrings, ...randomNames(random, 3)];
        strings.forEach((s, i) => cases.push({ what: `${label(path)} = hostile string #${i} ${JSON.stringify(s.slice(0, 40))}`, body: setAt(root, path, s) }));
      }
      if (!light && (node.types.includes('integer') || node.types.includes('number'))) {
        for (const n of hostileNumbers) cases.push({ what: `${label(path)} = ${n}`, body: setAt(root, path, n) });
      }
    } else if (node.kind === 'object') {
      const record = sample as Record<string, unknown>;
      cases.push({ what: `${label(path)} + unknown key`, body: setAt(root, path, { ...record, unknown_key: 'x' }) });
      cases.push({ what: `${label(path)} + __proto__ key`, body: setAt(root, path, withProtoKey(record)) });
      for (const [key, field] of Object.entries(node.fields)) walk(field, [...path, key], true);
    } else {
      cases.push({ what: `${label(path)} = two items`, body: setAt(root, path, [sampleOf(node.item), sampleOf(node.item)]) });
      walk(node.item, [...path, 0], false);
    }
  };
  walk(spec, [], false);
  return cases;
}
