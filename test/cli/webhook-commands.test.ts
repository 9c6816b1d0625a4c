import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { newUuid } from '../../src/common/index.js';
import { adminPassword, adminSession, memberSession, startHarness, type Harness, type Session } from '../api/api-harness.js';
import { runCli, tempConfigDir } from './run-cli.js';

// coffer webhook create|list|show|delete|deliveries against the real API over HTTP: the secret
// printed once, a secret of one's own from stdin, event filters by short name, the log.

let h: Harness;
let dir: string;
let cleanup: () => Promise<void>;
let admin: Session;

before(async () => {
  ({ dir, cleanup } = await tempConfigDir());
  h = await startHarness();
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = h.app.server.address() as AddressInfo;
  admin = await adminSession(h.app);
  const login = await runCli(dir, ['login', '--url', `http://127.0.0.1:${port}`], { env: { COFFER_PASSWORD: adminPassword } });
  assert.equal(login.code, 0, login.stderr);
});
after(async () => {
  await h?.close();
  await cleanup?.();
});

const cli = (...args: string[]) => runCli(dir, args);

test('create prints the generated secret once; list and show never do; delete removes it', async () => {
  const created = await cli('webhook', 'create', 'https://192.0.2.10/coffer', '--events', 'status,task.failed');
  assert.equal(created.code, 0, created.stderr);
  const [hook] = await h.store.webhooks.list(admin.projectId);
  assert.equal(
    created.stdout,
    `Webhook ${hook!.id} sends status, task.failed events of this project's instances to https://192.0.2.10/coffer.\n` +
      `Its signing secret, shown this once (keep it where the receiver checks X-Coffer-Signature):\n${hook!.secret}\n` +
      `See what it delivered with \`coffer webhook deliveries ${hook!.id}\`.\n`,
  );
  assert.deepEqual(hook!.events, ['org.coffer.instance.status', 'org.coffer.instance.task.failed']);

  const listed = await cli('webhook', 'list');
  assert.match(listed.stdout, new RegExp(`${hook!.id}[\\s│]+https://192\\.0\\.2\\.10/coffer[\\s│]+status, task\\.failed`));
  const shown = await cli('webhook', 'show', hook!.id);
  assert.match(shown.stdout, /Events[\s│:]+status, task\.failed/);
  for (const out of [listed.stdout, shown.stdout, (await cli('webhook', 'show', hook!.id, '--json')).stdout]) assert.ok(!out.includes(hook!.secret));

  const deleted = await cli('webhook', 'delete', hook!.id);
  assert.equal(deleted.stdout, `Webhook ${hook!.id} deleted.\n`);
  const again = await cli('webhook', 'show', hook!.id);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, new RegExp(`No webhook ${hook!.id} in this project`));
});

test("a secret of one's own comes from stdin; a refused URL says why", async () => {
  const own = await runCli(dir, ['webhook', 'create', 'http://192.0.2.11/in', '--secret-stdin'], { stdin: Readable.from(['my-own-secret-0123456789\n']) });
  assert.equal(own.code, 0, own.stderr);
  assert.ok(!own.stdout.includes('my-own-secret'));
  assert.match(own.stdout, /signs with the secret you gave/);
  const stored = (await h.store.webhooks.list(admin.projectId)).find((w) => w.url === 'http://192.0.2.11/in');
  assert.equal(stored!.secret, 'my-own-secret-0123456789');

  const refused = await cli('webhook', 'create', 'http://169.254.169.254/latest');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /Webhook URL refused: its host 169\.254\.169\.254 resolves to 169\.254\.169\.254/);
});

test('deliveries lists the log newest first; another project sees no such hook', async () => {
  const hook = await h.store.webhooks.list(admin.projectId).then((l) => l[0]!);
  const instanceId = newUuid();
  const now = new Date();
  await h.store.instances.create({
    id: instanceId, name: 'logged', tenantId: admin.projectId, flavorId: '2', volumeSizeGb: 1, datastoreVersionId: newUuid(),
    taskStatus: 'NONE', taskDescription: 'No tasks for the instance.', taskStartTime: null, access: null, createdAt: now, updatedAt: now,
  });
  const empty = await cli('webhook', 'deliveries', hook.id);
  assert.match(empty.stdout, /Nothing delivered by webhook/);
  await h.store.instanceEvents.record({ instanceId, type: 'task.started', name: 'restart', message: null, createdAt: now });
  const log = await cli('webhook', 'deliveries', hook.id);
  assert.equal(log.code, 0, log.stderr);
  assert.match(log.stdout, new RegExp(`task\\.started[\\s│]+${instanceId}[\\s│]+pending[\\s│]+0[\\s│]+next try`));

  const other: Session = await memberSession(h, 'other');
  assert.equal((await h.app.inject({ method: 'GET', url: `/v1.0/${other.projectId}/webhooks/${hook.id}/deliveries`, headers: { 'x-auth-token': other.token } })).statusCode, 404);
});
