import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { guestContract, guestTopic, serveRpc, type ReplicationStatusSpec, type Subscription } from '../../src/bus/index.js';
import { CofferError, newUuid, noEngineCapabilities, silentLogger } from '../../src/common/index.js';
import { startTaskmanager, type Taskmanager } from '../../src/taskmanager/index.js';
import { adminPassword, adminSession, startHarness, type Harness, type Session } from '../api/api-harness.js';
import { fakeGuestHandlers } from '../support/fake-guest.js';
import { runCli, tempConfigDir } from './run-cli.js';

// coffer instance promote | eject | replication against the real API and taskmanager over HTTP
// (one SQLite store, the in-process bus): the real switchover and failover flows run, on fake
// guests that keep a model of who streams from whom and how far each engine's log is. What the
// engines themselves do in a switchover is tested with real engines in test/guest.

let h: Harness;
let taskmanager: Taskmanager;
let dir: string;
let cleanup: () => Promise<void>;
let admin: Session;
let versionId: string;
const guests: Subscription[] = [];

/** A fake engine: its role, whom it streams from, where its log stands, and the calls it was sent. */
interface Engine {
  id: string;
  name: string;
  address: string;
  role: 'standalone' | 'source' | 'replica';
  sourceId?: string;
  position: number;
  synchronous?: boolean;
  calls: string[];
}
const engines = new Map<string, Engine>();
/** every guest call of every engine, in order: `<name> <call>` */
const journal: string[] = [];
let nextAddress = 10;

function status(engine: Engine): ReplicationStatusSpec {
  switch (engine.role) {
    case 'standalone':
      return { role: 'standalone' };
    case 'replica':
      return { role: 'replica', source: { address: engines.get(engine.sourceId!)!.address, port: 5432 }, streaming: true, lagBytes: 0, lagSeconds: 0, position: engine.position };
    case 'source': {
      const replicas = [...engines.values()].filter((r) => r.role === 'replica' && r.sourceId === engine.id);
      return { role: 'source', position: engine.position, replicas: replicas.map((r) => ({ replicaId: r.id, connected: true, lagBytes: engine.position - r.position, lagSeconds: 0 })) };
    }
  }
}

async function serveEngine(engine: Engine): Promise<void> {
  const called = (what: string) => {
    engine.calls.push(what);
    journal.push(`${engine.name} ${what}`);
  };
  guests.push(
    await serveRpc(
      h.transport,
      guestContract,
      guestTopic(engine.id),
      fakeGuestHandlers({
        getReplicationStatus: async () => status(engine),
        fenceSource: async () => {
          called('fenceSource');
          return { position: engine.position };
        },
        detachReplica: async () => {
          called('detachReplica');
          engine.role = 'source';
          delete engine.sourceId;
          return {};
        },
        addReplica: async ({ replicaId }) => {
          called(`addReplica ${engines.get(replicaId)?.name}`);
          return { address: engine.address, port: 5432, user: `repl_${replicaId}`, password: 'Repl-pass-123456', slot: `slot_${replicaId}`, adminPassword: 'Admin-pass-123456' };
        },
        followSource: async ({ grant }) => {
          called('followSource');
          // an engine named "broken" holds writes the new primary lacks, and cannot undo them
          if (engine.name.includes('broken')) throw new CofferError('Conflict', 'It holds writes the new primary lacks and its engine cannot undo them.');
          const source = [...engines.values()].find((e) => e.address === grant.address)!;
          engine.role = 'replica';
          engine.sourceId = source.id;
          engine.position = source.position;
          return {};
        },
        setSynchronous: async ({ synchronous }) => {
          called(`setSynchronous ${synchronous}`);
          engine.synchronous = synchronous;
          return {};
        },
      }),
    ),
  );
}

