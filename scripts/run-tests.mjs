#!/usr/bin/env node
// Runs the test suites with Node's own test runner (TypeScript through tsx), several files at once.
// Usage: node scripts/run-tests.mjs [unit|integration|e2e|all] [--jobs=N] [files...]
//
// Each test file runs in a process of its own, in one of three lanes:
//
//   parallel  up to N files at a time (N = --jobs, default 3; N-1 while the serial lane has
//             work). The default for unit tests (`*.test.ts` outside test/e2e/). For files
//             whose shared things are all their own or safe to share: random names (scratch
//             databases, vhosts, topics, OS users the agent makes), port 0 or a free port, a
//             loopback range nobody else uses (randomPool, randomAddress and randomNet in
//             test/guest/engine-fixture.ts, or a fixed range no other file uses), their own
//             temp directories, and checks of processes under their own directories only.
//             Agents and `coffer serve` as root may run here: they add and remove OS users and
//             their elements of the `inet coffer` nftables table, which is safe side by side.
//   serial    one file at a time, beside the parallel lane. The default for integration tests
//             (`*.int.test.ts`) and everything under test/e2e/, until a file says otherwise:
//             two of them may need the same fixed address or port, or the same fixed name.
//   alone     after all the rest, one at a time, with nothing beside: files that look at the
//             whole machine (processes or nftables elements by uid: the next useradd anywhere
//             reuses a removed user's uid) or that measure time under load.
//
// A file names its lane on a line of its own, `// test-lane: parallel|serial|alone (why)`, best
// as its first line. Before marking a new integration test parallel, check what it shares with
// the others (ports, addresses, names, directories, users, processes it counts); when in doubt
// leave the default: a serial file costs minutes, a wrongly parallel one costs flaky runs.
//
// Long files start first, so that none starts late and runs on alone at the end: a file that
// takes minutes says so with a line `// test-long (why)`. After those, e2e files
// start before integration files, integration files before unit files, and within each, larger
// files before smaller (a rough guess at which runs longer).
// Each file's output is printed whole when it ends, under a line that names it and its time; a
// summary at the end adds up the counts and lists the slowest files and every failing one.
// --jobs=1 runs one file at a time, in order, as the suite ran before there were lanes.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const lanes = ['parallel', 'serial', 'alone'];
const marker = /^\/\/ test-lane: ([^\s(]+)/m;
const longMarker = /^\/\/ test-long\b/m;

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

const isE2e = (f) => f.startsWith(join('test', 'e2e'));
const isIntegration = (f) => f.includes('.int.test.ts');

function laneOf(file) {
  const found = marker.exec(readFileSync(file, 'utf8'));
  if (found === null) return isE2e(file) || isIntegration(file) ? 'serial' : 'parallel';
  if (!lanes.includes(found[1])) {
    throw new Error(`${file}: unknown test lane "${found[1]}" (one of ${lanes.join(', ')})`);
  }
  return found[1];
}

const args = process.argv.slice(2);
const jobsArg = args.find((a) => a.startsWith('--jobs='));
const jobs = Number(jobsArg?.slice('--jobs='.length) ?? 3);
if (!Number.isInteger(jobs) || jobs < 1) {
  console.error(`--jobs wants a whole number of at least 1, not "${jobsArg}"`);
  process.exit(2);
}
const [kind = 'all', ...extra] = args.filter((a) => a !== jobsArg);
const kinds = ['unit', 'integration', 'e2e', 'all'];
const named = kinds.includes(kind) ? extra : [kind, ...extra];
const all = find('test');
const files =
  named.length > 0 ? named
  : kind === 'unit' ? all.filter((f) => !isE2e(f) && !isIntegration(f))
  : kind === 'integration' ? all.filter((f) => isIntegration(f))
  : kind === 'e2e' ? all.filter(isE2e)
  : all;

const missing = files.filter((f) => !existsSync(f));
if (missing.length > 0) {
  console.error(`no such test file: ${missing.join(', ')}`);
  process.exit(2);
}

const rank = (f) => (longMarker.test(readFileSync(f, 'utf8')) ? 0 : isE2e(f) ? 1 : isIntegration(f) ? 2 : 3);
const queue = files
  .map((file, index) => ({ file, lane: laneOf(file), index, rank: rank(file), size: statSync(file).size }))
  .sort((a, b) => (jobs === 1 ? a.index - b.index : a.rank - b.rank || b.size - a.size));

const running = new Map(); // file -> { child, lane }
const results = [];
const started = performance.now();
let stopping = false;

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** minutes:seconds since the run started */
function clock(ms) {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

const counted = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'];
const totals = Object.fromEntries(counted.map((name) => [name, 0]));

const countsBlock = new RegExp(`^${counted.map((name) => `ℹ ${name} (\\d+)\\n`).join('')}ℹ duration_ms [\\d.]+\\n?`, 'm');

/** Adds the counts the spec reporter gives at the end of a file's run to the totals; the output without them. */
function takeCounts(output) {
  const found = countsBlock.exec(output);
  if (found === null) return output;
  counted.forEach((name, i) => (totals[name] += Number(found[i + 1])));
  return (output.slice(0, found.index) + output.slice(found.index + found[0].length)).trimEnd();
}

function runFile({ file, lane }) {
  return new Promise((resolve) => {
    const begin = performance.now();
    const startedAt = clock(begin - started);
    const child = spawn(process.execPath, ['--import', 'tsx', '--test-reporter=spec', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Agents and `coffer serve` started by tests keep the small pool they always had: the
      // host-sized default (8 on a 2-core box) would make each start fill 16 clusters beside the
      // other lanes. A test that means another size says so.
      env: { COFFER_WARM_POOL_SIZE: '2', ...process.env },
    });
    running.set(file, { child, lane });
    // stdout and stderr in the order they came, printed together once the file ends
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    let done = false;
    const finish = (code, signal) => {
      if (done) return;
      done = true;
      running.delete(file);
      const ms = performance.now() - begin;
      const ok = code === 0;
      const status = ok ? 'passed' : signal !== null ? `killed by ${signal}` : `FAILED (exit ${code})`;
      const body = takeCounts(Buffer.concat(chunks).toString('utf8').trimEnd());
      process.stdout.write(`\n── ${ok ? '✔' : '✖'} ${file}: ${status} in ${seconds(ms)} (from ${startedAt}) [${lane}]\n${body}\n── end of ${file}\n`);
      results.push({ file, lane, ok, ms, ...(ok ? {} : { summary: failureSummary(body) }) });
      resolve();
    };
    child.on('close', finish);
    // a process the file left behind may hold its output open: the file is over when its process is
    child.on('exit', (code, signal) => {
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code, signal);
      }, 2000).unref();
    });
  });
}

