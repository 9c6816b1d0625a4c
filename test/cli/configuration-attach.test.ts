import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { loggedInFake, type FakeCoffer } from './fake-coffer.js';
import { runCli, tempConfigDir } from './run-cli.js';

// coffer configuration attach | detach against the stand-in API: what changes is printed first,
// then the task is followed as other instance actions are, then the restart advice.

describe('coffer configuration attach and detach', () => {
  let fake: FakeCoffer;
  let dir: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    ({ dir, cleanup } = await tempConfigDir());
  });
  after(() => cleanup());

  beforeEach(async () => {
    fake = await loggedInFake(dir);
  });
  afterEach(() => fake.close());

  const putsTo = (id: string) => fake.requestsTo('PUT', `/v1.0/${fake.projectId}/instances/${id}`).map((r) => r.body);

  it('attach by names: the diff against what the engine runs with, the task followed, then the restart and its command', async () => {
    const group = fake.configurations.addGroup('tuned', { max_connections: 200, work_mem: '4MB', log_min_duration_statement: 250 });
    const id = fake.addInstance('orders');
    const result = await runCli(dir, ['configuration', 'attach', 'orders', 'tuned']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(putsTo(id), [{ instance: { configuration: group } }]);
    assert.match(result.stderr, /^Attaching tuned to orders: ACTIVE \(\d+s\)\nAttaching tuned to orders: RESTART_REQUIRED \(\d+s\)\n$/);
    // work_mem is already 4MB: not a change. max_connections was the engine's 100.
    assert.match(
      result.stdout,
      new RegExp(
        '^Attaching configuration group tuned to orders:\\n' +
          '  \\+ log_min_duration_statement: 250\\n' +
          '  ~ max_connections: 100 → 200  \\(needs a restart\\)\\n' +
          'Configuration group tuned is attached to orders\\. \\(RESTART_REQUIRED, \\d+\\.\\d s\\)\\n' +
          'orders is RESTART_REQUIRED: max_connections takes effect when the engine restarts\\. Restart it with:\\n' +
          '  coffer instance restart orders\\n$',
      ),
    );
  });

  it('the advised restart command ends RESTART_REQUIRED', async () => {
    fake.configurations.addGroup('tuned', { max_connections: 200 });
    fake.addInstance('orders');
    const attached = await runCli(dir, ['configuration', 'attach', 'orders', 'tuned']);
    const advised = /\n {2}coffer (instance restart orders)\n$/.exec(attached.stdout);
    assert.ok(advised, attached.stdout);
    const restart = await runCli(dir, advised[1]!.split(' '));
    assert.equal(restart.code, 0, restart.stderr);
    assert.match(restart.stderr, /^Restarting orders: REBOOT \(\d+s\)\nRestarting orders: ACTIVE \/ HEALTHY/);
    assert.match(restart.stdout, /^Instance orders restarted\. \(ACTIVE \/ HEALTHY/);
  });

  it('attach of dynamic values only: live at once, no restart', async () => {
    const group = fake.configurations.addGroup('live', { work_mem: 8192 });
    const id = fake.addInstance('orders');
    const result = await runCli(dir, ['configuration', 'attach', id, group]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /  ~ work_mem: "4MB" → 8192\n/);
    assert.match(result.stdout, /is attached to orders\. \(ACTIVE \/ HEALTHY, [\d.]+ s\)\nThe change is live on orders; no restart is needed\.\n$/);
  });

  it('attach to an instance that has a group already is refused before any request, with the way out', async () => {
    const first = fake.configurations.addGroup('first', {});
    fake.configurations.addGroup('second', {});
    const id = fake.addInstance('orders');
    fake.configurations.attach(id, first);
    const result = await runCli(dir, ['configuration', 'attach', 'orders', 'second']);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      'Error: orders already has configuration group first attached.\nAn instance has one group at a time: `coffer configuration detach orders` first.\n',
    );
    assert.deepEqual(putsTo(id), []);
  });

  it('attach of a group for another version is refused before any request, saying which group would fit', async () => {
    fake.configurations.addGroup('pg16', { work_mem: 8192 }, '16');
    const id = fake.addInstance('orders');
    const result = await runCli(dir, ['configuration', 'attach', 'orders', 'pg16']);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      'Error: pg16 is for postgresql 16; orders runs postgresql 15.\n' +
        'Create a group for it with `coffer configuration create <name> --datastore postgresql --datastore-version 15 --set ...`.\n',
    );
    assert.deepEqual(putsTo(id), []);
    assert.equal(result.stdout, '');
  });

  it('an attach the engine refuses exits 1 with the fault', async () => {
    fake.configurations.addGroup('huge', { shared_buffers: 2000000 });
    const id = fake.addInstance('broken-db');
    const result = await runCli(dir, ['configuration', 'attach', 'broken-db', 'huge']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`Error: Configuration change of broken-db \\(${id}\\) failed: shared_buffers: 2000000 is more than`));
  });

  it('attach --no-wait returns once the API accepted it; --json prints only the instance on stdout', async () => {
    fake.configurations.addGroup('tuned', { work_mem: 8192 });
    const id = fake.addInstance('orders');
    const quick = await runCli(dir, ['configuration', 'attach', 'orders', 'tuned', '--no-wait']);
    assert.equal(quick.code, 0, quick.stderr);
    assert.match(quick.stdout, new RegExp(`Attaching tuned to orders \\(${id}\\)\\. Follow it with \`coffer instance show ${id}\`\\.\\n$`));

    fake.configurations.addGroup('other', { work_mem: 1024 });
    const other = fake.addInstance('sales');
    const json = await runCli(dir, ['configuration', 'attach', other, 'other', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as { configuration: { name: string } }).configuration.name, 'other');
    assert.match(json.stderr, /Attaching configuration group other to sales:\n  ~ work_mem: "4MB" → 1024\n/);
  });

  it('detach: every value goes back to the default, the restart advice names the restart-only ones', async () => {
    const group = fake.configurations.addGroup('tuned', { max_connections: 200, work_mem: 8192 });
    const id = fake.addInstance('orders');
    fake.configurations.attach(id, group);
    const result = await runCli(dir, ['configuration', 'detach', 'orders']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(putsTo(id), [{ instance: { configuration: null } }]);
    assert.match(
      result.stdout,
      new RegExp(
        '^Detaching configuration group tuned from orders:\\n' +
          '  - max_connections: 200 → default  \\(needs a restart\\)\\n' +
          '  - work_mem: 8192 → default\\n' +
          'Configuration group tuned is detached from orders\\. \\(RESTART_REQUIRED, [\\d.]+ s\\)\\n' +
          'orders is RESTART_REQUIRED: max_connections takes effect when the engine restarts\\. Restart it with:\\n' +
          '  coffer instance restart orders\\n$',
      ),
    );
  });

  it('detach of an instance without a group sends nothing', async () => {
    const id = fake.addInstance('orders');
    const result = await runCli(dir, ['configuration', 'detach', 'orders']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'orders has no configuration group attached: nothing to detach.\n');
    assert.deepEqual(putsTo(id), []);
  });
});