/** An instance row as a finished create leaves it, heartbeating, with its fake engine. */
async function addInstance(name: string, role: Engine['role'], position: number, sourceId?: string): Promise<string> {
  const id = newUuid();
  const now = new Date();
  await h.store.instances.create({
    id,
    name,
    tenantId: admin.projectId,
    flavorId: '2',
    volumeSizeGb: 2,
    datastoreVersionId: versionId,
    taskStatus: 'NONE',
    taskDescription: '',
    taskStartTime: null,
    access: null,
    createdAt: now,
    updatedAt: now,
  });
  const address = `127.96.0.${nextAddress++}`;
  await h.store.instances.update(id, { host: 'host-a', address, port: 5432, ...(sourceId === undefined ? {} : { replicaOfId: sourceId }) });
  await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: now });
  const engine: Engine = { id, name, address, role, position, calls: [], ...(sourceId === undefined ? {} : { sourceId }) };
  engines.set(id, engine);
  await serveEngine(engine);
  return id;
}

/** A primary at `position` and its replicas, each at the position given. */
async function group(primary: string, position: number, replicas: Record<string, number>): Promise<Record<string, string>> {
  const ids: Record<string, string> = { [primary]: await addInstance(primary, Object.keys(replicas).length > 0 ? 'source' : 'standalone', position) };
  for (const [name, at] of Object.entries(replicas)) ids[name] = await addInstance(name, 'replica', at, ids[primary]);
  return ids;
}

before(async () => {
  ({ dir, cleanup } = await tempConfigDir());
  h = await startHarness({ rateLimitPerMinute: 100_000 });
  taskmanager = await startTaskmanager({
    store: h.store,
    transport: h.transport,
    logger: silentLogger(),
    leaseMs: 2_000,
    sweepIntervalMs: 20,
    statusPollMs: 10,
    actionTimeoutMs: 2_000,
    failover: { intervalMs: 50 },
  });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = h.app.server.address() as AddressInfo;
  admin = await adminSession(h.app);
  const pg = await h.store.datastores.ensureDatastore('postgresql', newUuid());
  const version = await h.store.datastores.upsertVersion({
    id: newUuid(),
    datastoreId: pg.id,
    name: '17',
    version: '17.2',
    manager: 'postgresql',
    active: true,
    inactiveReason: null,
    updatedAt: new Date(),
    capabilities: { ...noEngineCapabilities, replication: true },
  });
  versionId = version.id;
  const login = await runCli(dir, ['login', '--url', `http://127.0.0.1:${port}`], { env: { COFFER_PASSWORD: adminPassword } });
  assert.equal(login.code, 0, login.stderr);
});
after(async () => {
  for (const guest of guests) await guest.close();
  await taskmanager?.stop();
  await h?.close();
  await cleanup?.();
});

const cli = (...args: string[]) => runCli(dir, args);

