import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { loggedInFake, type FakeCoffer } from './fake-coffer.js';
import { runCli, tempConfigDir } from './run-cli.js';

// coffer configuration create|list|show|update|delete|instances and coffer datastore parameters
// against the stand-in API: the requests each sends, what each prints, and how it fails.

describe('coffer configuration', () => {
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

  const api = (path: string) => `/v1.0/${fake.projectId}${path}`;
  const groupWrites = () =>
    fake.requests.filter((r) => r.path.startsWith(api('/configurations')) && r.method !== 'GET').map((r) => ({ method: r.method, body: r.body }));

  describe('datastore parameters', () => {
    it('lists name, type, min, max and restart required, sorted by name', async () => {
      const result = await runCli(dir, ['datastore', 'parameters', 'postgresql', '15']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(fake.requestsTo('GET', api('/datastores/postgresql/versions/15/parameters')).length, 1);
      const lines = result.stdout.split('\n');
      assert.match(lines[1]!, /Name +│ Type +│ Min +│ Max +│ Restart required/);
      const names = lines.slice(3, -2).map((l) => l.split('│')[1]!.trim());
      assert.deepEqual(names, [...names].sort());
      assert.match(result.stdout, /│ max_connections +│ integer +│ 1 +│ 8388607 +│ yes +│/);
      assert.match(result.stdout, /│ work_mem +│ integer +│ 64 +│ 2147483647 +│ no +│/);
      assert.match(result.stdout, /│ autovacuum +│ boolean +│ +│ +│ no +│/);
    });

    it('shows one parameter; an unknown name gets the close names and the list command', async () => {
      const one = await runCli(dir, ['datastore', 'parameters', 'postgresql', '15', 'shared_buffers']);
      assert.equal(one.code, 0, one.stderr);
      assert.match(one.stdout, /│ Name +│ shared_buffers +│/);
      assert.match(one.stdout, /│ Restart required +│ yes +│/);

      const typo = await runCli(dir, ['datastore', 'parameters', 'postgresql', '15', 'max_conections']);
      assert.equal(typo.code, 1);
      assert.equal(
        typo.stderr,
        'Error: postgresql 15 has no configuration parameter "max_conections".\n' +
          'Did you mean max_connections? `coffer datastore parameters postgresql 15` lists them all.\n',
      );
    });

    it('an unknown datastore or version shows the API message and points to datastore list; a version without parameters says so', async () => {
      const noDs = await runCli(dir, ['datastore', 'parameters', 'oracle', '19']);
      assert.equal(noDs.code, 1);
      assert.equal(noDs.stderr, "Error: Datastore 'oracle' cannot be found.\nSee the datastores and their versions with `coffer datastore list`.\n");
      const noVersion = await runCli(dir, ['datastore', 'parameters', 'postgresql', '9']);
      assert.equal(noVersion.code, 1);
      assert.match(noVersion.stderr, /^Error: Datastore version '9' cannot be found\.\n.*coffer datastore list/);
      const none = await runCli(dir, ['datastore', 'parameters', 'mysql', '8.0']);
      assert.equal(none.code, 0, none.stderr);
      assert.equal(none.stdout, 'mysql 8.0 publishes no configuration parameters: configuration groups are not supported for it.\n');
    });
  });

  describe('create', () => {
    it('types each --set by the parameter list, resolves the default version and shows the new group', async () => {
      const result = await runCli(dir, [
        'configuration', 'create', 'tuned', '--datastore', 'postgresql',
        '--set', 'max_connections=200', '--set', 'autovacuum=off', '--set', 'random_page_cost=1.5',
        '--set', 'log_line_prefix=%m [%p] a=b', '--set', 'WORK_MEM=8192', '--description', 'for reports',
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(groupWrites(), [
        {
          method: 'POST',
          body: {
            configuration: {
              name: 'tuned',
              values: { max_connections: 200, autovacuum: false, random_page_cost: 1.5, log_line_prefix: '%m [%p] a=b', work_mem: 8192 },
              datastore: { type: 'postgresql', version: '15' },
              description: 'for reports',
            },
          },
        },
      ]);
      const [id] = fake.configurations.groups.keys();
      assert.match(result.stdout, new RegExp(`^Created configuration group tuned \\(${id}\\) for postgresql 15\\.\n`));
      assert.match(result.stdout, /│ Version +│ 15 \(15\.18\) +│/);
      assert.match(result.stdout, /│ max_connections +│ 200 +│ yes +│/);
      assert.match(result.stdout, /│ log_line_prefix +│ "%m \[%p\] a=b" +│ +│/);
      assert.match(result.stdout, /│ autovacuum +│ false +│/);
      assert.match(result.stdout, /Attach it with `coffer configuration attach <instance> tuned`\.\n$/);
    });

    it('takes --values as JSON (a --set wins over it) for an explicit version', async () => {
      const result = await runCli(dir, [
        'configuration', 'create', 'g16', '--datastore', 'postgresql', '--datastore-version', '16',
        '--values', '{"work_mem": 1024, "autovacuum": true}', '--set', 'work_mem=2048', '--json',
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual((groupWrites()[0]!.body as any).configuration.values, { work_mem: 2048, autovacuum: true });
      assert.deepEqual((groupWrites()[0]!.body as any).configuration.datastore, { type: 'postgresql', version: '16' });
      const printed = JSON.parse(result.stdout) as { datastore_version_name: string; values: unknown };
      assert.equal(printed.datastore_version_name, '16');
    });

    it('refuses, before sending anything: an unknown name (with close names), a value of the wrong type, one out of range', async () => {
      const typo = await runCli(dir, ['configuration', 'create', 'g', '--datastore', 'postgresql', '--set', 'max_conection=5']);
      assert.equal(typo.code, 1);
      assert.equal(
        typo.stderr,
        'Error: postgresql 15 has no configuration parameter "max_conection".\n' +
          'Did you mean max_connections? `coffer datastore parameters postgresql 15` lists them all.\n',
      );
      const word = await runCli(dir, ['configuration', 'create', 'g', '--datastore', 'postgresql', '--set', 'work_mem=4MB']);
      assert.equal(word.stderr, 'Error: --set work_mem=4MB: work_mem takes a whole number.\nSee its type and range with `coffer datastore parameters postgresql 15 work_mem`.\n');
      const flag = await runCli(dir, ['configuration', 'create', 'g', '--datastore', 'postgresql', '--set', 'autovacuum=maybe']);
      assert.match(flag.stderr, /autovacuum takes true or false/);
      const low = await runCli(dir, ['configuration', 'create', 'g', '--datastore', 'postgresql', '--set', 'max_connections=0']);
      assert.equal(
        low.stderr,
        'Error: The value for the configuration parameter max_connections is less than the minimum allowed: 1\n' +
          'See its type and range with `coffer datastore parameters postgresql 15 max_connections`.\n',
      );
      const json = await runCli(dir, ['configuration', 'create', 'g', '--datastore', 'postgresql', '--values', '{"work_mem": "4MB"}']);
      assert.match(json.stderr, /^Error: The value provided for the configuration parameter work_mem is not of type integer\.\n/);
      const notJson = await runCli(dir, ['configuration', 'create', 'g', '--datastore', 'postgresql', '--values', '{"test_password": "hunter2"']);
      assert.equal(notJson.stderr, 'Error: --values takes a JSON object, e.g. --values \'{"max_connections": 200}\'.\n');
      const noEquals = await runCli(dir, ['configuration', 'create', 'g', '--datastore', 'postgresql', '--set', 'test_password:hunter2']);
      assert.equal(noEquals.stderr, 'Error: --set takes name=value, e.g. --set max_connections=200.\n');
      const unsupported = await runCli(dir, ['configuration', 'create', 'g', '--datastore', 'mysql', '--datastore-version', '8.0', '--set', 'x=1']);
      assert.match(unsupported.stderr, /Configuration groups are not supported for mysql 8\.0/);
      for (const r of [typo, word, flag, low, json, notJson, noEquals, unsupported]) assert.equal(r.code, 1);
      assert.deepEqual(groupWrites(), []);
    });

    it('never prints the value of a parameter named *password*, not even the one just given', async () => {
      const secret = 'S3cret-value-42';
      const created = await runCli(dir, ['configuration', 'create', 'sec', '--datastore', 'postgresql', '--set', `test_password=${secret}`]);
      assert.equal(created.code, 0, created.stderr);
      assert.equal((groupWrites()[0]!.body as any).configuration.values.test_password, secret);
      assert.match(created.stdout, /│ test_password +│ \*\*\* +│/);
      const shown = await runCli(dir, ['configuration', 'show', 'sec', '--json']);
      assert.equal((JSON.parse(shown.stdout) as any).values.test_password, '***');
      const updated = await runCli(dir, ['configuration', 'update', 'sec', '--set', `test_password=${secret}x`]);
      assert.equal(updated.code, 0, updated.stderr);
      assert.match(updated.stdout, /~ test_password: \*\*\* → \*\*\*\n/);
      for (const r of [created, shown, updated]) assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret));
    });
  });

  describe('list, show, instances', () => {
    it('lists every group across pages; with none, says how to create one', async () => {
      const empty = await runCli(dir, ['configuration', 'list']);
      assert.equal(empty.stdout, 'No configuration groups. Create one with `coffer configuration create`.\n');
      for (const name of ['a', 'b', 'c']) fake.configurations.addGroup(name, {});
      const result = await runCli(dir, ['configuration', 'list']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /ID +│ Name +│ Description +│ Datastore +│ Version/);
      assert.equal(result.stdout.match(/│ postgresql +│ 15 \(15\.18\)/g)?.length, 3, 'two pages of 2 followed');
    });

    it('show finds a group by ID or by name; an unknown or shared name says what to do', async () => {
      const id = fake.configurations.addGroup('tuned', { max_connections: 200, work_mem: 8192 });
      const instanceId = fake.addInstance('orders');
      fake.configurations.attach(instanceId, id);
      for (const ref of [id, 'tuned']) {
        const result = await runCli(dir, ['configuration', 'show', ref]);
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, new RegExp(`│ ID +│ ${id} +│`));
        assert.match(result.stdout, /│ Instances +│ 1 +│/);
        assert.match(result.stdout, /│ max_connections +│ 200 +│ yes +│\n.*│ work_mem +│ 8192 +│ +│/);
      }
      const unknown = await runCli(dir, ['configuration', 'show', 'nope']);
      assert.equal(unknown.stderr, 'Error: No configuration group has the ID or name "nope".\nSee them all with `coffer configuration list`.\n');
      const other = fake.configurations.addGroup('tuned', {});
      const shared = await runCli(dir, ['configuration', 'show', 'tuned']);
      assert.equal(shared.code, 1);
      assert.match(shared.stderr, /More than one configuration group is named "tuned": /);
      assert.ok(shared.stderr.includes(id) && shared.stderr.includes(other));
      assert.match(shared.stderr, /Use the ID instead\.\n$/);
    });

    it('instances lists the instances a group is attached to', async () => {
      const id = fake.configurations.addGroup('tuned', {});
      const none = await runCli(dir, ['configuration', 'instances', 'tuned']);
      assert.equal(none.stdout, 'No instance uses tuned. Attach it with `coffer configuration attach <instance> tuned`.\n');
      const orders = fake.addInstance('orders');
      fake.addInstance('other');
      fake.configurations.attach(orders, id);
      const result = await runCli(dir, ['configuration', 'instances', 'tuned']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`│ ${orders} +│ orders +│`));
      assert.doesNotMatch(result.stdout, /other/);
    });
  });

  describe('update', () => {
    it('adds and changes with PATCH (the others kept) and prints the diff, marking what needs a restart', async () => {
      const id = fake.configurations.addGroup('tuned', { max_connections: 100, work_mem: 4096, log_line_prefix: '%m' });
      const result = await runCli(dir, ['configuration', 'update', 'tuned', '--set', 'work_mem=8192', '--set', 'max_connections=200', '--set', 'autovacuum=false']);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(groupWrites(), [{ method: 'PATCH', body: { configuration: { values: { work_mem: 8192, max_connections: 200, autovacuum: false } } } }]);
      assert.equal(
        result.stdout,
        `Updated configuration group tuned (${id}):\n` +
          '  + autovacuum: false\n' +
          '  ~ max_connections: 100 → 200  (needs a restart)\n' +
          '  ~ work_mem: 4096 → 8192\n' +
          'No instance uses tuned yet; max_connections will take a restart once it is attached.\n',
      );
      assert.deepEqual(fake.configurations.groups.get(id)!.values, { max_connections: 200, work_mem: 8192, log_line_prefix: '%m', autovacuum: false });
    });

    it('--unset removes with a PUT of the whole set; --replace makes the given values the set; --name renames', async () => {
      const id = fake.configurations.addGroup('tuned', { max_connections: 100, work_mem: 4096, log_line_prefix: '%m' });
      const unset = await runCli(dir, ['configuration', 'update', 'tuned', '--unset', 'LOG_LINE_PREFIX', '--set', 'work_mem=1024']);
      assert.equal(unset.code, 0, unset.stderr);
      assert.deepEqual(groupWrites().at(-1), { method: 'PUT', body: { configuration: { values: { max_connections: 100, work_mem: 1024 } } } });
      assert.match(unset.stdout, /  - log_line_prefix: "%m" → default\n  ~ work_mem: 4096 → 1024\n/);

      const replace = await runCli(dir, ['configuration', 'update', id, '--replace', '--set', 'work_mem=2048', '--name', 'lean']);
      assert.equal(replace.code, 0, replace.stderr);
      assert.deepEqual(groupWrites().at(-1), { method: 'PUT', body: { configuration: { values: { work_mem: 2048 }, name: 'lean' } } });
      assert.equal(
        replace.stdout,
        `Updated configuration group lean (${id}), renamed from tuned:\n  - max_connections: 100 → default  (needs a restart)\n  ~ work_mem: 1024 → 2048\n` +
          'No instance uses lean yet; max_connections will take a restart once it is attached.\n',
      );
      assert.equal(fake.configurations.groups.get(id)!.name, 'lean');

      const described = await runCli(dir, ['configuration', 'update', 'lean', '--description', 'small reports']);
      assert.equal(described.code, 0, described.stderr);
      assert.deepEqual(groupWrites().at(-1), { method: 'PUT', body: { configuration: { values: { work_mem: 2048 }, description: 'small reports' } } });
      assert.equal(described.stdout, `Updated configuration group lean (${id}).\n`);
    });

    it('sends nothing when nothing changes, and refuses an --unset of a name the group does not set', async () => {
      fake.configurations.addGroup('tuned', { work_mem: 4096 });
      const same = await runCli(dir, ['configuration', 'update', 'tuned', '--set', 'work_mem=4096']);
      assert.equal(same.code, 0, same.stderr);
      assert.equal(same.stdout, 'Nothing changes: tuned already has these values.\n');
      const missing = await runCli(dir, ['configuration', 'update', 'tuned', '--unset', 'max_connections']);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr, 'Error: tuned does not set max_connections: nothing to unset.\nIt sets work_mem.\n');
      const nothing = await runCli(dir, ['configuration', 'update', 'tuned']);
      assert.equal(nothing.stderr, 'Error: Nothing to update.\nGive --set, --values, --unset, --replace, --name or --description.\n');
      const both = await runCli(dir, ['configuration', 'update', 'tuned', '--unset', 'work_mem', '--replace']);
      assert.match(both.stderr, /Give --unset or --replace, not both/);
      assert.deepEqual(groupWrites(), []);
    });

    it('refuses a whole-set PUT that would store the masked *** as a password, unless it is given again', async () => {
      const id = fake.configurations.addGroup('sec', { test_password: 'hidden-1', work_mem: 4096 });
      const refused = await runCli(dir, ['configuration', 'update', 'sec', '--unset', 'work_mem']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^Error: sec holds test_password, which the API does not show, and this change rewrites the whole group\.\nGive it again with --set test_password=\.\.\./);
      assert.deepEqual(groupWrites(), []);
      const given = await runCli(dir, ['configuration', 'update', 'sec', '--unset', 'work_mem', '--set', 'test_password=hidden-2']);
      assert.equal(given.code, 0, given.stderr);
      assert.deepEqual(fake.configurations.groups.get(id)!.values, { test_password: 'hidden-2' });
      // A PATCH keeps what it does not name, so the masked value is no danger there.
      const patched = await runCli(dir, ['configuration', 'update', 'sec', '--set', 'work_mem=64']);
      assert.equal(patched.code, 0, patched.stderr);
      assert.deepEqual(fake.configurations.groups.get(id)!.values, { test_password: 'hidden-2', work_mem: 64 });
    });

    it('follows every attached instance and says which one waits for a restart, with the command', async () => {
      const id = fake.configurations.addGroup('tuned', { work_mem: 4096 });
      const orders = fake.addInstance('orders');
      fake.configurations.attach(orders, id);
      const result = await runCli(dir, ['configuration', 'update', 'tuned', '--set', 'max_connections=300']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /^Applying to orders: ACTIVE \(\d+s\)\nApplying to orders: RESTART_REQUIRED \(\d+s\)\n$/);
      assert.match(
        result.stdout,
        new RegExp(`\\+ max_connections: 300  \\(needs a restart\\)\\norders is RESTART_REQUIRED: max_connections takes effect when the engine restarts\\. Restart it with:\\n  coffer instance restart ${orders}\\n$`),
      );

      const live = await runCli(dir, ['configuration', 'update', 'tuned', '--set', 'work_mem=8192']);
      assert.equal(live.code, 0, live.stderr);
      assert.match(live.stdout, /The change is live on orders; no restart is needed\.\n$/);

      const polls = fake.requestsTo('GET', api(`/instances/${orders}`)).length;
      const quick = await runCli(dir, ['configuration', 'update', 'tuned', '--set', 'work_mem=64', '--no-wait']);
      assert.equal(quick.code, 0, quick.stderr);
      assert.match(quick.stdout, /~ work_mem: 8192 → 64\nThe change is being applied to orders\. Follow it with `coffer instance show <instance>`\.\n$/);
      assert.equal(fake.requestsTo('GET', api(`/instances/${orders}`)).length, polls + 1, 'only the look before the change');
    });

    it('fails naming the instance whose engine refused the new values', async () => {
      const id = fake.configurations.addGroup('tuned', { work_mem: 4096 });
      fake.configurations.attach(fake.addInstance('broken-db'), id);
      const result = await runCli(dir, ['configuration', 'update', 'tuned', '--set', 'shared_buffers=2000000']);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /Error: The group changed, but not every instance took the new values:\n  broken-db \(.+\): shared_buffers: 2000000 is more than the flavor's memory allows/);
    });
  });

  describe('delete', () => {
    it('an attached group is refused with the way out; a detached one is deleted', async () => {
      const id = fake.configurations.addGroup('tuned', {});
      const orders = fake.addInstance('orders');
      fake.configurations.attach(orders, id);
      const refused = await runCli(dir, ['configuration', 'delete', 'tuned']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^Error: A configuration group cannot be deleted if it is associated with one or more non-terminated instances\./);
      assert.match(refused.stderr, /`coffer configuration instances tuned` lists them; detach it from each with `coffer configuration detach <instance>`\.\n$/);
      const detach = await runCli(dir, ['configuration', 'detach', 'orders']);
      assert.equal(detach.code, 0, detach.stderr);
      const deleted = await runCli(dir, ['configuration', 'delete', 'tuned']);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.equal(deleted.stdout, `Deleted configuration group tuned (${id}).\n`);
      assert.equal(fake.requestsTo('DELETE', api(`/configurations/${id}`)).length, 2);
      assert.equal(fake.configurations.groups.size, 0);
    });
  });

  it('every command has a --help that says what it does', async () => {
    const top = await runCli(dir, ['configuration', '--help']);
    for (const sub of ['create', 'list', 'show', 'update', 'delete', 'attach', 'detach', 'instances']) {
      assert.match(top.stdout, new RegExp(`\\n  ${sub}\\b`), sub);
    }
    const update = await runCli(dir, ['configuration', 'update', '--help']);
    assert.match(update.stdout, /--unset <name>/);
    assert.match(update.stdout, /--replace/);
    assert.match(update.stdout, /--set <name=value>/);
    const parameters = await runCli(dir, ['datastore', 'parameters', '--help']);
    assert.match(parameters.stdout, /Usage: coffer datastore parameters \[options\] <datastore> <version> \[name\]/);
    assert.match(parameters.stdout, /restart/);
  });
});