/**
 * What failed in a file, short: the spec reporter's closing list of failing tests, else the end
 * of the output. Repeated under the final tally, where a CI log cut in the middle still shows it.
 */
function failureSummary(body) {
  const at = body.lastIndexOf('✖ failing tests:');
  const text = at >= 0 ? body.slice(at) : body;
  return text.length > 4000 ? `…${text.slice(-4000)}` : text;
}

/** The next file the lanes let start now, if any. */
function next() {
  const pending = queue.filter((q) => !q.taken);
  if (running.size >= jobs) return undefined;
  if (jobs === 1) return pending[0];
  const runningIn = (lane) => [...running.values()].filter((r) => r.lane === lane).length;
  if (runningIn('alone') > 0) return undefined;
  const serial = pending.find((q) => q.lane === 'serial');
  if (serial !== undefined && runningIn('serial') === 0) return serial;
  // one slot stays the serial lane's while it has work
  const parallelSlots = serial !== undefined || runningIn('serial') > 0 ? jobs - 1 : jobs;
  const parallel = pending.find((q) => q.lane === 'parallel');
  if (parallel !== undefined && runningIn('parallel') < parallelSlots) return parallel;
  if (running.size === 0) return pending.find((q) => q.lane === 'alone');
  return undefined;
}

/** Starts what the lanes allow, again each time a file ends; resolves once every file has run. */
function schedule() {
  return new Promise((resolve) => {
    const pump = () => {
      if (stopping) {
        if (running.size === 0) resolve();
        return;
      }
      for (let item = next(); item !== undefined; item = next()) {
        item.taken = true;
        runFile(item).then(pump);
      }
      if (running.size === 0) resolve();
    };
    pump();
  });
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopping = true;
    for (const { child } of running.values()) child.kill(signal);
    process.exitCode = 1;
  });
}

await schedule();

const failed = results.filter((r) => !r.ok);
const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 10);
console.log(`\n${counted.map((name) => `${name} ${totals[name]}`).join(', ')}`);
console.log(`${results.length} test files in ${seconds(performance.now() - started)} (--jobs=${jobs}); slowest:`);
for (const r of slowest) console.log(`  ${seconds(r.ms).padStart(8)}  ${r.file} [${r.lane}]`);
if (failed.length > 0) {
  console.log(`\n✖ ${failed.length} failing file(s); run one again with node scripts/run-tests.mjs <file>:`);
  for (const r of failed) console.log(`  ${r.file}`);
  for (const r of failed) console.log(`\n── what failed in ${r.file}:\n${r.summary}`);
}
process.exit(failed.length > 0 || stopping ? 1 : 0);
