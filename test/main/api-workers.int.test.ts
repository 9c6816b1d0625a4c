// test-lane: parallel (a vhost, a data directory and free ports of its own)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { login, trove, type Session } from '../support/api-client.js';
import { freePort, startRole, type RoleProcess } from '../support/coffer-process.js';
import { makeVhost } from '../support/rabbitmq-vhost.js';
import { makeDataDir } from '../support/temp-dir.js';

// `coffer api --api-workers 3`, as an operator runs it: three processes share the API's port,
// each new connection is served by one of them (their debug log names the pid of each request),
// a token issued through one is honoured by the others, each worker's metrics are on a port of
// its own, a worker that dies is replaced, and stopping the command stops every worker.

let vhost: ReturnType<typeof makeVhost>;
let dir: { path: string; remove: () => Promise<void> };
let api: RoleProcess;
let baseUrl: string;
let metricsPort: number;
const adminPassword = 'Api-workers-admin-1234';

interface LogLine {
  pid: number;
  msg: string;
  url?: string;
  worker?: number;
  workerPid?: number;
}

function logLines(): LogLine[] {
  return api
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** what the command said of each worker it started */
function workerLines(): LogLine[] {
  return logLines().filter((l) => l.msg === 'api worker listening');
}

/** one GET on a connection of its own (the port's owner hands each new connection to a worker) */
function getOnNewConnection(url: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers: { 'x-auth-token': token, connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  vhost = makeVhost({ ownUser: true });
  dir = await makeDataDir('coffer-api-workers');
  const busKeyFile = join(dir.path, 'bus.key');
  await writeFile(busKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const port = await freePort();
  metricsPort = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  api = startRole(
    ['api', '--port', String(port), '--data-dir', join(dir.path, 'api'), '--api-workers', '3', '--metrics-address', `127.0.0.1:${metricsPort}`],
    {
      COFFER_DATABASE_URL: `sqlite:${join(dir.path, 'state.sqlite')}`,
      COFFER_BUS_URL: vhost.url,
      COFFER_BUS_KEY_FILE: busKeyFile,
      COFFER_ADMIN_PASSWORD: adminPassword,
      COFFER_LOG_LEVEL: 'debug',
    },
  );
  await api.waitFor(/"workers":3[^\n]*"msg":"api listening"/, 120_000);
});

after(async () => {
  if (api !== undefined && api.child.exitCode === null) await api.stop();
  await dir?.remove();
  vhost?.remove();
});

test('requests on new connections are served by more than one worker, each honouring the same token', async () => {
  const workers = workerLines();
  assert.deepEqual(workers.map((l) => l.worker).sort(), [0, 1, 2], api.output());
  const pids = new Set(workers.map((l) => l.workerPid));
  assert.equal(pids.size, 3, 'each worker a process of its own');
  assert.ok(!pids.has(api.child.pid!), 'the command itself serves nothing');

  const session: Session = await login(baseUrl, 'admin', adminPassword, 'admin');
  const url = trove(session, '/instances');
  for (let n = 0; n < 12; n++) assert.equal(await getOnNewConnection(url, session.token), 200);
  const servedBy = new Set(logLines().filter((l) => l.msg === 'incoming request' && l.url?.endsWith('/instances') === true).map((l) => l.pid));
  assert.ok(servedBy.size > 1, `served by ${[...servedBy].join(', ')}`);
  for (const pid of servedBy) assert.ok(pids.has(pid), `pid ${pid} is a worker`);
});

test("each worker serves its own metrics on the metrics address's port plus its index", async () => {
  for (const index of [0, 1, 2]) {
    const res = await fetch(`http://127.0.0.1:${metricsPort + index}/metrics`);
    assert.equal(res.status, 200, `worker ${index}`);
    assert.match(await res.text(), /coffer_http_request_duration_seconds/, `worker ${index}`);
  }
});

test('a worker that dies is replaced by a new process in its place', async () => {
  const [first] = workerLines().filter((l) => l.worker === 1);
  process.kill(first!.workerPid!, 'SIGKILL');
  await api.waitFor(/"worker":1,"workerPid":\d+,"code":null,"signal":"SIGKILL","msg":"api worker exited; starting another in its place"/, 30_000);
  await api.waitFor(new RegExp(`"worker":1,"workerPid":(?!${first!.workerPid}\\b)\\d+,"msg":"api worker listening"`), 90_000);
  const session: Session = await login(baseUrl, 'admin', adminPassword, 'admin');
  for (let n = 0; n < 6; n++) assert.equal(await getOnNewConnection(trove(session, '/instances'), session.token), 200);
});

test('stopping the command stops every worker', async () => {
  // the replaced worker's line comes last: the latest line of each worker names its live process
  const pids = [...new Map(workerLines().map((l) => [l.worker, l.workerPid!])).values()];
  await api.stop();
  assert.equal(api.child.exitCode, 0, api.output());
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`);
});
