import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { newKeystoneId, newUuid } from '../../src/common/ids.js';
import { adminSession, startHarness, type Harness, type Session } from './api-harness.js';

// docs/trove-api.md says, endpoint by endpoint, what Coffer serves. This keeps it true: every
// row marked "not yet" must answer Trove's missing-route 404, and every other row must reach a
// route (any answer but that 404). A change that lands or drops a route fails here until the
// page says so.

const page = readFileSync(fileURLToPath(new URL('../../docs/trove-api.md', import.meta.url)), 'utf8');
const missingRoute = 'The resource could not be found.';

interface Row {
  methods: string[];
  paths: string[];
  state: string;
  line: string;
}

/** The endpoint tables: `| METHOD[, METHOD] | \`path\`[, \`path\`] … | state | notes |`. */
function rows(): Row[] {
  const out: Row[] = [];
  for (const line of page.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 5 || !/^[A-Z, ]+$/.test(cells[1] ?? '')) continue;
    const paths = [...(cells[2] ?? '').matchAll(/`(\/[^`\s]*)`/g)].map((m) => m[1]!);
    if (paths.length === 0) continue;
    out.push({ methods: cells[1]!.split(',').map((m) => m.trim()), paths, state: cells[3]!, line });
  }
  return out;
}

let h: Harness;
let admin: Session;

before(async () => {
  h = await startHarness();
  admin = await adminSession(h.app);
});
after(() => h.close());

function concrete(path: string): string {
  const filled = path
    .replace('{project_id}', admin.projectId)
    .replace(/\{(p|u|r)\}/g, () => newKeystoneId())
    .replace('{ds}', 'postgresql')
    .replace('{version}', '15')
    .replace(/\{(name\[@host\]|name|db)\}/g, 'nobody')
    .replace(/\{[a-z_]+\}/g, () => newUuid());
  // the Identity, Compute and Image sections give their paths in full
  if (filled === '/' || /^\/(identity|v2\.1|image)(\/|$)/.test(filled)) return filled;
  return `/v1.0/${admin.projectId}${filled}`;
}

test('the page lists the endpoints of every section', () => {
  const all = rows();
  assert.ok(all.length >= 80, `only ${all.length} endpoint rows were read`);
  for (const state of ['supported', 'superset', 'not yet']) {
    assert.ok(all.some((r) => r.state === state), `no row is "${state}"`);
  }
  for (const r of all) assert.match(r.state, /^(supported|superset|not yet)$/, r.line);
});

test('every "not yet" endpoint answers the missing-route 404, every other one reaches a route', async () => {
  const wrong: string[] = [];
  for (const r of rows()) {
    for (const method of r.methods) {
      // HEAD answers without a body; GET on the same path says the same.
      if (method === 'HEAD') continue;
      for (const path of r.paths) {
        const url = concrete(path);
        const res = await h.app.inject({
          method: method as 'GET',
          url,
          headers: { 'x-auth-token': admin.token },
          ...(['POST', 'PUT', 'PATCH'].includes(method) ? { payload: {} } : {}),
        });
        const isMissing = res.statusCode === 404 && res.body.includes(missingRoute);
        if ((r.state === 'not yet') !== isMissing) wrong.push(`${method} ${path} (${r.state}): ${res.statusCode} ${res.body.slice(0, 160)}`);
      }
    }
  }
  assert.deepEqual(wrong, [], 'docs/trove-api.md disagrees with the routes');
});
