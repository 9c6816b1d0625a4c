import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { activeState, loggedInFake, type FakeCoffer } from './fake-coffer.js';
import { runCli, tempConfigDir } from './run-cli.js';

// coffer instance restart | stop | start | resize | resize-volume | update | reset-status against a stand-in
// API: what each sends, how it follows the task, and how it reports a failed action.

describe('coffer instance actions', () => {
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

  const actionsOf = (id: string) => fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances/${id}/action`).map((r) => r.body);

  it('restart finds the instance by name, posts the action and follows REBOOT until the task ends', async () => {
    const id = fake.addInstance('orders');
    const result = await runCli(dir, ['instance', 'restart', 'orders']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(actionsOf(id), [{ restart: {} }]);
    assert.match(result.stderr, /^Restarting orders: REBOOT \(\d+s\)\nRestarting orders: ACTIVE \/ HEALTHY \(\d+s\)\n$/);
    assert.match(result.stdout, /^Instance orders restarted\. \(ACTIVE \/ HEALTHY, \d+\.\d s\)\n$/);
  });

  it('a restart that leaves a new fault exits 1 with the fault, although the instance is ACTIVE again', async () => {
    const id = fake.addInstance('broken-db');
    const result = await runCli(dir, ['instance', 'restart', id]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`Error: Restart of broken-db \\(${id}\\) failed: Restart failed: the engine did not stop\\n`));
    assert.match(result.stderr, /See `coffer instance show/);
  });

  it('stop posts the action and follows STOPPING until the instance is SHUTOFF; start brings it back ACTIVE', async () => {
    const id = fake.addInstance('orders');
    const stopped = await runCli(dir, ['instance', 'stop', 'orders']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(actionsOf(id), [{ stop: {} }]);
    assert.match(stopped.stderr, /^Stopping orders: STOPPING \(\d+s\)\nStopping orders: SHUTOFF \/ SHUTDOWN \(\d+s\)\n$/);
    assert.match(stopped.stdout, /^Instance orders stopped; `coffer instance start orders` starts it again\. \(SHUTOFF \/ SHUTDOWN, \d+\.\d s\)\n$/);

    const started = await runCli(dir, ['instance', 'start', id]);
    assert.equal(started.code, 0, started.stderr);
    assert.deepEqual(actionsOf(id), [{ stop: {} }, { start: {} }]);
    assert.match(started.stderr, /^Starting orders: STARTING \(\d+s\)\nStarting orders: ACTIVE \/ HEALTHY \(\d+s\)\n$/);
    assert.match(started.stdout, /^Instance orders started\. \(ACTIVE \/ HEALTHY, \d+\.\d s\)\n$/);
  });

  it('upgrade sends Trove’s PATCH with the version and follows UPGRADE until the instance runs it; a failed one exits 1 with the fault', async () => {
    const id = fake.addInstance('orders');
    const result = await runCli(dir, ['instance', 'upgrade', 'orders', '16']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(fake.requestsTo('PATCH', `/v1.0/${fake.projectId}/instances/${id}`).map((r) => r.body), [{ instance: { datastore_version: '16' } }]);
    assert.match(result.stderr, /^Upgrading orders from 15 to 16: UPGRADE \(\d+s\)\nUpgrading orders from 15 to 16: ACTIVE \/ HEALTHY \(\d+s\)\n$/);
    assert.match(result.stdout, /^Instance orders now runs postgresql 16\. \(ACTIVE \/ HEALTHY, \d+\.\d s\)\n$/);

    const broken = fake.addInstance('broken-db');
    const failed = await runCli(dir, ['instance', 'upgrade', broken, '17']);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, new RegExp(`Error: Upgrade of broken-db \\(${broken}\\) failed: Upgrade failed: no pg_upgrade for 17\\. The instance keeps version 15\\.`));
  });

  it('show says when the host agent has not taken the instance up again', async () => {
    const id = fake.addInstance('orders', undefined, { awaiting_adoption: true });
    const shown = await runCli(dir, ['instance', 'show', id]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /│ Host agent +│ restarted, not yet taken this instance up again: the status is the last one heard +│/);
    const plain = await runCli(dir, ['instance', 'show', fake.addInstance('ledger')]);
    assert.doesNotMatch(plain.stdout, /Host agent/);
  });

  it("start of an instance that is not stopped shows the API's 409 message and exits 1", async () => {
    const id = fake.addInstance('orders');
    const result = await runCli(dir, ['instance', 'start', 'orders']);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `Error: Instance ${id} is not currently available for an action to be performed (instance status was ACTIVE). It is not stopped.\n`,
    );
  });

  it('a stop or start that fails exits 1 with the fault', async () => {
    const id = fake.addInstance('broken-db');
    const stop = await runCli(dir, ['instance', 'stop', id]);
    assert.equal(stop.code, 1);
    assert.match(stop.stderr, new RegExp(`Error: Stop of broken-db \\(${id}\\) failed: Restart failed: the engine did not stop\\n`));
    fake.addInstance('broken-stopped', [{ status: 'SHUTOFF', operating_status: 'SHUTDOWN' }]);
    const start = await runCli(dir, ['instance', 'start', 'broken-stopped']);
    assert.equal(start.code, 1);
    assert.match(start.stderr, /Error: Start of broken-stopped \(.+\) failed: Restart failed: the engine did not stop\n/);
  });

  it('--no-wait returns once the API accepted the action', async () => {
    const id = fake.addInstance('orders');
    const result = await runCli(dir, ['instance', 'restart', 'orders', '--no-wait']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `Restarting orders (${id}). Follow it with \`coffer instance show ${id}\`.\n`);
    assert.equal(fake.requestsTo('GET', `/v1.0/${fake.projectId}/instances/${id}`).length, 1, 'only the lookup');
  });

  it('resize resolves the flavor by name and waits until the instance shows it', async () => {
    const id = fake.addInstance('orders');
    const result = await runCli(dir, ['instance', 'resize', 'orders', 'medium']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(actionsOf(id), [{ resize: { flavorRef: '2' } }]);
    assert.match(result.stderr, /Resizing orders: RESIZE/);
    assert.match(result.stdout, /^Instance orders now has flavor medium \(2\)\./);
  });

  it("resize to the instance's own flavor shows the API's 400 message", async () => {
    fake.addInstance('orders');
    const result = await runCli(dir, ['instance', 'resize', 'orders', 'small']);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, "Error: The new flavor id must be different than the current flavor id of '1'.\n");
  });

  it('a resize that fails keeps the old flavor and exits 1 with the fault', async () => {
    fake.addInstance('broken-db');
    const result = await runCli(dir, ['instance', 'resize', 'broken-db', '2']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Error: Resize of broken-db \(.+\) failed: Restart failed: the engine did not stop/);
  });

  it('resize-volume sends the new size and checks it is shown; a size that is not a whole number is refused', async () => {
    const id = fake.addInstance('orders');
    const result = await runCli(dir, ['instance', 'resize-volume', 'orders', '4']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(actionsOf(id), [{ resize: { volume: { size: 4 } } }]);
    assert.match(result.stdout, /^Instance orders now has a 4 GB volume\./);

    const bad = await runCli(dir, ['instance', 'resize-volume', 'orders', 'big']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /Expected a whole number of at least 1/);
    assert.equal(actionsOf(id).length, 1);
  });

  it('update --allowed-cidr puts the access rules and waits until the update ends', async () => {
    const id = fake.addInstance('orders');
    const result = await runCli(dir, ['instance', 'update', 'orders', '--allowed-cidr', '10.0.0.0/8', '--allowed-cidr', '192.168.0.0/16', '--private']);
    assert.equal(result.code, 0, result.stderr);
    const [put] = fake.requestsTo('PUT', `/v1.0/${fake.projectId}/instances/${id}`);
    assert.deepEqual(put?.body, { instance: { access: { is_public: false, allowed_cidrs: ['10.0.0.0/8', '192.168.0.0/16'] } } });
    assert.match(result.stderr, /Updating the access rules of orders: ACTIVE \(\d+s\)\n.*ACTIVE \/ HEALTHY/);
    assert.match(result.stdout, /^Instance orders accepts clients from 10\.0\.0\.0\/8, 192\.168\.0\.0\/16\./);
  });

  it('update warns when the new ranges leave out 127.0.0.1, where clients on a loopback instance\'s host come from', async () => {
    const id = fake.addInstance('mypg', [activeState('127.77.0.2')]);
    const trap = await runCli(dir, ['instance', 'update', 'mypg', '--allowed-cidr', '127.77.0.0/16']);
    assert.equal(trap.code, 0, trap.stderr);
    assert.match(
      trap.stderr,
      /^Warning: mypg listens on 127\.77\.0\.2, and clients on its host connect to it from 127\.0\.0\.1, which 127\.77\.0\.0\/16 leaves out: they will be refused\.\n {2}Add --allowed-cidr 127\.0\.0\.1\/32 /,
    );

    const fine = await runCli(dir, ['instance', 'update', 'mypg', '--allowed-cidr', '127.0.0.1/32', '--allowed-cidr', '10.0.0.0/8']);
    assert.equal(fine.code, 0, fine.stderr);
    assert.doesNotMatch(fine.stderr, /Warning/);

    const cleared = await runCli(dir, ['instance', 'update', 'mypg', '--allowed-cidr']);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.doesNotMatch(cleared.stderr, /Warning/);
    const puts = fake.requestsTo('PUT', `/v1.0/${fake.projectId}/instances/${id}`);
    assert.deepEqual(puts.at(-1)?.body, { instance: { access: { allowed_cidrs: [] } } }, 'an empty list: the default ranges');
    assert.match(cleared.stdout, /^Instance mypg accepts clients from the host's default ranges\./);
  });

  it('update --name renames without waiting; update with nothing to change or a bad CIDR is refused', async () => {
    const id = fake.addInstance('orders');
    const rename = await runCli(dir, ['instance', 'update', 'orders', '--name', 'sales']);
    assert.equal(rename.code, 0, rename.stderr);
    assert.deepEqual(fake.requestsTo('PUT', `/v1.0/${fake.projectId}/instances/${id}`)[0]?.body, { instance: { name: 'sales' } });
    assert.equal(rename.stdout, `Instance orders (${id}) is now named sales.\n`);

    const nothing = await runCli(dir, ['instance', 'update', 'sales']);
    assert.equal(nothing.code, 1);
    assert.match(nothing.stderr, /Nothing to update/);
    const badCidr = await runCli(dir, ['instance', 'update', 'sales', '--allowed-cidr', 'everyone']);
    assert.notEqual(badCidr.code, 0);
    assert.match(badCidr.stderr, /Expected a CIDR/);
    assert.equal(fake.requestsTo('PUT', `/v1.0/${fake.projectId}/instances/${id}`).length, 1);
  });

  it('reset-status posts reset_status (force_delete for owners) and says the status is known at the next heartbeat', async () => {
    const id = fake.addInstance('orders', [{ status: 'ERROR', operating_status: '' }]);
    const result = await runCli(dir, ['instance', 'reset-status', 'orders', '--force-delete']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(actionsOf(id), [{ reset_status: { force_delete: true } }]);
    assert.equal(result.stdout, `Instance orders (${id}) was reset: ACTIVE / ERROR until its next heartbeat.\n`);
    const plain = await runCli(dir, ['instance', 'reset-status', id]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual(actionsOf(id)[1], { reset_status: {} });
  });

  it('--json prints the instance once the action ended', async () => {
    fake.addInstance('orders', [activeState('127.77.0.30')]);
    const result = await runCli(dir, ['instance', 'restart', 'orders', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout) as { name: string; status: string };
    assert.deepEqual([printed.name, printed.status], ['orders', 'ACTIVE']);
  });
});
