#!/usr/bin/env node
// Runs the test suites with Node's own test runner (TypeScript through tsx).
// Usage: node scripts/run-tests.mjs [unit|integration|e2e|all] [extra files...]
// Suites run one file at a time: integration tests start real engines and share ports.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

const [kind = 'all', ...extra] = process.argv.slice(2);
const all = find('test');
const isE2e = (f) => f.startsWith(join('test', 'e2e'));
const isIntegration = (f) => f.includes('.int.test.ts');
const files =
  extra.length > 0 ? extra
  : kind === 'unit' ? all.filter((f) => !isE2e(f) && !isIntegration(f))
  : kind === 'integration' ? all.filter((f) => isIntegration(f))
  : kind === 'e2e' ? all.filter(isE2e)
  : all;

const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