/** A table row's cells, however cli-table3 draws the borders. */
const row = (...cells: string[]) => new RegExp(cells.map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[\\s│|]+'));

test('replication shows a primary, a replica and a standalone instance, each with what to do next', async () => {
  const ids = await group('orders', 500, { 'orders-1': 500, 'orders-2': 380 });
  const primary = await cli('instance', 'replication', 'orders');
  assert.equal(primary.code, 0, primary.stderr);
  for (const line of [row('Instance', `orders (${ids.orders})`), row('Role', 'primary'), row('Failover', 'on'), row('Synchronous', 'off'), row('Position', '500')]) {
    assert.match(primary.stdout, line);
  }
  assert.match(primary.stdout, row('Replica', 'Name', 'Streaming', 'Lag (bytes)', 'Lag (s)'));
  assert.match(primary.stdout, row(ids['orders-1']!, 'orders-1', 'yes', '0', '0'));
  assert.match(primary.stdout, row(ids['orders-2']!, 'orders-2', 'yes', '120', '0'));
  assert.doesNotMatch(primary.stdout, /not streaming/, 'every replica streams');

  const replica = await cli('instance', 'replication', 'orders-2');
  assert.equal(replica.code, 0, replica.stderr);
  for (const line of [row('Role', 'replica'), row('Replica of', `orders (${ids.orders})`), row('Streaming', 'yes'), row('Lag', '0 bytes, 0 s'), row('Position', '380')]) {
    assert.match(replica.stdout, line);
  }
  assert.doesNotMatch(replica.stdout, /│ (Failover|Synchronous) /, "a group's settings are shown on its primary");
  assert.match(replica.stdout, new RegExp(`its group's settings: see them on its primary, \`coffer instance replication ${ids.orders}\`\\.\\n$`));

  await group('solo', 7, {});
  const solo = await cli('instance', 'replication', 'solo');
  assert.equal(solo.code, 0, solo.stderr);
  assert.match(solo.stdout, row('Role', 'standalone'));
  assert.match(solo.stdout, /solo has no replicas: add one with `coffer instance create <name> --replica-of solo`\.\n$/);

  const json = await cli('instance', 'replication', 'orders-1', '--json');
  assert.deepEqual(JSON.parse(json.stdout), { role: 'replica', replica_of: ids.orders, streaming: true, position: 500, lag_bytes: 0, lag_seconds: 0 });
});

test('--failover and --synchronous change the group on its primary first; on a replica the error names the primary to use', async () => {
  const ids = await group('ledger', 40, { 'ledger-1': 40 });
  const changed = await cli('instance', 'replication', 'ledger', '--failover', 'off', '--synchronous', 'on');
  assert.equal(changed.code, 0, changed.stderr);
  assert.match(changed.stdout, /^Replication of ledger's group changed: failover off, synchronous on\.\n/);
  assert.match(changed.stdout, row('Failover', 'off'));
  assert.match(changed.stdout, row('Synchronous', 'on'));
  assert.deepEqual(engines.get(ids.ledger!)!.calls, ['setSynchronous true']);
  const stored = await h.store.instances.get(ids.ledger!);
  assert.deepEqual([stored?.failover, stored?.synchronousReplication], [false, true]);

  const onReplica = await cli('instance', 'replication', 'ledger-1', '--failover', 'on');
  assert.equal(onReplica.code, 1);
  assert.equal(
    onReplica.stderr,
    `Error: Instance ${ids['ledger-1']} is a replica of ${ids.ledger}: its group's settings are changed on its primary.\n` +
      `Run \`coffer instance replication ${ids.ledger} --failover on\`.\n`,
  );
  await group('alone', 3, {});
  const alone = await cli('instance', 'replication', 'alone', '--synchronous', 'on');
  assert.equal(alone.code, 1);
  assert.match(alone.stderr, /has no replicas: create one before making its commits wait for one\.\nAdd one with `coffer instance create alone-replica --replica-of alone`\.\n$/);

  const bad = await cli('instance', 'replication', 'ledger', '--failover', 'maybe');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /Expected on or off\./);
  assert.deepEqual(engines.get(ids.ledger!)!.calls, ['setSynchronous true'], 'nothing more was sent');
});

test('promote: the old primary is fenced, the replica promoted, the others follow it; the group keeps its settings', async () => {
  const ids = await group('shop', 900, { 'shop-1': 900, 'shop-2': 900 });
  assert.equal((await cli('instance', 'replication', 'shop', '--synchronous', 'on')).code, 0);
  journal.length = 0;

  const promoted = await cli('instance', 'promote', 'shop-1');
  assert.equal(promoted.code, 0, promoted.stderr);
  // the first look may come after the switchover ended: the fakes answer at once
  assert.match(promoted.stderr, /^Promoting shop-1 in place of shop: (PROMOTE|ACTIVE \/ HEALTHY) \(\d+s\)\n/);
  assert.match(promoted.stderr, /\nshop follows shop-1: ACTIVE \/ HEALTHY \(\d+s\)\n/);
  assert.match(promoted.stderr, /\nshop-2 follows shop-1: ACTIVE \/ HEALTHY \(\d+s\)\n$/);
  const replicas = [`shop (${ids.shop})`, `shop-2 (${ids['shop-2']})`].sort((a, b) => a.split('(')[1]!.localeCompare(b.split('(')[1]!));
  assert.match(promoted.stdout, new RegExp(`^Instance shop-1 is its group's primary now; its replicas: ${replicas.join(', ').replace(/[()]/g, '\\$&')}\\. \\(ACTIVE / HEALTHY, \\d+\\.\\d s\\)\\n$`));
  // the switchover's order: nothing is promoted before the old primary stopped taking writes
  assert.deepEqual(journal, [
    'shop fenceSource',
    'shop-1 detachReplica',
    'shop-1 addReplica shop',
    'shop followSource',
    'shop-1 addReplica shop-2',
    'shop-2 followSource',
    'shop-1 setSynchronous true',
  ]);

  const shown = await cli('instance', 'replication', 'shop-1');
  assert.match(shown.stdout, row('Role', 'primary'));
  assert.match(shown.stdout, row('Synchronous', 'on'));
  assert.match(shown.stdout, row(ids.shop!, 'shop', 'yes'));
  assert.match(shown.stdout, row(ids['shop-2']!, 'shop-2', 'yes'));
  const events = await cli('instance', 'events', 'shop-1');
  assert.match(events.stdout, row(`${ids['shop-1']} promoted to primary`, `Promoted in place of ${ids.shop} (a switchover)`));

  // the old primary is a replica now: promoting it back is a switchover too; the new primary is no replica
  const refused = await cli('instance', 'promote', 'shop-1');
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    `Error: Instance ${ids['shop-1']} is not a replica.\nPromote acts on a replica: \`coffer instance replication shop-1\` shows its role and its replicas.\n`,
  );
});

