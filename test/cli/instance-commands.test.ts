import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { loggedInFake, type FakeCoffer } from './fake-coffer.js';
import { createArgs, runCli, tempConfigDir } from './run-cli.js';

describe('coffer instance', () => {
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

  describe('create', () => {
    it('resolves the flavor by name, sends databases and users, waits through BUILD to ACTIVE and prints how to connect', async () => {
      const result = await runCli(dir, [
        'instance', 'create', 'orders',
        '--datastore', 'postgresql', '--datastore-version', '15',
        '--flavor', 'medium', '--size', '2',
        '--database', 'app', '--database', 'audit',
        '--user', 'alice:s3cr:et',
      ]);
      assert.equal(result.code, 0, result.stderr);
      const [create] = fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances`);
      assert.deepEqual(create?.body, {
        instance: {
          name: 'orders',
          flavorRef: '2',
          volume: { size: 2 },
          datastore: { type: 'postgresql', version: '15' },
          databases: [{ name: 'app' }, { name: 'audit' }],
          users: [{ name: 'alice', password: 's3cr:et', databases: [{ name: 'app' }, { name: 'audit' }] }],
        },
      });
      assert.equal(fake.requestsTo('GET', `/v1.0/${fake.projectId}/instances/`).length, 3, 'BUILD, BUILD, ACTIVE');

      // Not a terminal: one plain line per change of state.
      assert.match(result.stderr, /^Creating orders: BUILD \(\d+s\)\nCreating orders: ACTIVE \/ HEALTHY \(\d+s\)\n/);
      assert.match(result.stderr, /Instance orders \(.+\) is ACTIVE \/ HEALTHY after \d+\.\d s\.\n$/);
      assert.equal(
        result.stdout,
        'Connect to orders:\n' +
          '  host: 127.77.0.12\n' +
          '  port: 5432\n' +
          '  psql: psql -h 127.77.0.12 -p 5432 -U alice -d app\n' +
          '  url:  postgresql://alice@127.77.0.12:5432/app\n',
      );
      assert.ok(!result.stdout.includes('s3cr:et') && !result.stderr.includes('s3cr:et'));
    });

    it("shows the step and percent of the build when the API reports them, on one line whatever the step's text", async () => {
      const result = await runCli(dir, createArgs('steps', '--flavor', '1'));
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stderr.split('\n').map((line) => line.replace(/\(\d+s\)$/, '(Ns)'));
      assert.deepEqual(lines.slice(0, 5), [
        'Creating steps: BUILD (Ns)',
        'Creating steps: BUILD — initialising (10%) (Ns)',
        'Creating steps: BUILD — starting (40%) (Ns)',
        'Creating steps: BUILD — creating [2J databases and users (70%) (Ns)',
        'Creating steps: ACTIVE / HEALTHY (Ns)',
      ]);
      assert.ok(!result.stderr.includes('\x1b'), 'no escape reaches the terminal');
    });

    it('shows a spinner line rewritten in place on a terminal', async () => {
      const result = await runCli(dir, createArgs('spin', '--flavor', '1'), { stderrIsTty: true });
      assert.equal(result.code, 0, result.stderr);
      // Each poll redraws the one line (\r + erase line); the final message starts on a cleared line.
      const frames = result.stderr.split('\r\x1b[2K');
      assert.equal(frames[0], '');
      assert.deepEqual(
        frames.slice(1, 4).map((f) => f.replace(/\(\d+s\)$/, '(Ns)')),
        ['⠋ Creating spin: BUILD (Ns)', '⠙ Creating spin: BUILD (Ns)', '⠹ Creating spin: ACTIVE / HEALTHY (Ns)'],
      );
      assert.match(frames[4]!, /^Instance spin \(.+\) is ACTIVE \/ HEALTHY after \d+\.\d s\.\n$/);
      assert.equal(frames.length, 5);
      assert.match(result.stdout, /-U <user> -d postgres/);
      assert.match(result.stdout, /no --user was given/);
    });

    it('exits 1 with the fault and where to look when the instance goes to ERROR', async () => {
      const result = await runCli(dir, createArgs('broken-db'));
      assert.equal(result.code, 1);
      const id = fake.requestsTo('GET', `/v1.0/${fake.projectId}/instances/`)[0]!.path.split('/').pop();
      assert.match(
        result.stderr,
        new RegExp(
          `Error: Instance broken-db \\(${id}\\) failed: initdb failed: No space left on device\\n` +
            `See \`coffer instance show ${id}\` for details\\.\\n$`,
        ),
      );
      assert.equal(result.stdout, '');
    });

    it('gives up after --timeout, saying the instance is still building and how to check it', async () => {
      const started = Date.now();
      const result = await runCli(dir, createArgs('stuck-db', '--timeout', '0.3'));
      assert.equal(result.code, 1);
      assert.ok(Date.now() - started < 2000);
      assert.match(result.stderr, /Error: Instance stuck-db \(.+\) is still building after 0\.3 s \(BUILD\)\.\nCheck on it with `coffer instance show .+`, or wait longer with --timeout\.\n$/);
    });

    it('with --no-wait --json prints the API object as accepted and does not poll', async () => {
      const result = await runCli(dir, createArgs('quick', '--no-wait', '--json'));
      assert.equal(result.code, 0, result.stderr);
      const instance = JSON.parse(result.stdout);
      assert.equal(instance.name, 'quick');
      assert.equal(instance.status, 'BUILD');
      assert.equal(fake.requestsTo('GET', `/v1.0/${fake.projectId}/instances/`).length, 0);
    });

    it('prints the API error message for a rejected create, and rejects an unknown flavor before posting', async () => {
      const badDatastore = await runCli(dir, createArgs('x', '--datastore', 'oracle'));
      assert.equal(badDatastore.code, 1);
      assert.equal(badDatastore.stderr, "Error: Datastore 'oracle' cannot be found.\n");

      const badFlavor = await runCli(dir, createArgs('x', '--flavor', 'huge'));
      assert.equal(badFlavor.code, 1);
      assert.equal(badFlavor.stderr, 'Error: No flavor has the ID or name "huge".\nAvailable: small (1), medium (2).\n');
      assert.equal(fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances`).length, 1);
    });

    it('--configuration finds the group by name and sends its ID; show names it; an unknown group stops before the create', async () => {
      const group = fake.configurations.addGroup('tuned', { work_mem: 8192 });
      const result = await runCli(dir, createArgs('orders', '--configuration', 'tuned'));
      assert.equal(result.code, 0, result.stderr);
      const [create] = fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances`);
      assert.equal((create?.body as any).instance.configuration, group);
      const shown = await runCli(dir, ['instance', 'show', 'orders']);
      assert.match(shown.stdout, /│ Configuration +│ tuned +│/);

      const unknown = await runCli(dir, createArgs('other', '--configuration', 'nope'));
      assert.equal(unknown.code, 1);
      assert.equal(unknown.stderr, 'Error: No configuration group has the ID or name "nope".\nSee them all with `coffer configuration list`.\n');
      assert.equal(fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances`).length, 1);
    });

    it('rejects a --user without a password before calling the API', async () => {
      const result = await runCli(dir, createArgs('x', '--user', 'alice'));
      assert.equal(result.code, 1);
      assert.match(result.stderr, /--user <name:password>.*Expected name:password\./);
      assert.equal(fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances`).length, 0);
    });
  });

  describe('replicas', () => {
    it("creates a read replica of an instance by name, sending only what a replica may have, and shows what it replicates", async () => {
      const source = fake.addInstance('orders');
      const result = await runCli(dir, ['instance', 'create', 'orders-ro', '--replica-of', 'orders']);
      assert.equal(result.code, 0, result.stderr);
      const [create] = fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances`);
      assert.deepEqual(create?.body, { instance: { name: 'orders-ro', replica_of: source } });
      assert.match(result.stderr, /Instance orders-ro \(.+\) is ACTIVE \/ HEALTHY after/);
      const shown = await runCli(dir, ['instance', 'show', 'orders-ro']);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, new RegExp(`Replica of +│ ${source}`));
      const primary = await runCli(dir, ['instance', 'show', 'orders']);
      assert.match(primary.stdout, /Replicas +│ [0-9a-f-]{36}/);
    });

    it('asks for several replicas with --replica-count, names them <name>-1..n', async () => {
      const source = fake.addInstance('orders');
      const result = await runCli(dir, ['instance', 'create', 'ro', '--replica-of', source, '--replica-count', '2', '--no-wait']);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances`)[0]?.body, { instance: { name: 'ro', replica_of: source, replica_count: 2 } });
      assert.match(result.stdout, /Creating instance ro-2 \(/);
    });

    it('refuses what a replica takes from its source, and a create with neither --flavor nor --replica-of, before any request', async () => {
      fake.addInstance('orders');
      const withFlavor = await runCli(dir, ['instance', 'create', 'ro', '--replica-of', 'orders', '--flavor', 'small', '--size', '1']);
      assert.equal(withFlavor.code, 1);
      assert.match(withFlavor.stderr, /--flavor, --size cannot be given with --replica-of: a replica takes its source's\./);
      const bare = await runCli(dir, ['instance', 'create', 'x', '--datastore', 'postgresql']);
      assert.equal(bare.code, 1);
      assert.match(bare.stderr, /Give --flavor .*or --replica-of/);
      const count = await runCli(dir, [...createArgs('y'), '--replica-count', '2']);
      assert.equal(count.code, 1);
      assert.match(count.stderr, /--replica-count needs --replica-of/);
      assert.equal(fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances`).length, 0);
    });

    it('detaches a replica and waits until it is standalone; a non-replica is refused as the API refuses it', async () => {
      const source = fake.addInstance('orders');
      await runCli(dir, ['instance', 'create', 'orders-ro', '--replica-of', 'orders']);
      const result = await runCli(dir, ['instance', 'detach', 'orders-ro']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^Instance orders-ro is a standalone instance now\. \(ACTIVE \/ HEALTHY, [\d.]+ s\)\n$/);
      const put = fake.requestsTo('PUT', `/v1.0/${fake.projectId}/instances/`);
      assert.deepEqual(put.at(-1)?.body, { instance: { replica_of: null } });
      const refused = await runCli(dir, ['instance', 'detach', source]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /is not a replica/);
    });
  });

  describe('list, show and delete', () => {
    it('list follows pagination and prints the API objects with --json, or a table', async () => {
      const ids = ['a', 'b', 'c', 'd', 'e'].map((n) => fake.addInstance(`db-${n}`));
      const json = await runCli(dir, ['instance', 'list', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const listed = JSON.parse(json.stdout) as Array<{ id: string; name: string }>;
      assert.deepEqual(listed.map((i) => i.id).sort(), [...ids].sort());
      assert.equal(fake.requestsTo('GET', `/v1.0/${fake.projectId}/instances`).length, 3, 'three pages of two');

      const table = await runCli(dir, ['instance', 'list']);
      assert.equal(table.code, 0, table.stderr);
      const lines = table.stdout.split('\n');
      assert.match(lines[1]!, /│ ID +│ Name +│ Datastore +│ Version +│ Status +│ Operating status +│ Address +│ Size +│/);
      assert.match(table.stdout, new RegExp(`│ ${ids[0]} │ db-a +│ postgresql +│ 15 +│ ACTIVE +│ HEALTHY +│ 127\\.77\\.0\\.12 │ 1 GB │`));
    });

    it('list says so when there are no instances', async () => {
      const result = await runCli(dir, ['instance', 'list']);
      assert.equal(result.stdout, 'No instances. Create one with `coffer instance create`.\n');
    });

    it('show finds an instance by ID or by name and includes the fault', async () => {
      const id = fake.addInstance('ledger', [
        { status: 'ERROR', operating_status: '', fault: { message: 'guest timed out', created: '2024-05-01T10:05:00', details: null } },
      ]);
      const byName = await runCli(dir, ['instance', 'show', 'ledger', '--json']);
      assert.equal(byName.code, 0, byName.stderr);
      assert.equal(JSON.parse(byName.stdout).id, id);

      const byId = await runCli(dir, ['instance', 'show', id]);
      assert.equal(byId.code, 0, byId.stderr);
      assert.match(byId.stdout, /│ Field +│ Value +│/);
      assert.match(byId.stdout, /│ Status +│ ERROR +│/);
      assert.match(byId.stdout, /│ Fault +│ guest timed out +│/);
      assert.match(byId.stdout, /│ Fault time +│ 2024-05-01 10:05:00 UTC +│/, 'Trove gives UTC without saying so');
      assert.match(byId.stdout, /│ Created +│ 2024-05-01 10:00:00 UTC +│/);
      assert.match(byId.stdout, /│ Flavor +│ small \(1\) +│/);
      assert.equal(JSON.parse(byName.stdout).created, '2024-05-01T10:00:00', '--json keeps the API object as it is');
    });

    it("metrics prints what the engine last measured, says when it has not been measured yet, and gives the API object with --json", async () => {
      const id = fake.addInstance('measured');
      const waiting = await runCli(dir, ['instance', 'metrics', 'measured']);
      assert.equal(waiting.code, 0, waiting.stderr);
      assert.match(waiting.stdout, /measured has not been measured yet/);
      const values = {
        operating_status: 'HEALTHY', up: true, measured: '2026-12-05T21:40:07', connections: 3, database_bytes: 8_110_755,
        operations_total: 48_213, cache_hit_ratio: 0.9987, replication_lag_seconds: 0.5,
      };
      fake.metrics.set(id, values);
      const table = await runCli(dir, ['instance', 'metrics', id]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /│ Measured +│ 2026-12-05 21:40:07 UTC +│/);
      assert.match(table.stdout, /│ Connections +│ 3 +│/);
      assert.match(table.stdout, /│ Data +│ 8\.1 MB +│/);
      assert.match(table.stdout, /│ Operations since start +│ 48213 +│/);
      assert.match(table.stdout, /│ Cache hit ratio +│ 99\.9% +│/);
      assert.match(table.stdout, /│ Replication lag +│ 0\.5 s +│/);
      assert.deepEqual(JSON.parse((await runCli(dir, ['instance', 'metrics', 'measured', '--json'])).stdout), { instance_id: id, ...values });
    });

    it('create refuses a name another instance has, naming its id, unless --allow-duplicate-name', async () => {
      const existing = fake.addInstance('twice');
      const refused = await runCli(dir, createArgs('twice'));
      assert.equal(refused.code, 1);
      assert.equal(
        refused.stderr,
        `Error: An instance named "twice" already exists (${existing}).\n` +
          'Choose another name, or give --allow-duplicate-name (commands then need the ID instead of the name).\n',
      );
      assert.equal(fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances`).length, 0, 'nothing was created');

      const allowed = await runCli(dir, createArgs('twice', '--allow-duplicate-name', '--no-wait'));
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.equal(fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances`).length, 1);
    });

    it('show names both ids when a name is ambiguous, and says when nothing matches', async () => {
      const first = fake.addInstance('twin');
      const second = fake.addInstance('twin');
      const ambiguous = await runCli(dir, ['instance', 'show', 'twin']);
      assert.equal(ambiguous.code, 1);
      assert.match(ambiguous.stderr, /^Error: More than one instance is named "twin": /);
      assert.ok(ambiguous.stderr.includes(first) && ambiguous.stderr.includes(second));
      assert.match(ambiguous.stderr, /\nUse the ID instead\.\n$/);

      const missing = await runCli(dir, ['instance', 'show', 'nope']);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr, 'Error: No instance has the ID or name "nope".\nSee them all with `coffer instance list`.\n');
    });

    it('delete by name sends DELETE for the id and polls until the API answers 404 (--wait is still accepted)', async () => {
      const id = fake.addInstance('scratch');
      const result = await runCli(dir, ['instance', 'delete', 'scratch']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(fake.requestsTo('DELETE', `/v1.0/${fake.projectId}/instances/${id}`).length, 1);
      assert.match(result.stderr, /^Deleting scratch: SHUTDOWN \(\d+s\)\n$/);
      assert.equal(result.stdout, `Instance scratch (${id}) is deleted.\n`);
      const show = await runCli(dir, ['instance', 'show', id]);
      assert.equal(show.code, 1);

      const againId = fake.addInstance('scratch3');
      const withWait = await runCli(dir, ['instance', 'delete', againId, '--wait']);
      assert.equal(withWait.code, 0, withWait.stderr);
      assert.equal(withWait.stdout, `Instance scratch3 (${againId}) is deleted.\n`);
    });

    it('delete --no-wait returns once the API accepted it', async () => {
      const id = fake.addInstance('scratch2');
      const result = await runCli(dir, ['instance', 'delete', id, '--no-wait']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `Deleting instance scratch2 (${id}). Follow it with \`coffer instance show ${id}\`.\n`);
      assert.equal(result.stderr, '');
    });
  });

  describe('flavor list and datastore list', () => {
    it('print tables, or the API objects with --json', async () => {
      const flavors = await runCli(dir, ['flavor', 'list']);
      assert.equal(flavors.code, 0, flavors.stderr);
      assert.match(flavors.stdout, /│ ID │ Name +│ RAM \(MB\) │ vCPUs │ Disk \(GB\) │/);
      assert.match(flavors.stdout, /│ 2 +│ medium │ 2048 +│ 2 +│ 0 +│/);
      assert.deepEqual(JSON.parse((await runCli(dir, ['flavor', 'list', '--json'])).stdout), fake.flavors);

      const datastores = await runCli(dir, ['datastore', 'list']);
      assert.equal(datastores.code, 0, datastores.stderr);
      assert.match(datastores.stdout, /│ postgresql │ 15 +│ 15\.18 +│ v15 +│ yes +│/);
      assert.match(datastores.stdout, /│ postgresql │ 16 +│ 16\.4 +│ v16 +│ +│ +│/);
      assert.match(datastores.stdout, /│ mysql +│ 8\.0 \(inactive\) │ 8\.0 +│ v80 +│ +│ no MySQL server found: install mysql-community-server │/);
      assert.deepEqual(JSON.parse((await runCli(dir, ['datastore', 'list', '--json'])).stdout), fake.datastores);
    });
  });
});
