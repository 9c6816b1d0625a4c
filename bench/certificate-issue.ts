// bench/certificate-issue: what an instance's server certificate costs the agent, signed in its
// own process (CertificateAuthority.issue, @peculiar/x509 with Node's WebCrypto) against the
// way it was signed before: Debian's openssl spawned per certificate, reproduced here by hand
// with the same command, key and extension file the old issue() used. Same CA, same run.
//
//   node --import tsx bench/certificate-issue.ts [--count 100] [--burst 8] [--out bench/results/certificate-issue.md]
//
// Rows (each: `count` certificates one after another, then `count` in bursts of `burst` at once):
// - ms per certificate, wall: sequential issue time, mean and p95;
// - CPU ms per certificate: this process's user+system time plus its waited-for children's
//   (/proc/self/stat cutime+cstime, 10 ms ticks, so the mean over `count` is what counts);
// - burst: wall time for `burst` issued at once, mean per burst.
import { execFile as execFileCallback } from 'node:child_process';
import { generateKeyPair as generateKeyPairCallback, randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { CertificateAuthority } from '../src/agent/index.js';
import { silentLogger } from '../src/common/index.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100' },
    burst: { type: 'string', default: '8' },
    out: { type: 'string', default: 'bench/results/certificate-issue.md' },
  },
});
const count = Number(values.count);
const burst = Number(values.burst);
const execFile = promisify(execFileCallback);
const generateKeyPair = promisify(generateKeyPairCallback);

const dir = await mkdtemp(join(tmpdir(), 'coffer-bench-ca-'));
const ca = await CertificateAuthority.open({ dir: join(dir, 'ca'), logger: silentLogger() });
const caFiles = { certFile: join(dir, 'ca', 'ca.crt'), keyFile: join(dir, 'ca', 'ca.key') };

/** The old issue(): a key made by Node, the certificate by `openssl x509 -new` with an ext file. */
async function issueWithOpenssl(address: string): Promise<string> {
  const { publicKey } = await generateKeyPair('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const work = await mkdtemp(join(dir, 'issue-'));
  try {
    await writeFile(join(work, 'server.pub'), publicKey, { mode: 0o600 });
    await writeFile(
      join(work, 'server.ext'),
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        `subjectAltName=IP:${address}`,
        'subjectKeyIdentifier=hash',
        'authorityKeyIdentifier=keyid',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    await execFile('openssl', [
      'x509', '-new', '-force_pubkey', join(work, 'server.pub'), '-subj', `/CN=${address}`,
      '-CA', caFiles.certFile, '-CAkey', caFiles.keyFile,
      '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', '90',
      '-extfile', join(work, 'server.ext'), '-out', join(work, 'server.crt'),
    ], { cwd: work });
    return await readFile(join(work, 'server.crt'), 'utf8');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function issueInProcess(address: string): Promise<string> {
  return (await ca.issue({ address, validityDays: 90 })).certificate;
}

/** CPU ms of this process and its waited-for children. */
async function cpuMs(): Promise<number> {
  const usage = process.cpuUsage();
  const fields = (await readFile('/proc/self/stat', 'utf8')).replace(/^.*\) /, '').split(' ');
  // after the command: field 3 is state, so utime..cstime are at 11..14 (0-based)
  const childTicks = Number(fields[13]) + Number(fields[14]);
  return (usage.user + usage.system) / 1000 + childTicks * 10;
}

interface Row {
  name: string;
  meanMs: number;
  p95Ms: number;
  cpuMs: number;
  burstMs: number;
}

async function measure(name: string, issue: (address: string) => Promise<string>): Promise<Row> {
  for (let i = 0; i < 5; i++) await issue('127.0.0.1'); // warm up
  const times: number[] = [];
  const cpuBefore = await cpuMs();
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await issue(`127.1.${i >> 8}.${i & 255}`);
    times.push(performance.now() - start);
  }
  const cpu = (await cpuMs()) - cpuBefore;
  const bursts: number[] = [];
  for (let b = 0; b < Math.ceil(count / burst); b++) {
    const start = performance.now();
    await Promise.all(Array.from({ length: burst }, (_, i) => issue(`127.2.${b}.${i}`)));
    bursts.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { name, meanMs: mean(times), p95Ms: times[Math.floor(times.length * 0.95)] ?? Number.NaN, cpuMs: cpu / count, burstMs: mean(bursts) };
}

const load = loadavg().map((l) => l.toFixed(2)).join(' ');
const rows = [await measure('openssl x509 -new, spawned (before)', issueWithOpenssl), await measure('in process, @peculiar/x509 + WebCrypto (after)', issueInProcess)];
await rm(dir, { recursive: true, force: true });

const table = [
  `| signing | ms per certificate, mean | p95 | CPU ms per certificate | ${burst} at once, ms per burst |`,
  '| --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.name} | ${r.meanMs.toFixed(2)} | ${r.p95Ms.toFixed(2)} | ${r.cpuMs.toFixed(2)} | ${r.burstMs.toFixed(1)} |`),
].join('\n');
const report = `\n## ${new Date().toISOString()} — ${cpus().length} cores, load average ${load} at the start, ${count} certificates, bursts of ${burst}\n\n${table}\n`;
console.log(report);
await mkdir(dirname(values.out), { recursive: true });
await appendFile(values.out, report);