test('promote names a member that could not follow the new primary, and still succeeds', async () => {
  const ids = await group('cart', 10, { 'cart-1': 10, 'cart-broken': 10 });
  const promoted = await cli('instance', 'promote', 'cart-1');
  assert.equal(promoted.code, 0, promoted.stderr);
  assert.match(
    promoted.stderr,
    new RegExp(
      `Warning: cart-broken \\(${ids['cart-broken']}\\): Could not follow the new primary ${ids['cart-1']}: It holds writes the new primary lacks and its engine cannot undo them\\.\\n` +
        `  See \`coffer instance events ${ids['cart-broken']}\`\\.\\n`,
    ),
  );
  assert.doesNotMatch(promoted.stderr, /Warning: cart \(/);
  assert.match(promoted.stdout, /^Instance cart-1 is its group's primary now/);
});

test('promote while the primary does not answer points to eject; while the group changes primary, to its events', async () => {
  const ids = await group('gone', 10, { 'gone-1': 10 });
  await h.store.serviceStatuses.set({ instanceId: ids.gone!, status: 'HEALTHY', updatedAt: new Date(Date.now() - 10 * 60_000) });
  const refused = await cli('instance', 'promote', 'gone-1');
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    `Error: Instance ${ids.gone} is not currently available for an action to be performed (instance status was ACTIVE).\n` +
      `A switchover needs its primary ${ids.gone} to answer. If that primary is lost, \`coffer instance eject ${ids.gone}\` fails over to the replica furthest ahead (Coffer does so by itself unless failover is off).\n`,
  );
  assert.deepEqual(engines.get(ids.gone!)!.calls, [], 'nothing was fenced');

  // a failover already claimed the group
  const busy = await group('busy', 10, { 'busy-1': 10 });
  await h.store.instances.update(busy.busy!, { taskStatus: 'EJECTING', taskDescription: 'Failing over.', taskStartTime: new Date() });
  const claimed = await cli('instance', 'promote', 'busy-1');
  assert.equal(claimed.code, 1);
  assert.equal(
    claimed.stderr,
    `Error: Instance ${busy.busy} is not currently available for an action to be performed (task status was EJECTING).\n` +
      'Its group is already changing primary: follow it with `coffer instance events busy-1`, then try again if it is still needed.\n',
  );
});

test('eject: refused while the primary reports; once it is lost, the replica furthest ahead takes over and the other follows it', async () => {
  const ids = await group('lost', 100, { 'lost-behind': 90, 'lost-ahead': 100 });
  const alive = await cli('instance', 'eject', 'lost');
  assert.equal(alive.code, 1);
  assert.equal(
    alive.stderr,
    `Error: Replica Source ${ids.lost} cannot be ejected as it has a current heartbeat\n` +
      'lost still reports to Coffer or holds its primary lease, so it is not lost. To hand its role to a replica, run `coffer instance promote <replica>` (a switchover, which loses no write).\n',
  );
  const notSource = await cli('instance', 'eject', 'lost-ahead');
  assert.equal(notSource.code, 1);
  assert.match(notSource.stderr, /is not a replica source\.\nEject acts on a primary that has replicas: `coffer instance replication lost-ahead` shows its role\.\n$/);

  // failover off: the group waits for its owner, who ejects the primary once its host is gone
  assert.equal((await cli('instance', 'replication', 'lost', '--failover', 'off')).code, 0);
  await h.store.serviceStatuses.set({ instanceId: ids.lost!, status: 'HEALTHY', updatedAt: new Date(Date.now() - 10 * 60_000) });
  journal.length = 0;
  const ejected = await cli('instance', 'eject', 'lost');
  assert.equal(ejected.code, 0, ejected.stderr);
  assert.match(ejected.stderr, /^Failing over from lost: (EJECT|SHUTDOWN \/ SHUTDOWN) \(\d+s\)\n/);
  assert.match(ejected.stderr, /\nlost-ahead takes over: ACTIVE \/ HEALTHY \(\d+s\)\n/);
  assert.match(ejected.stderr, /\nlost-behind follows lost-ahead: ACTIVE \/ HEALTHY \(\d+s\)\n/);
  assert.match(
    ejected.stdout,
    new RegExp(
      `^lost-ahead \\(${ids['lost-ahead']}\\) is the group's primary now, in place of lost\\. ` +
        'lost stays stopped until its host is back, then rejoins as a replica \\(`coffer instance events lost` tells when\\)\\. \\(SHUTDOWN / SHUTDOWN, \\d+\\.\\d s\\)\\n$',
    ),
  );
  assert.deepEqual(journal, ['lost-ahead detachReplica', 'lost-ahead addReplica lost-behind', 'lost-behind followSource']);
  const [oldPrimary, newPrimary, other] = await Promise.all([ids.lost, ids['lost-ahead'], ids['lost-behind']].map((id) => h.store.instances.get(id!)));
  assert.equal(oldPrimary?.replicaOfId, ids['lost-ahead']);
  assert.ok(oldPrimary?.fencedAt instanceof Date, 'the old primary stays fenced');
  assert.equal(newPrimary?.replicaOfId ?? null, null);
  assert.equal(newPrimary?.failover, false, 'the group keeps failover off');
  assert.equal(other?.replicaOfId, ids['lost-ahead']);
  assert.deepEqual([newPrimary?.taskStatus, other?.taskStatus], ['NONE', 'NONE']);

  const shown = await cli('instance', 'replication', 'lost-ahead');
  assert.match(shown.stdout, row('Role', 'primary'));
  assert.match(shown.stdout, row('Failover', 'off'));
  assert.match(shown.stdout, row(ids['lost-behind']!, 'lost-behind', 'yes', '0'));
  // the old primary is a member its new primary's engine does not stream to yet
  assert.match(shown.stdout, row(ids.lost!, 'lost', 'no'));
  assert.match(shown.stdout, /A replica that is not streaming cannot take over: `coffer instance events <replica>` may tell why\.\n$/);
  const events = await cli('instance', 'events', 'lost');
  assert.match(events.stdout, row(`failover to ${ids['lost-ahead']}`, `${ids.lost} was lost; ${ids['lost-ahead']} takes writes`));
});
