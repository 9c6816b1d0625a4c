import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { loggedInFake, type FakeCoffer } from './fake-coffer.js';
import { createArgs, runCli, tempConfigDir } from './run-cli.js';

// coffer backup create|list|show|delete, backup strategy set|list|clear, backup schedule
// set|show|clear and instance create
// --from-backup against the stand-in API: the requests each sends, what each prints, how it fails
// and what it says to do next.

describe('coffer backup', () => {
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
  const backupPosts = () => fake.requestsTo('POST', api('/backups')).map((r) => r.body);
  /** stderr's lines with the elapsed seconds made stable */
  const lines = (text: string) => text.split('\n').map((line) => line.replace(/\(\d+s\)$/, '(Ns)').replace(/after \d+\.\d s/, 'after N s'));
  const mariadb = { datastore: { type: 'mariadb', version: '10.11', version_number: '10.11.6' } };

  describe('create', () => {
    it("finds the instance by name, sends Trove's body, shows the instance's progress until COMPLETED and prints how to restore", async () => {
      const id = fake.addInstance('orders');
      const result = await runCli(dir, ['backup', 'create', 'orders', '--name', 'nightly-steps', '--description', 'before the upgrade']);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(backupPosts(), [{ backup: { name: 'nightly-steps', instance: id, description: 'before the upgrade' } }]);
      const [backupId] = fake.backups.backups.keys();
      assert.deepEqual(lines(result.stderr), [
        'Backing up orders: NEW (Ns)',
        'Backing up orders: BUILDING — backing up (0%) (Ns)',
        'Backing up orders: BUILDING — backing up (40%) (Ns)',
        'Backing up orders: BUILDING — backing up (80%), 12 MB stored (Ns)',
        'Backing up orders: COMPLETED (Ns)',
        `Backup nightly-steps (${backupId}) of orders is COMPLETED after N s.`,
        '',
      ]);
      assert.equal(
        result.stdout,
        `Backup nightly-steps (${backupId}) of orders: full, 0.02 GB.\n` +
          'Restore it into a new instance with `coffer instance create <new name> --from-backup nightly-steps --flavor 1 --size 1`.\n',
      );
    });

    it('on a terminal, redraws one line and leaves it clean for the result', async () => {
      fake.addInstance('orders');
      const result = await runCli(dir, ['backup', 'create', 'orders', '--name', 'nightly'], { stderrIsTty: true });
      assert.equal(result.code, 0, result.stderr);
      const frames = result.stderr.split('\r\x1b[2K');
      assert.deepEqual(
        frames.slice(1, 4).map((f) => f.replace(/\(\d+s\)$/, '(Ns)')),
        ['⠋ Backing up orders: NEW (Ns)', '⠙ Backing up orders: BUILDING — backing up (50%) (Ns)', '⠹ Backing up orders: COMPLETED (Ns)'],
      );
      assert.match(frames[4]!, /^Backup nightly \(.+\) of orders is COMPLETED after \d+\.\d s\.\n$/);
      assert.match(result.stdout, /: full, < 0\.01 GB\.\n/, 'a small backup is not shown as empty');
    });

    it('exits 1 when the backup FAILED, with its reason and what to do next', async () => {
      fake.addInstance('orders');
      const result = await runCli(dir, ['backup', 'create', 'orders', '--name', 'broken-nightly']);
      assert.equal(result.code, 1);
      const [backupId] = fake.backups.backups.keys();
      assert.equal(result.stdout, '');
      assert.match(
        result.stderr,
        new RegExp(
          `\\nError: Backup broken-nightly \\(${backupId}\\) of orders failed: pg_basebackup: could not connect to the server\\n` +
            'Check that `coffer instance show orders` says ACTIVE / HEALTHY, then try again\\. ' +
            `The failed backup holds no data but counts against your backups quota: remove it with \`coffer backup delete ${backupId}\`\\.\\n$`,
        ),
      );
    });

    it('gives up after --timeout, saying where the backup was and that it goes on', async () => {
      fake.addInstance('orders');
      const result = await runCli(dir, ['backup', 'create', 'orders', '--name', 'stuck', '--timeout', '0.3']);
      assert.equal(result.code, 1);
      const [backupId] = fake.backups.backups.keys();
      assert.match(
        result.stderr,
        new RegExp(
          `Error: Backup stuck \\(${backupId}\\) of orders is still running after 0\\.3 s \\(BUILDING — backing up \\(5%\\)\\)\\.\\n` +
            `It goes on without the CLI: check on it with \`coffer backup show ${backupId}\`, or wait longer with --timeout\\.\\n$`,
        ),
      );
    });

    it('--no-wait returns at once (--json: the API object as accepted) without polling', async () => {
      fake.addInstance('orders');
      const json = await runCli(dir, ['backup', 'create', 'orders', '--name', 'quick', '--no-wait', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const printed = JSON.parse(json.stdout) as { status: string; name: string; id: string };
      assert.equal(printed.status, 'NEW');
      assert.equal(fake.requestsTo('GET', api('/backups/')).length, 0);
      fake.addInstance('ledger');
      const text = await runCli(dir, ['backup', 'create', 'ledger', '--name', 'other', '--no-wait']);
      assert.match(text.stdout, /^Backing up ledger as other \(.+\): NEW\.\nFollow it with `coffer backup show .+`\.\n$/);
      assert.equal(text.stderr, '');
    });

    it('--incremental and --parent (by name) ask for an incremental backup; where the engine has none, says to take a full one', async () => {
      const maria = fake.addInstance('maria', undefined, mariadb);
      const base = fake.backups.addBackup('base', maria);
      const inc = await runCli(dir, ['backup', 'create', 'maria', '--name', 'inc1', '--incremental']);
      assert.equal(inc.code, 0, inc.stderr);
      assert.match(inc.stdout, /^Backup inc1 \(.+\) of maria: incremental, < 0\.01 GB\.\n/);
      const parent = await runCli(dir, ['backup', 'create', 'maria', '--name', 'inc2', '--parent', 'base']);
      assert.equal(parent.code, 0, parent.stderr);
      assert.deepEqual(backupPosts(), [
        { backup: { name: 'inc1', instance: maria, incremental: true } },
        { backup: { name: 'inc2', instance: maria, parent_id: base } },
      ]);

      const orders = fake.addInstance('orders');
      const noneYet = await runCli(dir, ['backup', 'create', 'orders', '--name', 'first', '--incremental']);
      assert.match(noneYet.stdout, /: full, /, 'without a completed backup to follow, --incremental takes a full one');
      assert.deepEqual(backupPosts()[2], { backup: { name: 'first', instance: orders, incremental: true } });
      const refused = await runCli(dir, ['backup', 'create', 'orders', '--name', 'inc3', '--incremental']);
      assert.equal(refused.code, 1);
      assert.equal(
        refused.stderr,
        'Error: Incremental backups are not supported for datastore postgresql yet: take a full backup (without incremental or parent_id).\n' +
          'Leave out --incremental and --parent: a full backup of orders works.\n',
      );
      const otherParent = await runCli(dir, ['backup', 'create', 'orders', '--name', 'inc4', '--parent', base]);
      assert.equal(otherParent.code, 1);
      assert.match(otherParent.stderr, /is a backup of another instance.*\nGive a COMPLETED backup of orders as --parent \(`coffer backup list --instance orders`\), or --incremental alone/);
    });

    it('says what to do next when the API refuses: no backups for the engine (501), the quota (413), a backup running (422)', async () => {
      fake.addInstance('cache', undefined, { datastore: { type: 'redis', version: '7', version_number: '7.0.15' } });
      const redis = await runCli(dir, ['backup', 'create', 'cache', '--name', 'b']);
      assert.equal(redis.code, 1);
      assert.equal(
        redis.stderr,
        "Error: Backups are not supported for datastore redis.\nCoffer cannot back up redis instances yet: export the data with the engine's own client instead.\n",
      );

      const orders = fake.addInstance('orders');
      fake.backups.addBackup('old', orders);
      fake.backups.quota = 1;
      const quota = await runCli(dir, ['backup', 'create', 'orders', '--name', 'b']);
      assert.equal(quota.code, 1);
      assert.match(quota.stderr, /^Error: Quota exceeded for resources: \['backups'\]\. backups: limit 1, in use 1, this request adds 1\. An admin can raise/);
      assert.match(
        quota.stderr,
        /\nDelete backups you no longer need \(FAILED ones count too\): `coffer backup list` shows them, `coffer backup delete <backup>` removes one with its incrementals\.\n$/,
      );

      fake.backups.quota = 10;
      assert.equal((await runCli(dir, ['backup', 'create', 'orders', '--name', 'stuck', '--no-wait'])).code, 0);
      const busy = await runCli(dir, ['backup', 'create', 'orders', '--name', 'second']);
      assert.equal(busy.code, 1);
      assert.equal(
        busy.stderr,
        `Error: Instance ${orders} is not currently available for an action to be performed (instance status was BACKUP).\n` +
          'A backup of orders is running: wait until it ends (`coffer backup list --instance orders`), then try again.\n',
      );
      const shown = await runCli(dir, ['instance', 'show', 'orders']);
      assert.match(shown.stdout, /│ Status +│ BACKUP +│/);
    });

    it('refuses before sending anything: an unknown instance, a name in use, a container name the API would refuse', async () => {
      const unknown = await runCli(dir, ['backup', 'create', 'nope', '--name', 'b']);
      assert.equal(unknown.code, 1);
      assert.equal(unknown.stderr, 'Error: No instance has the ID or name "nope".\nSee them all with `coffer instance list`.\n');

      const orders = fake.addInstance('orders');
      const existing = fake.backups.addBackup('nightly', orders);
      const twice = await runCli(dir, ['backup', 'create', 'orders', '--name', 'nightly']);
      assert.equal(twice.code, 1);
      assert.equal(
        twice.stderr,
        `Error: A backup named "nightly" already exists (${existing}).\n` +
          'Choose another name, or give --allow-duplicate-name (commands then need the ID instead of the name).\n',
      );
      const container = await runCli(dir, ['backup', 'create', 'orders', '--name', 'b', '--container', 'x; rm -rf /']);
      assert.equal(container.code, 1);
      assert.match(container.stderr, /option '--container <name>' argument 'x; rm -rf \/' is invalid\. Expected 1 to 128 letters, digits/);
      const noName = await runCli(dir, ['backup', 'create', 'orders']);
      assert.equal(noName.code, 1);
      assert.match(noName.stderr, /required option '--name <name>' not specified/);
      assert.equal(backupPosts().length, 0);

      const allowed = await runCli(dir, ['backup', 'create', 'orders', '--name', 'nightly', '--allow-duplicate-name', '--container', 'team-a']);
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.match(allowed.stdout, /--from-backup [0-9a-f-]{36} /, 'the restore command names the ID when the name is shared');
      assert.equal(fake.backups.containerOf([...fake.backups.backups.keys()][1]!), 'team-a');
    });
  });

  describe('import', () => {
    it("sends Trove's restore_from with the version's ID, follows it until RESTORED and prints how to restore", async () => {
      const result = await runCli(dir, ['backup', 'import', 'database_backups/copied/orders.zst.enc', '--name', 'from-region-b', '--datastore', 'postgresql', '--size', '0.02']);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(backupPosts(), [
        { backup: { name: 'from-region-b', restore_from: { remote_location: 'database_backups/copied/orders.zst.enc', local_datastore_version_id: 'v15', size: 0.02 } } },
      ]);
      const [backupId] = fake.backups.backups.keys();
      assert.deepEqual(lines(result.stderr), [
        'Importing database_backups/copied/orders.zst.enc: NEW (Ns)',
        'Importing database_backups/copied/orders.zst.enc: RESTORED (Ns)',
        `Backup from-region-b (${backupId}) is RESTORED after N s.`,
        '',
      ]);
      assert.equal(
        result.stdout,
        `Backup from-region-b (${backupId}) imported from database_backups/copied/orders.zst.enc: 0.02 GB.\n` +
          'Restore it into a new instance with `coffer instance create <new name> --from-backup from-region-b --flavor <flavor> --size <GB>`.\n',
      );
    });

    it('takes a version by name; an unknown datastore or version is refused before any request', async () => {
      const ok = await runCli(dir, ['backup', 'import', 'database_backups/x', '--name', 'b16', '--datastore', 'postgresql', '--datastore-version', '16', '--size', '0.02', '--no-wait']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(fake.backups.imports[0]?.local_datastore_version_id, 'v16');
      assert.match(ok.stdout, /^Importing database_backups\/x as b16 \(.+\): NEW\.\nFollow it with `coffer backup show .+`\.\n$/);
      const unknown = await runCli(dir, ['backup', 'import', 'database_backups/x', '--name', 'b', '--datastore', 'postgresql', '--datastore-version', '9', '--size', '0']);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /Error: Datastore postgresql has no version 9\.\nGive --datastore-version, one of: 15, 16\.\n$/);
      const bad = await runCli(dir, ['backup', 'import', 'database_backups/x', '--name', 'b', '--datastore', 'postgresql', '--size', '-1']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /Expected a number \(0 or more\)/);
      assert.equal(fake.backups.imports.length, 1);
    });

    it('exits 1 when the import FAILED, with the reason and what to do next; the API’s refusals say what to fix', async () => {
      const failed = await runCli(dir, ['backup', 'import', 'database_backups/foreign.zst.enc', '--name', 'broken-import', '--datastore', 'postgresql', '--size', '0.02']);
      assert.equal(failed.code, 1);
      const [backupId] = fake.backups.backups.keys();
      assert.match(
        failed.stderr,
        new RegExp(
          `\\nError: Backup broken-import \\(${backupId}\\) could not be imported: The object cannot be imported: The backup cannot be decrypted with this project's key, .+\\n` +
            `The object stays where it is\\. Remove the failed record \\(it counts against your backups quota\\) with \\\`coffer backup delete ${backupId}\\\`\\.\\n$`,
        ),
      );
      const outside = await runCli(dir, ['backup', 'import', 'http://169.254.169.254/x', '--name', 'b', '--datastore', 'postgresql', '--size', '0.02']);
      assert.equal(outside.code, 1);
      assert.match(outside.stderr, /is not an object in one of your project's backup containers .*\nCopy the object into one of your backup containers first/);
      const size = await runCli(dir, ['backup', 'import', 'database_backups/x', '--name', 'b', '--datastore', 'postgresql', '--size', '3']);
      assert.match(size.stderr, /does not match the object's size.*\nGive --size as the object's size in GB/);
    });
  });

  describe('list and show', () => {
    it('lists every page, newest first, with the instance by name (by ID once it is gone), type, size and status', async () => {
      const orders = fake.addInstance('orders');
      const full = fake.backups.addBackup('full-1', orders);
      fake.backups.addBackup('inc-1', orders, { parent_id: full });
      fake.backups.addBackup('failed-1', orders, { status: 'FAILED', fail_reason: 'disk full' });
      const gone = fake.backups.addBackup('of-a-deleted-one', 'b6c2c4a4-0000-4000-8000-000000000001');
      const result = await runCli(dir, ['backup', 'list']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(fake.requestsTo('GET', api('/backups')).length, 3, 'pages of two by offset, the last one empty');
      const rows = result.stdout.split('\n');
      assert.match(rows[1]!, /│ ID +│ Name +│ Instance +│ Status +│ Type +│ Size +│ Created +│/);
      const names = rows.slice(3, -2).map((l) => l.split('│')[2]!.trim());
      assert.deepEqual(names, ['of-a-deleted-one', 'failed-1', 'inc-1', 'full-1']);
      assert.match(result.stdout, new RegExp(`│ ${full} │ full-1 +│ orders +│ COMPLETED +│ full +│ 0\\.01 GB │ 2024-05-01 10:01:00 UTC │`));
      assert.match(result.stdout, /│ inc-1 +│ orders +│ COMPLETED +│ incremental │/);
      assert.match(result.stdout, /│ failed-1 +│ orders +│ FAILED +│ full +│ +│/);
      assert.match(result.stdout, new RegExp(`│ ${gone} │ of-a-deleted-one │ b6c2c4a4-0000-4000-8000-000000000001 │`));
      const json = JSON.parse((await runCli(dir, ['backup', 'list', '--json'])).stdout) as Array<{ id: string }>;
      assert.equal(json.length, 4);
    });

    it('--instance takes a name, or the ID of a deleted instance, and filters on the API; empty lists say how to take one', async () => {
      const orders = fake.addInstance('orders');
      const other = fake.addInstance('other');
      fake.backups.addBackup('mine', orders);
      fake.backups.addBackup('theirs', other);
      fake.backups.addBackup('orphan', 'b6c2c4a4-0000-4000-8000-000000000002');
      const byName = await runCli(dir, ['backup', 'list', '--instance', 'orders', '--json']);
      assert.equal(byName.code, 0, byName.stderr);
      assert.deepEqual((JSON.parse(byName.stdout) as Array<{ name: string }>).map((b) => b.name), ['mine']);
      assert.ok(fake.requestsTo('GET', api(`/backups?instance_id=${orders}`)).length > 0);
      const byGoneId = await runCli(dir, ['backup', 'list', '--instance', 'b6c2c4a4-0000-4000-8000-000000000002', '--json']);
      assert.deepEqual((JSON.parse(byGoneId.stdout) as Array<{ name: string }>).map((b) => b.name), ['orphan']);

      const fresh = fake.addInstance('fresh');
      assert.ok(fresh);
      const typo = await runCli(dir, ['backup', 'list', '--instance', 'ordres']);
      assert.equal(typo.code, 0, typo.stderr);
      assert.equal(
        typo.stdout,
        'No instance has the ID or name "ordres", and no backup was taken of an instance with that ID. See them all with `coffer backup list`.\n',
      );
      const none = await runCli(dir, ['backup', 'list', '--instance', 'fresh']);
      assert.equal(none.stdout, 'No backups of fresh. Take one with `coffer backup create fresh --name <name>`.\n');
      await runCli(dir, ['backup', 'delete', 'mine']);
      await runCli(dir, ['backup', 'delete', 'theirs']);
      await runCli(dir, ['backup', 'delete', 'orphan']);
      const empty = await runCli(dir, ['backup', 'list']);
      assert.equal(empty.stdout, 'No backups. Take one with `coffer backup create <instance> --name <name>`.\n');
    });

    it("--all-projects adds the project; a member is told it is for admins", async () => {
      const orders = fake.addInstance('orders');
      fake.backups.addBackup('mine', orders);
      fake.backups.addBackup('elsewhere', orders, { project_id: 'another-project' });
      const own = await runCli(dir, ['backup', 'list', '--json']);
      assert.deepEqual((JSON.parse(own.stdout) as Array<{ name: string }>).map((b) => b.name), ['mine']);
      const all = await runCli(dir, ['backup', 'list', '--all-projects']);
      assert.equal(all.code, 0, all.stderr);
      assert.match(all.stdout, /│ Created +│ Project +│/);
      assert.match(all.stdout, /│ elsewhere +│ orders +│ COMPLETED +│ full +│ 0\.01 GB │ .+ │ another-project +│/);
      fake.backups.allProjects = false;
      const member = await runCli(dir, ['backup', 'list', '--all-projects']);
      assert.equal(member.code, 1);
      assert.equal(
        member.stderr,
        "Error: Policy doesn't allow backup:index:all_projects to be performed.\nOnly admins see every project's backups: leave out --all-projects.\n",
      );
    });

    it('show finds a backup by name or ID: its instance and parent by name, and the command that restores it', async () => {
      const maria = fake.addInstance('maria', undefined, { ...mariadb, flavor: { id: '2' }, volume: { size: 3 } });
      const full = fake.backups.addBackup('full-1', maria);
      const inc = fake.backups.addBackup('inc-1', maria, { parent_id: full, description: 'after the import', size: 0.25 });
      const result = await runCli(dir, ['backup', 'show', 'inc-1']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`│ ID +│ ${inc} +│`));
      assert.match(result.stdout, /│ Description +│ after the import +│/);
      assert.match(result.stdout, /│ Status +│ COMPLETED +│/);
      assert.match(result.stdout, /│ Type +│ incremental +│/);
      assert.match(result.stdout, new RegExp(`│ Parent +│ full-1 \\(${full}\\) +│`));
      assert.match(result.stdout, new RegExp(`│ Instance +│ maria \\(${maria}\\) +│`));
      assert.match(result.stdout, /│ Datastore +│ mariadb 10\.11 +│/);
      assert.match(result.stdout, /│ Size +│ 0\.25 GB +│/);
      assert.match(result.stdout, /│ Created +│ 2024-05-01 10:02:00 UTC +│/);
      assert.ok(!result.stdout.includes('Fail reason'));
      assert.match(
        result.stdout,
        new RegExp(`\nRestore it into a new instance with \`coffer instance create <new name> --from-backup ${inc} --flavor 2 --size 3\`\\.\nCheck that it restores with \`coffer backup verify ${inc}\`\\.\n$`),
      );
      const byId = await runCli(dir, ['backup', 'show', inc, '--json']);
      assert.equal(JSON.parse(byId.stdout).name, 'inc-1');
    });

    it("show of a running backup gives the progress its instance shows, and no next step yet", async () => {
      fake.addInstance('orders');
      assert.equal((await runCli(dir, ['backup', 'create', 'orders', '--name', 'stuck', '--no-wait'])).code, 0);
      const [id] = fake.backups.backups.keys();
      // each GET of it moves the fake's backup along: NEW, then BUILDING
      const first = await runCli(dir, ['backup', 'show', id!]);
      assert.match(first.stdout, /│ Status +│ NEW +│\n│ Type/);
      const second = await runCli(dir, ['backup', 'show', id!]);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /│ Status +│ BUILDING +│\n│ Progress +│ backing up \(5%\) +│/);
      assert.match(second.stdout, /│ Project +│ .+ │\n└.+┘\n$/);
    });

    it('show of a failed backup gives its reason and how to free its quota slot; ambiguous and unknown names say what to do', async () => {
      const orders = fake.addInstance('orders');
      const failed = fake.backups.addBackup('failed-1', orders, { status: 'FAILED', fail_reason: 'pg_basebackup: could not connect' });
      const result = await runCli(dir, ['backup', 'show', 'failed-1']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /│ Status +│ FAILED +│\n│ Fail reason +│ pg_basebackup: could not connect +│/);
      assert.match(result.stdout, new RegExp(`It holds no data but counts against your backups quota: remove it with \`coffer backup delete ${failed}\`\\.\n$`));

      const first = fake.backups.addBackup('twin', orders);
      const second = fake.backups.addBackup('twin', orders);
      const ambiguous = await runCli(dir, ['backup', 'show', 'twin']);
      assert.equal(ambiguous.code, 1);
      assert.ok(ambiguous.stderr.includes(first) && ambiguous.stderr.includes(second));
      assert.match(ambiguous.stderr, /^Error: More than one backup is named "twin": .*\nUse the ID instead\.\n$/);
      const unknown = await runCli(dir, ['backup', 'show', 'nope']);
      assert.equal(unknown.stderr, 'Error: No backup has the ID or name "nope".\nSee them all with `coffer backup list`.\n');
    });
  });

  describe('verify', () => {
    const verifyPosts = (id: string) => fake.requestsTo('POST', api(`/backups/${id}/action`)).map((r) => r.body);

    it('asks for the verification, shows each step until it PASSED, then what was checked and how to restore', async () => {
      const orders = fake.addInstance('orders', undefined, { flavor: { id: '2' }, volume: { size: 3 } });
      const id = fake.backups.addBackup('nightly', orders);
      const result = await runCli(dir, ['backup', 'verify', 'nightly']);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(verifyPosts(id), [{ verify: {} }]);
      assert.deepEqual(lines(result.stderr), [
        'Verifying nightly: RUNNING — waiting for a taskmanager (Ns)',
        'Verifying nightly: RUNNING — restoring it into a scratch instance (Ns)',
        "Verifying nightly: RUNNING — running the engine's own check of the data (Ns)",
        `The verification of backup nightly (${id}) PASSED after N s.`,
        '',
      ]);
      assert.equal(
        result.stdout,
        `Backup nightly (${id}) PASSED: Restored into a scratch instance; the engine's own check found no errors.\n` +
          'Checked: databases 2, tables 3, indexes 1, errors 0.\n' +
          `Restore it into a new instance with \`coffer instance create <new name> --from-backup ${id} --flavor 2 --size 3\`.\n`,
      );
      const shown = await runCli(dir, ['backup', 'show', 'nightly']);
      assert.match(shown.stdout, /│ Verification +│ PASSED at 2024-05-02 09:01:00 UTC \(databases 2, tables 3, indexes 1, errors 0\) +│/);
      assert.match(shown.stdout, /│ Verification says +│ Restored into a scratch instance; the engine's own check found no errors\. +│/);
    });

    it('exits 1 when it FAILED, with what the check found and what to do instead', async () => {
      const orders = fake.addInstance('orders');
      const id = fake.backups.addBackup('damaged-1', orders);
      const result = await runCli(dir, ['backup', 'verify', id]);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, '');
      assert.match(
        result.stderr,
        new RegExp(
          `\nError: Backup damaged-1 \\(${id}\\) FAILED its verification: The engine's own check found 1 error\\(s\\) in the restored data: heap table "app\\.public\\.t", block 0: bad\n` +
            'Do not count on this backup: take a new one with `coffer backup create <instance> --name <name>` and verify that\\.\n$',
        ),
      );
      const shown = await runCli(dir, ['backup', 'show', 'damaged-1']);
      assert.match(shown.stdout, /│ Verification +│ FAILED at 2024-05-02 09:01:00 UTC \(databases 2, tables 3, indexes 1, errors 1\) +│/);
      assert.match(shown.stdout, /It FAILED its verification: take a new backup and verify that/);
    });

    it('--no-wait returns once accepted; a second while it runs, and a backup not COMPLETED, get the next step; --timeout gives up saying it goes on', async () => {
      const orders = fake.addInstance('orders');
      const id = fake.backups.addBackup('slow-1', orders);
      const started = await runCli(dir, ['backup', 'verify', 'slow-1', '--no-wait']);
      assert.equal(started.code, 0, started.stderr);
      assert.equal(started.stdout, `Verifying backup slow-1 (${id}): it is restored into a scratch instance and checked.\nFollow it with \`coffer backup show ${id}\`.\n`);
      const again = await runCli(dir, ['backup', 'verify', 'slow-1']);
      assert.equal(again.code, 1);
      assert.match(again.stderr, new RegExp(`already being verified[^\n]*\nFollow the running verification with \`coffer backup show ${id}\`\\.\n$`));
      const shown = await runCli(dir, ['backup', 'show', 'slow-1']);
      assert.match(shown.stdout, /│ Verification +│ RUNNING since 2024-05-02 09:00:00 UTC — .+ +│/);
      assert.match(shown.stdout, /Its verification is running/);

      const other = fake.backups.addBackup('slow-2', orders);
      const waited = await runCli(dir, ['backup', 'verify', 'slow-2', '--timeout', '0.3']);
      assert.equal(waited.code, 1);
      assert.match(waited.stderr, new RegExp(`Error: The verification of backup slow-2 \\(${other}\\) is still running after 0\\.3 s \\(.+\\)\\.\nIt goes on without the CLI: check on it with \`coffer backup show ${other}\``));

      const failed = fake.backups.addBackup('failed-1', orders, { status: 'FAILED', fail_reason: 'x' });
      const refused = await runCli(dir, ['backup', 'verify', 'failed-1']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`not completed\\. Actual state: FAILED\\.\nOnly a COMPLETED backup can be verified; failed-1 is FAILED \\(\`coffer backup show ${failed}\`\\)\\.\n$`));
    });
  });

  describe('delete', () => {
    it('names the incrementals that go with the backup and waits until all are gone', async () => {
      const maria = fake.addInstance('maria', undefined, mariadb);
      const full = fake.backups.addBackup('full-1', maria);
      const inc1 = fake.backups.addBackup('inc-1', maria, { parent_id: full });
      const inc2 = fake.backups.addBackup('inc-2', maria, { parent_id: inc1 });
      const kept = fake.backups.addBackup('other-full', maria);
      const result = await runCli(dir, ['backup', 'delete', 'full-1']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(fake.requestsTo('DELETE', api('/backups/')).length, 1);
      assert.equal(fake.requestsTo('DELETE', api(`/backups/${full}`)).length, 1);
      assert.equal(result.stdout, `Backup full-1 (${full}) is deleted, with its incremental backups inc-1 (${inc1}), inc-2 (${inc2}).\n`);
      assert.deepEqual(lines(result.stderr), ['Deleting full-1: 3 of 3 backups left (Ns)', '']);
      assert.deepEqual([...fake.backups.backups.keys()], [kept]);
    });

    it('a running backup is refused with when to try again; --no-wait returns at once', async () => {
      const orders = fake.addInstance('orders');
      assert.equal((await runCli(dir, ['backup', 'create', 'orders', '--name', 'stuck', '--no-wait'])).code, 0);
      const [stuck] = fake.backups.backups.keys();
      const refused = await runCli(dir, ['backup', 'delete', 'stuck']);
      assert.equal(refused.code, 1);
      assert.equal(
        refused.stderr,
        `Error: Backup ${stuck} cannot be deleted because it is running.\nWait until it ends (\`coffer backup list\` shows it), then delete stuck again.\n`,
      );
      const done = fake.backups.addBackup('done', orders);
      const quick = await runCli(dir, ['backup', 'delete', done, '--no-wait']);
      assert.equal(quick.code, 0, quick.stderr);
      assert.equal(quick.stdout, `Deleting backup done (${done}). Follow it with \`coffer backup list\`.\n`);
      assert.equal(quick.stderr, '');
    });

    it('DELETE_FAILED exits 1 with the reason and what to do; a failure from before this delete is not taken for a new one', async () => {
      const orders = fake.addInstance('orders');
      const id = fake.backups.addBackup('undeletable', orders);
      const result = await runCli(dir, ['backup', 'delete', 'undeletable']);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `Error: Deleting backup undeletable (${id}) failed: Delete failed: the storage answered 503 Service Unavailable\n` +
          `It is DELETE_FAILED and still counts against your backups quota: run \`coffer backup delete ${id}\` again; ` +
          'if it fails the same way, the backup storage needs its operator.\n',
      );
      // the same backup, renamed so that the storage now takes the delete: the old DELETE_FAILED shows until it is gone
      fake.backups.backups.get(id)!.view.name = 'retried';
      const again = await runCli(dir, ['backup', 'delete', id]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, `Backup retried (${id}) is deleted.\n`);
    });
  });

  describe('instance create --from-backup', () => {
    it("takes the backup's datastore and version, sends restorePoint with its ID and follows the restore", async () => {
      const orders = fake.addInstance('orders');
      const backup = fake.backups.addBackup('nightly', orders);
      const result = await runCli(dir, ['instance', 'create', 'copy', '--from-backup', 'nightly', '--flavor', 'small', '--size', '1']);
      assert.equal(result.code, 0, result.stderr);
      const [create] = fake.requestsTo('POST', api('/instances'));
      assert.deepEqual(create?.body, {
        instance: { name: 'copy', flavorRef: '1', volume: { size: 1 }, datastore: { type: 'postgresql', version: '15' }, restorePoint: { backupRef: backup } },
      });
      assert.match(result.stderr, /^Restoring nightly into copy: BUILD \(\d+s\)\n/);
      assert.match(result.stdout, /^Connect to copy:\n {2}host: 127\.77\.0\.12\n/);
    });

    it('--datastore alone keeps the version of the backup; another version is refused by the API with what to leave out', async () => {
      const orders = fake.addInstance('orders');
      const backup = fake.backups.addBackup('nightly', orders);
      const same = await runCli(dir, createArgs('copy', '--from-backup', backup, '--no-wait'));
      assert.equal(same.code, 0, same.stderr);
      assert.deepEqual((fake.requestsTo('POST', api('/instances'))[0]?.body as any).instance.datastore, { type: 'postgresql', version: '15' });
      const other = await runCli(dir, createArgs('copy2', '--from-backup', 'nightly', '--datastore-version', '16'));
      assert.equal(other.code, 1);
      assert.equal(
        other.stderr,
        `Error: Backup ${backup} was taken from postgresql 15; restore it into version 15, not 16.\n` +
          "Leave out --datastore and --datastore-version: the backup's (postgresql 15) are used.\n",
      );
    });

    it('a backup not COMPLETED (409) or too large for --size (403) gets the next step', async () => {
      const orders = fake.addInstance('orders');
      const failed = fake.backups.addBackup('failed-1', orders, { status: 'FAILED', fail_reason: 'disk full' });
      const notDone = await runCli(dir, ['instance', 'create', 'copy', '--from-backup', 'failed-1', '--flavor', 'small', '--size', '1']);
      assert.equal(notDone.code, 1);
      assert.equal(
        notDone.stderr,
        `Error: Unable to create instance because backup ${failed} is not completed. Actual state: FAILED.\n` +
          `\`coffer backup show ${failed}\` says why; restore a COMPLETED backup (\`coffer backup list\`).\n`,
      );
      fake.backups.addBackup('big', orders, {}, 2.5);
      const small = await runCli(dir, ['instance', 'create', 'copy', '--from-backup', 'big', '--flavor', 'small', '--size', '2']);
      assert.equal(small.code, 1);
      assert.equal(small.stderr, 'Error: Backup is too large for given flavor or volume. Backup size: 2.5 GBs. Available size: 2 GBs.\nGive a larger --size.\n');
    });

    it("--from-instance with --restore-time sends the instance and the moment on the instance's datastore; the API's refusal comes with where to look", async () => {
      const orders = fake.addInstance('orders');
      const backup = fake.backups.addBackup('nightly', orders);
      const pitr = await runCli(dir, ['instance', 'create', 'copy', '--from-instance', 'orders', '--restore-time', '2024-05-01T10:30:00Z', '--flavor', 'small', '--size', '1', '--no-wait']);
      assert.equal(pitr.code, 0, pitr.stderr);
      assert.deepEqual((fake.requestsTo('POST', api('/instances'))[0]?.body as any).instance, {
        name: 'copy',
        flavorRef: '1',
        volume: { size: 1 },
        datastore: { type: 'postgresql', version: '15' },
        restorePoint: { instance_id: orders, restore_time: '2024-05-01T10:30:00Z' },
      });
      const outside = await runCli(dir, ['instance', 'create', 'copy2', '--from-instance', 'orders', '--restore-time', '2024-05-02T10:30:00Z', '--flavor', 'small', '--size', '1']);
      assert.equal(outside.code, 1);
      assert.equal(
        outside.stderr,
        `Error: restore_time 2024-05-02T10:30:00Z is outside what instance ${orders} can be restored to: its recoverable window is 2024-05-01T10:00:00.000Z to 2024-05-01T11:00:00.000Z.\n` +
          `\`coffer instance show ${orders}\` shows the times it can be restored to.\n`,
      );
      const withBackup = await runCli(dir, ['instance', 'create', 'copy3', '--from-backup', 'nightly', '--restore-time', '2024-05-01T10:45:00Z', '--flavor', 'small', '--size', '1', '--no-wait']);
      assert.equal(withBackup.code, 0, withBackup.stderr);
      assert.deepEqual((fake.requestsTo('POST', api('/instances'))[2]?.body as any).instance.restorePoint, { backupRef: backup, restore_time: '2024-05-01T10:45:00Z' });
    });

    it('instance show gives the recoverable window and how to use it', async () => {
      fake.addInstance('orders', undefined, { recoverable_window: { earliest: '2024-05-01T10:00:00', latest: '2024-05-01T11:00:00' } });
      const shown = await runCli(dir, ['instance', 'show', 'orders']);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /│ Restorable to +│ 2024-05-01 10:00:00 UTC … 2024-05-01 11:00:00 UTC \(--from-instance --restore-time\) +│/);
      const plain = await runCli(dir, ['instance', 'show', fake.addInstance('ledger')]);
      assert.doesNotMatch(plain.stdout, /Restorable to/);
    });

    it('--restore-time and --from-instance each need the other; without --from-backup or --datastore nothing is sent', async () => {
      fake.addInstance('orders');
      const alone = await runCli(dir, createArgs('copy', '--restore-time', '2024-05-01T10:30:00Z'));
      assert.equal(alone.code, 1);
      assert.equal(
        alone.stderr,
        'Error: --restore-time needs --from-instance (or --from-backup): what to restore as it was at that time.\n' +
          'Give --from-instance <instance> (see `coffer instance show <instance>` for its recoverable window).\n',
      );
      const noTime = await runCli(dir, ['instance', 'create', 'copy', '--from-instance', 'orders', '--flavor', 'small', '--size', '1']);
      assert.equal(noTime.code, 1);
      assert.equal(noTime.stderr, 'Error: --from-instance restores the instance as it was at a moment: give --restore-time too.\n`coffer instance show orders` shows its recoverable window.\n');
      const nothing = await runCli(dir, ['instance', 'create', 'copy', '--flavor', 'small', '--size', '1']);
      assert.equal(nothing.code, 1);
      assert.equal(nothing.stderr, 'Error: Give --datastore (see `coffer datastore list`), or --from-backup to restore a backup.\n');
      const unknown = await runCli(dir, ['instance', 'create', 'copy', '--from-backup', 'nope', '--flavor', 'small', '--size', '1']);
      assert.equal(unknown.stderr, 'Error: No backup has the ID or name "nope".\nSee them all with `coffer backup list`.\n');
      assert.equal(fake.requestsTo('POST', api('/instances')).length, 0);
    });
  });

  describe('strategy', () => {
    it("sets the project's and an instance's container, lists them, and the next backup goes to the instance's", async () => {
      const orders = fake.addInstance('orders');
      const project = await runCli(dir, ['backup', 'strategy', 'set', 'team-backups']);
      assert.equal(project.code, 0, project.stderr);
      assert.equal(project.stdout, "From now on this project's backups go to container team-backups (except instances with a container of their own).\n");
      const one = await runCli(dir, ['backup', 'strategy', 'set', 'orders-backups', '--instance', 'orders']);
      assert.equal(one.stdout, 'From now on backups of orders go to container orders-backups.\n');
      assert.deepEqual(fake.requestsTo('POST', api('/backup_strategies')).map((r) => r.body), [
        { backup_strategy: { swift_container: 'team-backups' } },
        { backup_strategy: { swift_container: 'orders-backups', instance_id: orders } },
      ]);
      const list = await runCli(dir, ['backup', 'strategy', 'list']);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /│ Applies to +│ Container +│ Backend │/);
      assert.match(list.stdout, /│ the project +│ team-backups +│ swift +│\n│ instance orders \(.+\) │ orders-backups │ swift +│/);

      await runCli(dir, ['backup', 'create', 'orders', '--name', 'b1']);
      const other = fake.addInstance('other');
      await runCli(dir, ['backup', 'create', other, '--name', 'b2']);
      const [b1, b2] = fake.backups.backups.keys();
      assert.equal(fake.backups.containerOf(b1!), 'orders-backups');
      assert.equal(fake.backups.containerOf(b2!), 'team-backups');
    });

    it('clear says where backups go instead, and when there was nothing to clear', async () => {
      fake.addInstance('orders');
      await runCli(dir, ['backup', 'strategy', 'set', 'team-backups']);
      await runCli(dir, ['backup', 'strategy', 'set', 'orders-backups', '--instance', 'orders']);
      const instance = await runCli(dir, ['backup', 'strategy', 'clear', '--instance', 'orders']);
      assert.equal(instance.code, 0, instance.stderr);
      assert.equal(instance.stdout, "Backups of orders go to the project's container team-backups again.\n");
      const again = await runCli(dir, ['backup', 'strategy', 'clear', '--instance', 'orders']);
      assert.equal(again.stdout, 'No container was set for backups of orders: nothing to clear.\n');
      const project = await runCli(dir, ['backup', 'strategy', 'clear']);
      assert.equal(project.stdout, "This project's backups go to the deployment's default container again.\n");
      assert.equal(fake.requestsTo('DELETE', api('/backup_strategies')).length, 2);
      const none = await runCli(dir, ['backup', 'strategy', 'list']);
      assert.equal(none.stdout, "No backup strategies: backups go to the deployment's default container. Set one with `coffer backup strategy set <container>`.\n");
      const bad = await runCli(dir, ['backup', 'strategy', 'set', 'a b']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /value 'a b' is invalid for argument 'container'\. Expected 1 to 128 letters/);
    });
  });

  describe('schedule', () => {
    const schedulePath = (id: string) => api(`/instances/${id}/backup_schedule`);

    it('set sends the schedule, says when it runs next and how to check on it; show lists it; set again replaces it', async () => {
      const orders = fake.addInstance('orders', undefined, mariadb);
      const set = await runCli(dir, ['backup', 'schedule', 'set', 'orders', '--cron', '30 2 * * *', '--keep-count', '7', '--keep-days', '30', '--name', 'nightly', '--incremental']);
      assert.equal(set.code, 0, set.stderr);
      assert.deepEqual(fake.requestsTo('PUT', schedulePath(orders)).map((r) => r.body), [
        { backup_schedule: { pattern: '30 2 * * *', incremental: true, retain_count: 7, retain_days: 30, name: 'nightly' } },
      ]);
      assert.equal(
        set.stdout,
        'Backups of orders: incremental, at "30 2 * * *" (UTC); keeps the newest 7, none older than 30 days (always the newest completed one, and what it builds on).\n' +
          'Next run: 2024-05-02 02:30:00 UTC. Check on it with `coffer backup schedule show orders`; its backups: `coffer backup list --instance orders`.\n',
      );
      const show = await runCli(dir, ['backup', 'schedule', 'show', 'orders']);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /│ Instance +│ orders \(.+\) +│/);
      assert.match(show.stdout, /│ Cron \(UTC\) +│ 30 2 \* \* \* +│/);
      assert.match(show.stdout, /│ Names +│ nightly-<UTC time> +│/);
      assert.match(show.stdout, /│ Next run +│ 2024-05-02 02:30:00 UTC +│/);
      assert.match(show.stdout, /│ Last run +│ never +│/);
      assert.match(show.stdout, /│ Verifies +│ no +│/);
      assert.doesNotMatch(show.stdout, /Last error/);

      await runCli(dir, ['backup', 'schedule', 'set', orders, '--cron', '0 * * * *', '--keep-days', '2']);
      assert.deepEqual(fake.requestsTo('PUT', schedulePath(orders)).at(-1)?.body, { backup_schedule: { pattern: '0 * * * *', retain_days: 2 } });
      const json = await runCli(dir, ['backup', 'schedule', 'show', 'orders', '--json']);
      assert.equal(JSON.parse(json.stdout).retain_count, null);
    });

    it('set --verify asks for each backup to be verified and says so; show says which was verified last, and why one was not', async () => {
      const orders = fake.addInstance('orders');
      const set = await runCli(dir, ['backup', 'schedule', 'set', 'orders', '--cron', '30 2 * * *', '--keep-count', '3', '--verify']);
      assert.equal(set.code, 0, set.stderr);
      assert.deepEqual(fake.requestsTo('PUT', schedulePath(orders)).at(-1)?.body, { backup_schedule: { pattern: '30 2 * * *', retain_count: 3, verify: true } });
      assert.match(set.stdout, /\nEach one is verified once it completed: `coffer backup show <backup>` says how that went\.\n/);
      const show = await runCli(dir, ['backup', 'schedule', 'show', 'orders']);
      assert.match(show.stdout, /│ Verifies +│ each completed backup, once +│/);
      Object.assign(fake.backups.schedules.get(orders)!, {
        last_run: '2024-05-02T02:30:00',
        last_backup_id: 'b-1',
        last_verified_backup_id: 'b-1',
        last_error: 'The verification of backup b-1 was not started: Backup b-1 is already being verified: wait until its verification has PASSED or FAILED.',
      });
      const failed = await runCli(dir, ['backup', 'schedule', 'show', 'orders']);
      assert.match(failed.stdout, /│ Verifies +│ each completed backup, once \(last: backup b-1\) +│/);
      assert.match(failed.stdout, /│ Last run +│ 2024-05-02 02:30:00 UTC: started backup b-1 +│/, 'the run did start its backup');
      assert.match(failed.stdout, /│ Last error +│ The verification of backup b-1 was not started/);
      assert.equal(JSON.parse((await runCli(dir, ['backup', 'schedule', 'show', 'orders', '--json'])).stdout).verify, true);
    });

    it('show says what the last run did: the backup it started, or why it skipped', async () => {
      const orders = fake.addInstance('orders');
      await runCli(dir, ['backup', 'schedule', 'set', 'orders', '--cron', '30 2 * * *', '--keep-count', '3']);
      Object.assign(fake.backups.schedules.get(orders)!, { last_run: '2024-05-02T02:30:00', last_error: 'The backup due at 2024-05-02T02:30:00Z was skipped: Quota exceeded for resources: [\'backups\'].' });
      const skipped = await runCli(dir, ['backup', 'schedule', 'show', 'orders']);
      assert.match(skipped.stdout, /│ Last run +│ 2024-05-02 02:30:00 UTC: skipped +│/);
      assert.match(skipped.stdout, /│ Last error +│ The backup due at 2024-05-02T02:30:00Z was skipped: Quota/);
      Object.assign(fake.backups.schedules.get(orders)!, { last_error: null, last_backup_id: 'b-1' });
      const ran = await runCli(dir, ['backup', 'schedule', 'show', 'orders']);
      assert.match(ran.stdout, /│ Last run +│ 2024-05-02 02:30:00 UTC: started backup b-1 +│/);
    });

    it('clear removes it and says the backups stay; show and clear without a schedule say how to set one', async () => {
      const orders = fake.addInstance('orders');
      await runCli(dir, ['backup', 'schedule', 'set', 'orders', '--cron', '30 2 * * *', '--keep-count', '3']);
      const clear = await runCli(dir, ['backup', 'schedule', 'clear', 'orders']);
      assert.equal(clear.code, 0, clear.stderr);
      assert.equal(clear.stdout, 'orders is no longer backed up on a schedule. The backups it took stay: `coffer backup list --instance orders`.\n');
      assert.equal(fake.requestsTo('DELETE', schedulePath(orders)).length, 1);
      for (const command of ['show', 'clear']) {
        const none = await runCli(dir, ['backup', 'schedule', command, 'orders']);
        assert.equal(none.code, 1);
        assert.match(none.stderr, /orders has no backup schedule\.[\s\S]*Set one with `coffer backup schedule set orders --cron "30 2 \* \* \*" --keep-count 7`\./);
      }
    });

    it('set refuses before asking without a limit, and passes on the API’s refusals', async () => {
      fake.addInstance('orders');
      const noLimit = await runCli(dir, ['backup', 'schedule', 'set', 'orders', '--cron', '30 2 * * *']);
      assert.equal(noLimit.code, 1);
      assert.match(noLimit.stderr, /Say how long the schedule keeps its backups\.[\s\S]*--keep-count <n>/);
      const badCount = await runCli(dir, ['backup', 'schedule', 'set', 'orders', '--cron', '30 2 * * *', '--keep-count', '0']);
      assert.equal(badCount.code, 1);
      assert.match(badCount.stderr, /--keep-count <n>' argument '0' is invalid\. Expected a whole number of at least 1\./);
      const noCron = await runCli(dir, ['backup', 'schedule', 'set', 'orders', '--keep-count', '2']);
      assert.equal(noCron.code, 1);
      assert.match(noCron.stderr, /required option '--cron <pattern>' not specified/);
      const badCron = await runCli(dir, ['backup', 'schedule', 'set', 'orders', '--cron', '30 2 * *', '--keep-count', '2']);
      assert.equal(badCron.code, 1);
      assert.match(badCron.stderr, /Invalid cron pattern "30 2 \* \*": it has 4 fields, not 5/);
      const incremental = await runCli(dir, ['backup', 'schedule', 'set', 'orders', '--cron', '30 2 * * *', '--keep-count', '2', '--incremental']);
      assert.equal(incremental.code, 1);
      assert.match(incremental.stderr, /Incremental backups are not supported for datastore postgresql yet/);
      assert.equal(fake.backups.schedules.size, 0);
    });
  });

  it('--help describes every backup command and instance create --from-backup', async () => {
    const expected: Array<[string[], RegExp]> = [
      [['backup', '--help'], /create \[options\] <instance>[\s\S]*import \[options\] <location>[\s\S]*list[\s\S]*show[\s\S]*verify[\s\S]*delete[\s\S]*strategy/],
      [['backup', 'import', '--help'], /restore_from[\s\S]*RESTORED[\s\S]*--name <name>[\s\S]*--datastore <datastore>[\s\S]*--datastore-version <version>[\s\S]*--size <GB>[\s\S]*--no-wait/],
      [['backup', 'verify', '--help'], /scratch instance[\s\S]*PASSED or FAILED[\s\S]*--no-wait[\s\S]*--timeout <seconds>[\s\S]*--json/],
      [['backup', 'create', '--help'], /--name <name>[\s\S]*--incremental[\s\S]*--parent <backup>[\s\S]*--container <name>[\s\S]*--no-wait[\s\S]*--timeout/],
      [['backup', 'list', '--help'], /--instance <instance>[\s\S]*--all-projects/],
      [['backup', 'show', '--help'], /Show a backup/],
      [['backup', 'delete', '--help'], /incremental backups that build on it/],
      [['backup', 'strategy', '--help'], /set[\s\S]*list[\s\S]*clear/],
      [['backup', 'strategy', 'set', '--help'], /<container>[\s\S]*--instance <instance>/],
      [['backup', 'strategy', 'clear', '--help'], /--instance <instance>/],
      [['backup', 'schedule', '--help'], /set \[options\] <instance>[\s\S]*show[\s\S]*clear/],
      [['backup', 'schedule', 'set', '--help'], /--cron <pattern>[\s\S]*in\s+UTC[\s\S]*--incremental[\s\S]*--keep-count <n>[\s\S]*--keep-days <n>[\s\S]*--name <prefix>[\s\S]*--verify[\s\S]*both limits apply[\s\S]*turns verification off/],
      [['backup', 'schedule', 'show', '--help'], /verifies its backups[\s\S]*next run/],
      [['backup', 'schedule', 'clear', '--help'], /backups the schedule took stay/],
      [['instance', 'create', '--help'], /--from-backup <backup>[\s\S]*--restore-time <time>/],
    ];
    for (const [args, pattern] of expected) {
      const help = await runCli(dir, args);
      assert.equal(help.code, 0, `${args.join(' ')}: ${help.stderr}`);
      assert.match(help.stdout, pattern, args.join(' '));
    }
  });
});
