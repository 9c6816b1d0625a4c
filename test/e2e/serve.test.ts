// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runCli } from '../support/coffer-process.js';
import { join } from 'node:path';
import pg from 'pg';
import type { Session } from '../support/api-client.js';
import { connectAndWrite, createInstance, deleteAndVerifyGone, waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';

// `coffer serve`: every role in one process, SQLite state, in-process bus, local compute.

const adminPassword = 'Serve-admin-pass-1234';
let run: ServeRun;
let dataDir: ServeRun['dataDir'];
let baseUrl: string;
let session: Session;

before(async () => {
  run = await startServe('coffer-e2e-serve', adminPassword);
  ({ dataDir, session, baseUrl } = run);
});

after(() => run?.stop());

test('an instance created over HTTP becomes ACTIVE/HEALTHY, accepts its user, and is deleted without a trace', async () => {
  const created = await createInstance(session, 'e2e-serve');
  const instance = await waitActive(session, created.id);
  assert.equal(instance.datastore.type, 'postgresql');
  assert.equal(instance.volume.size, 1);
  await connectAndWrite(instance);
  await deleteAndVerifyGone(session, created.id, dataDir.path);
});

test('the coffer CLI logs in, creates an instance with progress, shows how to connect, lists and deletes it', async () => {
  const env = { COFFER_CONFIG_DIR: join(dataDir.path, 'cli') };
  const login = await runCli(['login', '--url', baseUrl, '--user', 'admin', '--project', 'admin', '--password-stdin'], {
    env,
    input: `${adminPassword}\n`,
  });
  assert.equal(login.code, 0, login.stderr);
  assert.ok(!login.stdout.includes(adminPassword) && !login.stderr.includes(adminPassword), 'the password is never printed');

  const create = await runCli(
    ['instance', 'create', 'mypg', '--datastore', 'postgresql', '--flavor', 'm1.tiny', '--size', '1', '--database', 'app', '--user', 'app:Cli-user-pass-1234'],
    { env },
  );
  assert.equal(create.code, 0, create.stderr + create.stdout);
  assert.match(create.stderr + create.stdout, /BUILD/, 'progress is shown while building');
  assert.match(create.stdout, /psql/);
  assert.ok(!create.stdout.includes('Cli-user-pass-1234'), 'the connection info does not repeat the password');
  const host = /(127\.\d+\.\d+\.\d+)/.exec(create.stdout)?.[1];
  assert.ok(host, `the output names the instance address: ${create.stdout}`);
  const client = new pg.Client({ host, port: 5432, user: 'app', password: 'Cli-user-pass-1234', database: 'app' });
  await client.connect();
  assert.equal((await client.query('SELECT current_user AS u')).rows[0].u, 'app');
  await client.end();

  const list = await runCli(['instance', 'list', '--json'], { env });
  assert.equal(list.code, 0, list.stderr);
  const listed = JSON.parse(list.stdout) as Array<{ name: string; status: string }>;
  assert.deepEqual(listed.map((i) => [i.name, i.status]), [['mypg', 'ACTIVE']]);

  const remove = await runCli(['instance', 'delete', 'mypg', '--wait'], { env });
  assert.equal(remove.code, 0, remove.stderr);
  const after = await runCli(['instance', 'show', 'mypg'], { env });
  assert.equal(after.code, 1);
  assert.match(after.stderr, /not found|cannot be found|No instance/i);
});

// Last: it stops the shared `coffer serve`.
test('Ctrl-C (SIGINT) says that the engines keep running and how to take them back', async () => {
  run.serve.child.kill('SIGINT');
  await run.serve.waitFor(/To stop an engine for good/, 60_000);
  const output = run.serve.output();
  assert.match(output, /Stopping Coffer \(SIGINT\) \.\.\.\nCoffer stopped\. The database engines of its instances keep running and accept clients\.\n/);
  assert.ok(output.includes(`To manage them again, start \`coffer serve --data-dir ${dataDir.path}\``), output);
});
