// bench/login-flood: PostgreSQL creates on `coffer serve`, alone and under a flood of bad logins
// (16 clients sending wrong passwords as fast as they are answered), in the same run. Login
// limits are off, so every bad login asks for a hash: what is measured is the bound on hashing.
//
//   node --import tsx bench/login-flood.ts [--runs 5] [--parallel 16] [--warm-pool-size 0] [--out bench/results/login-flood.md]
import { appendFile, mkdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { login } from '../test/support/api-client.js';
import { freePort, startRole } from '../test/support/coffer-process.js';
import { measureLoginFlood, median } from '../test/support/login-flood.js';
import { makeDataDir } from '../test/support/temp-dir.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    parallel: { type: 'string', default: '16' },
    'warm-pool-size': { type: 'string', default: '0' },
    subnet: { type: 'string', default: '127.81' },
    out: { type: 'string', default: 'bench/results/login-flood.md' },
  },
});

const dataDir = await makeDataDir('coffer-bench-flood');
const port = await freePort();
const adminPassword = 'Bench-admin-pass-1234';
const serve = startRole(
  ['serve', '--port', String(port), '--data-dir', dataDir.path, '--log-level', 'warn', '--warm-pool-size', values['warm-pool-size']!, '--address-pool', `${values.subnet}.1.0/24`],
  { COFFER_ADMIN_PASSWORD: adminPassword, COFFER_LOGIN_LOCKOUT_ATTEMPTS: '0', COFFER_LOGIN_ADDRESS_ATTEMPTS: '0' },
);
try {
  await serve.waitFor(/serving the Trove API/, 60_000);
  const session = await login(`http://127.0.0.1:${port}`, 'admin', adminPassword, 'admin');
  const f = await measureLoginFlood(session, { runs: Number(values.runs), parallel: Number(values.parallel) });
  const ratio = median(f.flooded) / median(f.quiet);
  const ms = (xs: number[]) => xs.map((x) => Math.round(x)).join(', ');
  const report = [
    `## ${new Date().toISOString()}: ${values.parallel} parallel bad logins, warm pool ${values['warm-pool-size']}`,
    '',
    `Machine: ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end.`,
    '',
    '| | creates (ms) | median (ms) |',
    '| --- | --- | --- |',
    `| alone | ${ms(f.quiet)} | ${Math.round(median(f.quiet))} |`,
    `| under the flood | ${ms(f.flooded)} | ${Math.round(median(f.flooded))} |`,
    '',
    `Ratio of medians: **${ratio.toFixed(2)}**. Bad logins answered during the flooded creates: ${f.logins}, of which ${f.refusedBusy} were refused without a hash because the hashing queue was full.`,
    '',
  ].join('\n');
  process.stdout.write(`${report}\n`);
  await mkdir(dirname(values.out!), { recursive: true });
  await appendFile(values.out!, `${report}\n`);
} finally {
  await serve.stop();
  await dataDir.remove();
}
