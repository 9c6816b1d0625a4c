// bench/failover: how long a replication group is without a writable primary when its primary's
// host drops off the network, and what acknowledged writes that costs, next to the floor a person
// gets promoting a standby by hand, measured in the same run on the same box.
//
//   node --import tsx bench/failover.ts [--engines postgresql,mariadb,redis] [--runs 10]
//     [--synchronous] [--subnet 127.78] [--api-port 8791] [--out bench/results/failover.md] [--skip coffer|raw]
//
// Coffer: one cluster of network-namespace hosts (test/support/multi-host-cluster.ts: a control
// host and three compute hosts, each with its own `coffer agent`). Per engine, a primary and two
// replicas, one on each compute host (anti-affinity). Each run: a writer commits one row after
// another on the current primary, through its host, as a client on that machine would; the
// primary's host is cut off the network (its switch port down). Measured from the cut:
//   refused   — the old primary's first failed write (its guest stops the engine when the lease
//               runs out; with --synchronous a commit waits for a replica until then);
//   writable  — the first write the new primary acknowledges, found as a client finds it: the API
//               names the new primary as the old one's replica_of, then connect and write;
//   missing   — commits the old primary acknowledged that the new primary lacks;
// and, from the link coming back, rejoined — the old primary ACTIVE/HEALTHY as a replica of the
// new one. The next run cuts the new primary's host. A run with no failover within 60 s is
// counted as failed and reported.
//
// Raw: the floor without detection or fencing, by hand, as `nobody`, on loopback
// addresses of --subnet: a primary and a standby (PostgreSQL: initdb, pg_basebackup -R; Redis:
// redis-server --replicaof; MariaDB: two mariadb-install-db and a GTID replica), a writer on the
// primary, every process of the primary killed (SIGKILL, as a host dying), the standby promoted
// (pg_ctl promote -w; REPLICAOF NO ONE; STOP SLAVE, RESET SLAVE ALL, read_only off), and the time
// from the kill to the first write it acknowledges.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import pg from 'pg';
import { primaryLeaseTimes } from '../src/common/index.js';
import { login, request, trove, type Session } from '../test/support/api-client.js';
import { startMultiHostCluster, type MultiHostCluster } from '../test/support/multi-host-cluster.js';
import { makeDataDir } from '../test/support/temp-dir.js';

const engineNames = ['postgresql', 'mariadb', 'redis'] as const;
type EngineName = (typeof engineNames)[number];

const { values } = parseArgs({
  options: {
    engines: { type: 'string', default: engineNames.join(',') },
    runs: { type: 'string', default: '10' },
    synchronous: { type: 'boolean', default: false },
    subnet: { type: 'string', default: '127.78' },
    'api-port': { type: 'string', default: '8791' },
    out: { type: 'string', default: 'bench/results/failover.md' },
    // for working on one half: the other's rows stay empty
    skip: { type: 'string', default: '' },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a whole number of at least 1');
const engines = values.engines!.split(',').map((e) => e.trim()) as EngineName[];
for (const e of engines) if (!engineNames.includes(e)) throw new Error(`--engines takes some of ${engineNames.join(', ')}; not ${e}`);
if (!/^127\.\d{1,3}$/.test(values.subnet!)) throw new Error('--subnet takes two octets of 127.0.0.0/8, e.g. 127.78');
const subnet = values.subnet!;
const synchronous = values.synchronous!;
const skip = new Set(values.skip!.split(',').filter((x) => x !== ''));
for (const part of skip) if (part !== 'coffer' && part !== 'raw') throw new Error('--skip takes coffer or raw');
const adminPassword = 'Failover-bench-admin-1234';
const userPassword = 'Bench-user-pass-1234';
const failoverTimeoutMs = 60_000;
const giveUpAfter = 3;
const rejoinTimeoutMs = 180_000;
// How often the benchmark asks the API who the primary is now (a client's own choice).
const pollMs = 50;
// Longer than the lease (4 s): a commit waiting for a replica fails when the guest stops the engine, not before.
const writeTimeoutMs = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const worst = (xs: number[]) => Math.max(...xs);
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 400);

// ---------------------------------------------------------------------------------------------
// A tenant's client, the same three operations on each engine: write one id, read all ids.

interface TickClient {
  insert(id: number): Promise<void>;
  ids(): Promise<Set<number>>;
  close(): Promise<void>;
}

async function pgClient(host: string, port: number, user: string, password: string | undefined, database: string): Promise<TickClient> {
  const client = new pg.Client({ host, port, user, password, database, connectionTimeoutMillis: 3_000, query_timeout: writeTimeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return {
    insert: async (id) => void (await client.query('INSERT INTO ticks VALUES ($1)', [id])),
    ids: async () => new Set((await client.query<{ id: number }>('SELECT id FROM ticks')).rows.map((r) => r.id)),
    close: () => client.end().catch(() => undefined),
  };
}

function mariadbTicks(connection: Connection): TickClient {
  connection.on('error', () => undefined);
  return {
    insert: async (id) => void (await connection.query({ sql: 'INSERT INTO ticks VALUES (?)', timeout: writeTimeoutMs }, [id])),
    ids: async () => new Set((await connection.query<RowDataPacket[]>('SELECT id FROM ticks'))[0].map((r) => Number(r.id))),
    close: async () => connection.destroy(),
  };
}

async function redisClient(host: string, port: number, auth: string[]): Promise<TickClient> {
  const client = new Redis({
    host,
    port,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    disableClientInfo: true,
    connectTimeout: 3_000,
    commandTimeout: writeTimeoutMs,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    if (auth.length > 0) await client.call('AUTH', auth);
  } catch (err) {
    client.disconnect();
    throw err;
  }
  return {
    insert: async (id) => void (await client.sadd('ticks', String(id))),
    ids: async () => new Set((await client.smembers('ticks')).map(Number)),
    close: async () => client.disconnect(),
  };
}

/** What a create asks for, how a tenant reaches the instance on 127.0.0.1:`port`, and its table. */
interface CofferEngine {
  body: { datastore: { type: string }; databases?: object[]; users: object[] };
  connect(port: number): Promise<TickClient>;
  createTable(port: number): Promise<void>;
}

const cofferEngines: Record<EngineName, CofferEngine> = {
  postgresql: {
    body: { datastore: { type: 'postgresql' }, databases: [{ name: 'app' }], users: [{ name: 'app', password: userPassword, databases: [{ name: 'app' }] }] },
    connect: (port) => pgClient('127.0.0.1', port, 'app', userPassword, 'app'),
    async createTable(port) {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'app', password: userPassword, database: 'app' });
      await client.connect();
      await client.query('CREATE TABLE ticks (id int PRIMARY KEY)');
      await client.end();
    },
  },
  mariadb: {
    body: { datastore: { type: 'mariadb' }, databases: [{ name: 'app' }], users: [{ name: 'app', password: userPassword, databases: [{ name: 'app' }] }] },
    connect: async (port) => mariadbTicks(await createConnection({ host: '127.0.0.1', port, user: 'app', password: userPassword, database: 'app', connectTimeout: 3_000 })),
    async createTable(port) {
      const connection = await createConnection({ host: '127.0.0.1', port, user: 'app', password: userPassword, database: 'app' });
      await connection.query('CREATE TABLE ticks (id int PRIMARY KEY) ENGINE=InnoDB');
      await connection.end();
    },
  },
  redis: {
    body: { datastore: { type: 'redis' }, users: [{ name: 'app', password: userPassword }] },
    connect: (port) => redisClient('127.0.0.1', port, ['app', userPassword]),
    async createTable() {
      // a set needs no declaring
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Coffer

interface CofferRun {
  /** cut → the old primary's first failed write, and what it said */
  refusedMs?: number;
  refusal?: string;
  /** cut → the old primary's last acknowledged write */
  lastAckMs?: number;
  /** cut → the API names the new primary */
  namedMs?: number;
  /** cut → the first write the new primary acknowledged */
  writableMs?: number;
  acked?: number;
  /** of those, acknowledged after the cut: the replicas could not have received them */
  ackedAfterCut?: number;
  missing?: number;
  /** the link back → the old primary ACTIVE/HEALTHY as the new primary's replica */
  rejoinedMs?: number;
  /**
   * the old primary held commits the new one lacks (acknowledged after its replicas were cut
   * off) and left the group, stopped, as designed; the bench replaced it with a new replica
   */
  diverged?: boolean;
  /** cut → the old primary's agent logged its lease expired, and that it stops the engine (its own clock: the same machine's) */
  expiryLoggedMs?: number;
  stopLoggedMs?: number;
  /** the old primary, reached on its own host after the failover, acknowledged a write */
  oldPrimaryWrote?: boolean;
  failure?: string;
}

class Api {
  constructor(
    private session: Session,
    private readonly baseUrl: string,
  ) {}

  /** the call, with a new token once the one in hand expired (a long run outlives it) */
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    let res = await request<any>(method, trove(this.session, path), { token: this.session.token, body });
    if (res.status === 401) {
      this.session = await login(this.baseUrl, 'admin', adminPassword, 'admin');
      res = await request<any>(method, trove(this.session, path), { token: this.session.token, body });
    }
    return res;
  }

  async show(id: string): Promise<any> {
    const res = await this.call('GET', `/instances/${id}`);
    if (res.status !== 200) throw new Error(`GET /instances/${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.instance;
  }

  /** the id of the instance's newest event of `type` (events come newest first) */
  async lastEvent(id: string, type: string): Promise<string | undefined> {
    const res = await this.call('GET', `/instances/${id}/events`);
    if (res.status !== 200) throw new Error(`GET /instances/${id}/events: ${res.status}`);
    return (res.body.events as Array<{ id: string; type: string }>).find((e) => e.type === type)?.id;
  }

  async waitFor(id: string, done: (instance: any) => boolean, timeoutMs: number, what: string): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const instance = await this.show(id);
      if (done(instance)) return instance;
      if (instance.status === 'ERROR' || Date.now() > deadline) {
        throw new Error(`${what}: ${JSON.stringify({ status: instance.status, operating_status: instance.operating_status, fault: instance.fault })}`);
      }
      await sleep(250);
    }
  }
}

const healthy = (i: any) => i.status === 'ACTIVE' && i.operating_status === 'HEALTHY';

class Group {
  primaryId: string;
  private nextId = 1;
  private replacements = 1;
  private readonly ports = new Map<string, number>();

  constructor(
    private readonly cluster: MultiHostCluster,
    private readonly api: Api,
    private readonly engine: CofferEngine,
    readonly memberIds: string[],
  ) {
    this.primaryId = memberIds[0]!;
  }

  /** a port on 127.0.0.1 leading to the instance on its own host; one relay per instance */
  async portOf(id: string): Promise<number> {
    const known = this.ports.get(id);
    if (known !== undefined) return known;
    const { host, port } = this.cluster.placement(await this.api.show(id));
    const forwarded = await host.forward(port);
    this.ports.set(id, forwarded);
    return forwarded;
  }

  connect = async (id: string) => this.engine.connect(await this.portOf(id));

  /** until every member is ACTIVE/HEALTHY and each replica names the primary */
  async settled(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const id of this.memberIds) {
      await this.api.waitFor(
        id,
        (i) => healthy(i) && (id === this.primaryId ? i.replica_of === undefined || i.replica_of === null : i.replica_of?.id === this.primaryId),
        Math.max(0, deadline - Date.now()),
        `${id} did not settle in the group of ${this.primaryId}`,
      );
    }
  }

  /** a member that left the group (diverged) deleted, and a new replica of the primary in its place (on its host: the others are taken) */
  private async replace(id: string): Promise<void> {
    const res = await this.api.call('DELETE', `/instances/${id}`);
    if (res.status !== 202) throw new Error(`DELETE the diverged ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    const deadline = Date.now() + 60_000;
    while ((await this.api.call('GET', `/instances/${id}`)).status !== 404) {
      if (Date.now() > deadline) throw new Error(`the diverged ${id} was not deleted within 60 s`);
      await sleep(500);
    }
    const made = await this.api.call('POST', '/instances', { instance: { name: `fo-replacement-${this.replacements++}`, replica_of: this.primaryId } });
    if (made.status !== 200) throw new Error(`replica in place of ${id}: ${made.status} ${JSON.stringify(made.body)}`);
    const replacement = made.body.instance.id as string;
    await this.api.waitFor(replacement, (i) => healthy(i) && i.replica_of?.id === this.primaryId, 240_000, 'the replacement replica did not become ACTIVE');
    this.memberIds[this.memberIds.indexOf(id)] = replacement;
    this.ports.delete(id);
  }

  async run(): Promise<CofferRun> {
    const result: CofferRun = {};
    const oldId = this.primaryId;
    let rejoinedBefore: string | undefined;
    const oldPlace = this.cluster.placement(await this.api.show(oldId));
    const writer = await this.connect(oldId);
    const acked: number[] = [];
    const ackedAt: number[] = [];
    const firstId = this.nextId;
    const refused = (async () => {
      for (let id = firstId; ; id++) {
        try {
          await writer.insert(id);
          acked.push(id);
          ackedAt.push(Date.now());
        } catch (err) {
          return { at: Date.now(), why: messageOf(err) };
        }
      }
    })();
    // a steady stream first, so that the cut falls among writes in flight
    const warmUntil = Date.now() + 2_000;
    while (Date.now() < warmUntil) await sleep(20);

    const cutAt = Date.now();
    await oldPlace.host.linkDown();
    try {
      // the refusal and the failover race: both are watched from the cut
      const refusal = refused.then((r) => {
        result.refusedMs = r.at - cutAt;
        result.refusal = r.why;
      });
      let newId: string | undefined;
      const deadline = cutAt + failoverTimeoutMs;
      while (newId === undefined) {
        const old = await this.api.show(oldId).catch(() => undefined);
        if (old?.replica_of?.id !== undefined) newId = old.replica_of.id as string;
        else if (Date.now() > deadline) {
          throw new Error(`no failover within ${failoverTimeoutMs / 1000} s: old primary ${JSON.stringify({ status: old?.status, task: old?.task_description, fault: old?.fault })}`);
        } else await sleep(pollMs);
      }
      result.namedMs = Date.now() - cutAt;
      this.nextId = firstId + 10_000_000;
      for (let attempt = 0; result.writableMs === undefined; attempt++) {
        try {
          const client = await this.connect(newId);
          try {
            await client.insert(this.nextId++);
            result.writableMs = Date.now() - cutAt;
          } finally {
            await client.close();
          }
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`the new primary ${newId} took no write within ${failoverTimeoutMs / 1000} s: ${messageOf(err)}`);
          await sleep(pollMs);
        }
      }
      // bounded by the writer's own timeout, longer than the lease
      await Promise.race([refusal, sleep(writeTimeoutMs + 5_000)]);
      await writer.close();
      result.lastAckMs = (ackedAt.at(-1) ?? cutAt) - cutAt;
      Object.assign(result, fenceLog(this.cluster.agents[oldPlace.index]!.output(), oldId, cutAt));
      result.acked = acked.length;
      result.ackedAfterCut = ackedAt.filter((at) => at > cutAt).length;
      const check = await this.connect(newId);
      try {
        const present = await check.ids();
        result.missing = acked.filter((id) => !present.has(id)).length;
      } finally {
        await check.close();
      }
      // fenced: reached on its own host, the old primary takes no write
      try {
        const old = await this.connect(oldId);
        try {
          await old.insert(-this.nextId++);
          result.oldPrimaryWrote = true;
        } finally {
          await old.close();
        }
      } catch {
        result.oldPrimaryWrote = false;
      }
      this.primaryId = newId;
      rejoinedBefore = await this.api.lastEvent(oldId, 'replication.rejoined');
    } catch (err) {
      result.failure = messageOf(err);
      await writer.close();
    } finally {
      await oldPlace.host.linkUp();
    }
    if (result.failure !== undefined) {
      // a failover that came after the bench gave up still moved the group
      const old = await this.api.show(oldId).catch(() => undefined);
      if (old?.replica_of?.id !== undefined) this.primaryId = old.replica_of.id as string;
    }
    const upAt = Date.now();
    if (result.failure !== undefined) return result;
    try {
      // its view names the new primary from the failover on: the rejoin is the event the rejoin records
      const deadline = upAt + rejoinTimeoutMs;
      while ((await this.api.lastEvent(oldId, 'replication.rejoined')) === rejoinedBefore) {
        const old = await this.api.show(oldId);
        // it stays stopped, its status SHUTDOWN with a fault saying why
        if (/cannot rejoin/.test(String(old.fault?.message ?? ''))) {
          result.diverged = true;
          break;
        }
        if (Date.now() > deadline) throw new Error(`no rejoin within ${rejoinTimeoutMs / 1000} s: ${JSON.stringify(old.fault ?? null)}`);
        await sleep(250);
      }
      if (result.diverged === true) await this.replace(oldId);
      else {
        await this.api.waitFor(oldId, (i) => healthy(i) && i.replica_of?.id === this.primaryId, rejoinTimeoutMs, 'the rejoined old primary did not become healthy');
        result.rejoinedMs = Date.now() - upAt;
      }
    } catch (err) {
      result.failure = `after the failover: ${messageOf(err)}`;
    }
    this.nextId += 10_000_000;
    return result;
  }
}

/** when the old primary's agent logged the lease's expiry and the engine's stop, after the cut */
function fenceLog(output: string, instanceId: string, cutAt: number): Pick<CofferRun, 'expiryLoggedMs' | 'stopLoggedMs'> {
  const found: Pick<CofferRun, 'expiryLoggedMs' | 'stopLoggedMs'> = {};
  for (const line of output.split('\n')) {
    if (!line.startsWith('{') || !line.includes(instanceId)) continue;
    let entry: { time?: number; msg?: string };
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (entry.time === undefined || entry.time < cutAt) continue;
    if (found.expiryLoggedMs === undefined && entry.msg?.startsWith('primary lease expired')) found.expiryLoggedMs = entry.time - cutAt;
    if (found.stopLoggedMs === undefined && entry.msg?.startsWith('stopping the engine')) found.stopLoggedMs = entry.time - cutAt;
  }
  return found;
}

async function makeGroup(cluster: MultiHostCluster, api: Api, name: EngineName): Promise<Group> {
  const engine = cofferEngines[name];
  const made = await api.call('POST', '/instances', { instance: { name: `fo-${name}`, flavorRef: '1', volume: { size: 1 }, ...engine.body } });
  if (made.status !== 200) throw new Error(`create ${name}: ${made.status} ${JSON.stringify(made.body)}`);
  const primaryId = made.body.instance.id as string;
  await api.waitFor(primaryId, healthy, 180_000, `the ${name} primary did not become ACTIVE`);
  const ids = [primaryId];
  for (const suffix of ['a', 'b']) {
    const res = await api.call('POST', '/instances', { instance: { name: `fo-${name}-${suffix}`, replica_of: primaryId } });
    if (res.status !== 200) throw new Error(`replica of ${name}: ${res.status} ${JSON.stringify(res.body)}`);
    ids.push(res.body.instance.id as string);
  }
  for (const id of ids.slice(1)) await api.waitFor(id, healthy, 240_000, `a ${name} replica did not become ACTIVE`);
  const hosts = new Set<number>();
  for (const id of ids) hosts.add(cluster.placement(await api.show(id)).index);
  if (hosts.size !== 3) throw new Error(`anti-affinity: the ${name} group is on ${hosts.size} hosts, not 3`);
  if (synchronous) {
    const res = await api.call('PATCH', `/instances/${primaryId}/replication`, { replication: { synchronous: true } });
    if (res.status !== 200) throw new Error(`synchronous ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  const group = new Group(cluster, api, engine, ids);
  await engine.createTable(await group.portOf(primaryId));
  return group;
}

/** replicas first: a primary with replicas is not deleted */
async function dropGroup(api: Api, group: Group): Promise<void> {
  const order = [...group.memberIds.filter((id) => id !== group.primaryId), group.primaryId];
  for (const id of order) {
    await api.call('DELETE', `/instances/${id}`).catch(() => undefined);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && (await api.call('GET', `/instances/${id}`).catch(() => ({ status: 0 }))).status !== 404) await sleep(500);
  }
}

async function measureCoffer(cluster: MultiHostCluster, api: Api, name: EngineName): Promise<{ runs: CofferRun[]; setupFailure?: string }> {
  let group: Group;
  try {
    group = await makeGroup(cluster, api, name);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${name} group failed: ${why}\n`);
    return { runs: [], setupFailure: why.slice(0, 600) };
  }
  const results: CofferRun[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      try {
        await group.settled(180_000);
      } catch (err) {
        results.push({ failure: `the group did not settle before the run: ${messageOf(err)}` });
        break;
      }
      // the primary's guest renews its lease every second: let it hold one
      await sleep(2_000);
      const result = await group.run();
      results.push(result);
      process.stderr.write(`${name} run ${i + 1}: ${JSON.stringify(result)}\n`);
      // each failed run costs a minute and more: three in a row say enough
      if (results.length >= giveUpAfter && results.slice(-giveUpAfter).every((r) => r.writableMs === undefined)) break;
    }
  } finally {
    await dropGroup(api, group);
  }
  return { runs: results };
}

// ---------------------------------------------------------------------------------------------
// Raw: a primary and a standby by hand

let ids: { uid?: number; gid?: number } | undefined;

/**
 * An unprivileged user for the raw engines, which refuse to run as root. Not Coffer's
 * `coffer-db`: an agent on this host walls that user off the network (nft), and a standby
 * must reach its primary.
 */
function engineIds(): { uid?: number; gid?: number } {
  if (ids !== undefined) return ids;
  if (process.getuid?.() !== 0) return (ids = {});
  const id = (flag: string) => Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }).trim());
  return (ids = { uid: id('-u'), gid: id('-g') });
}

async function runTool(cmd: string, args: string[], ids: { uid?: number; gid?: number }): Promise<void> {
  const child = spawn(cmd, args, { ...ids, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${cmd} exited with ${code}: ${err.slice(0, 300)}`);
}

/** a server in a process group of its own, so that a kill takes every process of it at once */
function server(cmd: string, args: string[], ids: { uid?: number; gid?: number }): ChildProcess {
  const child = spawn(cmd, args, { ...ids, stdio: 'ignore', detached: true });
  child.on('error', () => undefined);
  return child;
}

async function killGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
  await exited;
}

async function until<T>(what: string, attempt: () => Promise<T>, timeoutMs = 60_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${messageOf(err)}`);
      await sleep(everyMs);
    }
  }
}

interface RawRun {
  /** kill → the promoted standby's first acknowledged write */
  writableMs: number;
  acked: number;
  missing: number;
}

/**
 * The part every engine shares: a writer on the primary, the kill, the promotion and the first
 * write on the standby, each client made by `connect`.
 */
async function rawFailover(
  connectPrimary: () => Promise<TickClient>,
  connectStandby: () => Promise<TickClient>,
  primary: ChildProcess,
  promote: () => Promise<void>,
): Promise<RawRun> {
  const writer = await connectPrimary();
  const acked: number[] = [];
  const stopped = (async () => {
    for (let id = 1; ; id++) {
      try {
        await writer.insert(id);
        acked.push(id);
      } catch {
        return;
      }
    }
  })();
  const warmUntil = Date.now() + 1_000;
  while (Date.now() < warmUntil && acked.length < 400) await sleep(20);
  const killedAt = Date.now();
  await killGroup(primary);
  await promote();
  let writableMs: number | undefined;
  for (let id = 10_000_000; writableMs === undefined; id++) {
    try {
      const client = await connectStandby();
      try {
        await client.insert(id);
        writableMs = Date.now() - killedAt;
      } finally {
        await client.close();
      }
    } catch (err) {
      if (Date.now() - killedAt > 60_000) throw new Error(`the promoted standby took no write: ${messageOf(err)}`);
      await sleep(5);
    }
  }
  await Promise.race([stopped, sleep(writeTimeoutMs)]);
  await writer.close();
  const check = await connectStandby();
  const present = await check.ids();
  await check.close();
  return { writableMs, acked: acked.length, missing: acked.filter((id) => !present.has(id)).length };
}

function postgresBinDir(): string {
  const debian = '/usr/lib/postgresql';
  const majors = existsSync(debian) ? readdirSync(debian).filter((d) => existsSync(join(debian, d, 'bin', 'postgres'))) : [];
  majors.sort((a, b) => Number(b) - Number(a));
  if (majors[0] === undefined) throw new Error('no PostgreSQL under /usr/lib/postgresql');
  return join(debian, majors[0], 'bin');
}

async function ownedDir(path: string, ids: { uid?: number; gid?: number }): Promise<string> {
  await mkdir(path, { recursive: true });
  if (ids.uid !== undefined) await chown(path, ids.uid, ids.gid!);
  return path;
}

async function rawPostgresOnce(root: string, i: number): Promise<RawRun> {
  const bin = postgresBinDir();
  const ids = engineIds();
  const dir = await ownedDir(join(root, `pg-${i}`), ids);
  const [a, b] = [`${subnet}.0.1`, `${subnet}.0.2`];
  const primaryData = join(dir, 'primary');
  const standbyData = join(dir, 'standby');
  await runTool(join(bin, 'initdb'), ['-D', primaryData, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8'], ids);
  await appendFile(join(primaryData, 'pg_hba.conf'), 'host all all 127.0.0.0/8 trust\nhost replication all 127.0.0.0/8 trust\n');
  const start = (data: string, address: string) =>
    server(join(bin, 'postgres'), ['-D', data, '-c', `listen_addresses=${address}`, '-c', 'port=5432', '-c', `unix_socket_directories=${dirname(data)}`], ids);
  // the two sockets would share a name in one directory
  await ownedDir(join(dir, 'p'), ids);
  await ownedDir(join(dir, 's'), ids);
  const primary = start(primaryData, a);
  let standby: ChildProcess | undefined;
  try {
    const connect = (address: string) => () => pgClient(address, 5432, 'postgres', undefined, 'postgres');
    const setup = await until('the raw primary', connect(a));
    await setup.close();
    const admin = new pg.Client({ host: a, port: 5432, user: 'postgres', database: 'postgres' });
    await admin.connect();
    await admin.query('CREATE TABLE ticks (id int PRIMARY KEY)');
    await admin.end();
    await runTool(join(bin, 'pg_basebackup'), ['-h', a, '-p', '5432', '-U', 'postgres', '-D', standbyData, '-R', '-X', 'stream'], ids);
    standby = server(
      join(bin, 'postgres'),
      ['-D', standbyData, '-c', `listen_addresses=${b}`, '-c', 'port=5432', '-c', `unix_socket_directories=${join(dir, 's')}`],
      ids,
    );
    // streaming before the writer starts
    await until('the raw standby streaming', async () => {
      const c = new pg.Client({ host: b, port: 5432, user: 'postgres', database: 'postgres' });
      await c.connect();
      try {
        const { rows } = await c.query<{ status: string }>('SELECT status FROM pg_stat_wal_receiver');
        if (rows[0]?.status !== 'streaming') throw new Error('not streaming yet');
      } finally {
        await c.end();
      }
    });
    return await rawFailover(connect(a), connect(b), primary, () => runTool(join(bin, 'pg_ctl'), ['promote', '-w', '-D', standbyData], ids));
  } finally {
    await killGroup(primary);
    if (standby !== undefined) await killGroup(standby);
  }
}

async function rawRedisOnce(root: string, i: number): Promise<RawRun> {
  const ids = engineIds();
  const dir = await ownedDir(join(root, `redis-${i}`), ids);
  const [a, b] = [`${subnet}.0.3`, `${subnet}.0.4`];
  const common = ['--port', '6379', '--appendonly', 'yes', '--save', ''];
  const primary = server('redis-server', ['--bind', a, '--dir', await ownedDir(join(dir, 'p'), ids), ...common], ids);
  const replica = server('redis-server', ['--bind', b, '--dir', await ownedDir(join(dir, 's'), ids), '--replicaof', a, '6379', ...common], ids);
  try {
    const connect = (address: string) => () => redisClient(address, 6379, []);
    await until('the raw Redis replica in sync', async () => {
      const c = new Redis({ host: b, port: 6379, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      c.on('error', () => undefined);
      try {
        await c.connect();
        if (!(await c.info('replication')).includes('master_link_status:up')) throw new Error('not in sync yet');
      } finally {
        c.disconnect();
      }
    });
    return await rawFailover(connect(a), connect(b), primary, async () => {
      const c = await until('the raw Redis replica', async () => {
        const client = new Redis({ host: b, port: 6379, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
        client.on('error', () => undefined);
        await client.connect();
        return client;
      });
      await c.call('REPLICAOF', ['NO', 'ONE']);
      c.disconnect();
    });
  } finally {
    await killGroup(primary);
    await killGroup(replica);
  }
}

async function rawMariadbOnce(root: string, i: number): Promise<RawRun> {
  const ids = engineIds();
  const dir = await ownedDir(join(root, `maria-${i}`), ids);
  const [a, b] = [`${subnet}.0.5`, `${subnet}.0.6`];
  const servers: ChildProcess[] = [];
  const start = async (name: string, address: string, serverId: number) => {
    const base = await ownedDir(join(dir, name), ids);
    const data = await ownedDir(join(base, 'data'), ids);
    const tmp = await ownedDir(join(base, 'tmp'), ids);
    const options = ['--no-defaults', `--datadir=${data}`, `--tmpdir=${tmp}`];
    await runTool('mariadb-install-db', [...options, '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve'], ids);
    const socketPath = join(base, 'mysqld.sock');
    const child = server(
        '/usr/sbin/mariadbd',
        [
          ...options,
          `--socket=${socketPath}`,
          `--pid-file=${join(base, 'mysqld.pid')}`,
          `--bind-address=${address}`,
          '--port=3306',
          '--skip-name-resolve',
          `--server-id=${serverId}`,
          `--log-bin=${join(base, 'binlog')}`,
          '--log-slave-updates',
          '--binlog-format=ROW',
          // as durable as a committed write should be
          '--sync-binlog=1',
          '--innodb-flush-log-at-trx-commit=1',
          ...(serverId === 2 ? ['--read-only=1'] : []),
        ],
        ids,
      );
    servers.push(child);
    return { child, admin: await until(`raw MariaDB ${name}`, () => createConnection({ socketPath, user: 'root', multipleStatements: true }), 60_000) };
  };
  try {
    // both settled before a failure leaves: the finally must find every server started
    const started = await Promise.allSettled([start('p', a, 1), start('s', b, 2)]);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const [primary, replica] = started.map((r) => (r as PromiseFulfilledResult<{ child: ChildProcess; admin: Connection }>).value) as [
      { child: ChildProcess; admin: Connection },
      { child: ChildProcess; admin: Connection },
    ];
    const [primaryAdmin, replicaAdmin] = [primary.admin, replica.admin];
    await primaryAdmin.query(
      "CREATE USER 'repl'@'%' IDENTIFIED BY 'Repl-pass-1234'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';" +
        "CREATE USER 'app'@'%' IDENTIFIED BY 'App-pass-1234'; CREATE DATABASE app; GRANT ALL ON app.* TO 'app'@'%';" +
        'CREATE TABLE app.ticks (id int PRIMARY KEY) ENGINE=InnoDB',
    );
    await replicaAdmin.query(
      `CHANGE MASTER TO MASTER_HOST='${a}', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='Repl-pass-1234', MASTER_USE_GTID=slave_pos; START SLAVE`,
    );
    await until('the raw MariaDB replica caught up', async () => {
      const [rows] = await replicaAdmin.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'app' AND table_name = 'ticks'");
      if (Number(rows[0]!.n) !== 1) throw new Error('not yet');
    });
    await primaryAdmin.end();
    const connect = (address: string) => async () =>
      mariadbTicks(await createConnection({ host: address, port: 3306, user: 'app', password: 'App-pass-1234', database: 'app', connectTimeout: 3_000 }));
    await replicaAdmin.end();
    return await rawFailover(connect(a), connect(b), primary.child, async () => {
      // a connection of its own: one kept open since the set-up was seen closed under it
      const admin = await until('the raw MariaDB replica', () => createConnection({ socketPath: join(dir, 's', 'mysqld.sock'), user: 'root', multipleStatements: true }));
      await admin.query('STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0');
      await admin.end();
    });
  } finally {
    for (const s of servers) await killGroup(s);
  }
}

const rawOnce: Record<EngineName, (root: string, i: number) => Promise<RawRun>> = {
  postgresql: rawPostgresOnce,
  mariadb: rawMariadbOnce,
  redis: rawRedisOnce,
};

async function measureRaw(name: EngineName): Promise<{ runs: RawRun[]; failure?: string }> {
  const dir = await makeDataDir('cf-bench-rawfo');
  const results: RawRun[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const result = await rawOnce[name](dir.path, i);
      results.push(result);
      process.stderr.write(`raw ${name} run ${i + 1}: ${JSON.stringify(result)}\n`);
    }
    return { runs: results };
  } catch (err) {
    process.stderr.write(`raw ${name} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    return { runs: results, failure: messageOf(err) };
  } finally {
    await dir.remove();
  }
}

// ---------------------------------------------------------------------------------------------

const labels: Record<EngineName, string> = { postgresql: 'PostgreSQL', mariadb: 'MariaDB', redis: 'Redis' };
const rawHow: Record<EngineName, string> = {
  postgresql: 'initdb, pg_basebackup -R, kill -9 of the primary, `pg_ctl promote -w`, first INSERT',
  mariadb: 'two mariadb-install-db, a GTID replica (MASTER_USE_GTID=slave_pos), kill -9 of the primary, STOP SLAVE; RESET SLAVE ALL; read_only=0, first INSERT',
  redis: 'redis-server --replicaof (AOF on), kill -9 of the primary, REPLICAOF NO ONE, first SADD',
};

/** `lowIsWorse`: the worst of a margin is its least */
function row(what: string, xs: number[], unit = ' ms', lowIsWorse = false): string {
  if (xs.length === 0) return `| ${what} | – | – | – |`;
  const bad = lowIsWorse ? Math.min(...xs) : worst(xs);
  return `| ${what} | ${median(xs).toFixed(0)}${unit} | ${bad.toFixed(0)}${unit} | ${xs.map((x) => x.toFixed(0)).join(', ')} |`;
}

/** a CA certificate and key (ECDSA P-256, as the agent makes its own) for every agent */
async function sharedCa(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const keyFile = join(dir, 'ca.key');
  const certFile = join(dir, 'ca.crt');
  await runTool('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile], {});
  await chmod(keyFile, 0o600);
  await runTool(
    'openssl',
    ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=Coffer failover bench CA', '-days', '30', '-out', certFile,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    {},
  );
  return { certFile, keyFile };
}

async function main(): Promise<void> {
  // Other work on the host skews every row alike; the load says how busy it was.
  const loadBefore = loadavg()[0]!;
  const startedAt = new Date();
  const coffer = new Map<EngineName, { runs: CofferRun[]; setupFailure?: string }>();
  const raw = new Map<EngineName, { runs: RawRun[]; failure?: string }>();
  const apiPort = Number(values['api-port']);
  if (!skip.has('coffer')) {
    // one CA on every agent host, as a deployment over several hosts has it: with a CA of each
    // agent's own, a Redis replica on another host refuses its primary's TLS certificate
    const caDir = await makeDataDir('cf-bench-fo-ca');
    const ca = await sharedCa(caDir.path);
    process.env.COFFER_CA_CERT_FILE = ca.certFile;
    process.env.COFFER_CA_KEY_FILE = ca.keyFile;
    const cluster = await startMultiHostCluster({ computeHosts: 3, apiPort, adminPassword, prefix: 'cf-bench-fo' }).catch(async (err: unknown) => {
      await caDir.remove();
      throw err;
    });
    try {
      const api = new Api(cluster.session, cluster.session.baseUrl);
      for (const name of engines) coffer.set(name, await measureCoffer(cluster, api, name));
    } finally {
      await cluster.stop();
      await caDir.remove();
    }
  }
  const loadMiddle = loadavg()[0]!;
  for (const name of engines) raw.set(name, skip.has('raw') ? { runs: [], failure: 'skipped (--skip raw)' } : await measureRaw(name));
  const loadAfter = loadavg()[0]!;

  const lines = [
    `# bench/failover — ${startedAt.toISOString().slice(0, 19)}Z`,
    '',
    `Machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; PostgreSQL from ${postgresBinDir()}.`,
    `${runs} runs per engine, ${synchronous ? 'synchronous' : 'asynchronous'} replication; the API polled every ${pollMs} ms for the new primary.`,
    `Load average (1 min) ${loadBefore.toFixed(1)} at the start, ${loadMiddle.toFixed(1)} after the Coffer runs, ${loadAfter.toFixed(1)} at the end.`,
    'Coffer: a primary and two replicas on three namespace hosts; a writer commits on the primary through its host; the host is cut off the network.',
    'Times from the cut. The writer\'s first error comes when the engine stops (its session cut) or, for a write left waiting, after its own 10 s timeout.',
    '"Missing": commits the old primary acknowledged that the new primary lacks. "Rejoined": from the link back until the rejoin event and the old primary ACTIVE/HEALTHY as a replica of the new one.',
    'Every agent is given the same CA (COFFER_CA_CERT_FILE/COFFER_CA_KEY_FILE), as a deployment over several hosts is.',
    `The lease: the guest stops its engine ${primaryLeaseTimes.ttlMs / 1000} s after its last renewal; the taskmanager fails over ${primaryLeaseTimes.failoverAfterMs / 1000} s after it.`,
    '',
  ];
  for (const name of engines) {
    const { runs: done, setupFailure } = coffer.get(name) ?? { runs: [], setupFailure: 'skipped (--skip coffer)' };
    const ok = done.filter((r) => r.failure === undefined || r.writableMs !== undefined);
    const failed = done.filter((r) => r.failure !== undefined);
    lines.push(`## ${labels[name]}`, '');
    if (setupFailure !== undefined) lines.push(`The group could not be made: ${setupFailure}`, '');
    const gaveUp = done.length < runs && done.length >= giveUpAfter && done.slice(-giveUpAfter).every((r) => r.writableMs === undefined);
    lines.push(`Coffer: ${done.length} of ${runs} runs made${gaveUp ? ` (stopped after ${giveUpAfter} failed runs in a row)` : ''}, ${failed.length} failed.`, '');
    lines.push('| what | median | worst | all runs |', '| --- | --- | --- | --- |');
    const pick = (f: (r: CofferRun) => number | undefined) => ok.map(f).filter((x): x is number => x !== undefined);
    lines.push(row('cut → the old primary\'s last acknowledged write', pick((r) => r.lastAckMs)));
    lines.push(row('cut → the writer\'s first error on it', pick((r) => r.refusedMs)));
    lines.push(row('cut → its agent logged the lease expired', pick((r) => r.expiryLoggedMs)));
    lines.push(row('cut → its agent logged stopping the engine', pick((r) => r.stopLoggedMs)));
    lines.push(row('cut → the API named the new primary', pick((r) => r.namedMs)));
    lines.push(row('cut → first write acknowledged by the new primary', pick((r) => r.writableMs)));
    lines.push(row('margin: that first write − the old primary\'s last ack (< 0: two primaries)', pick((r) => (r.writableMs !== undefined && r.lastAckMs !== undefined ? r.writableMs - r.lastAckMs : undefined)), ' ms', true));
    lines.push(row('acknowledged commits missing on the new primary', pick((r) => r.missing), ''));
    lines.push(row('commits acknowledged by the old primary in the run', pick((r) => r.acked), ''));
    lines.push(row('… of them after the cut', pick((r) => r.ackedAfterCut), ''));
    lines.push(row('link back → old primary rejoined as a replica', pick((r) => r.rejoinedMs)));
    const r = raw.get(name)!;
    lines.push(row(`raw, by hand: kill → first write on the promoted standby`, r.runs.map((x) => x.writableMs)));
    lines.push(row('raw: acknowledged commits missing on the standby', r.runs.map((x) => x.missing), ''));
    lines.push('');
    lines.push(`Raw: ${rawHow[name]}.${r.failure !== undefined ? ` Failed after ${r.runs.length} runs: ${r.failure}` : ''}`);
    const refusals = [...new Set(ok.map((x) => x.refusal).filter((x) => x !== undefined))];
    if (refusals.length > 0) lines.push(`The old primary's refusals said: ${refusals.map((x) => `“${x}”`).join('; ')}.`);
    const splitBrain = ok.filter((x) => x.oldPrimaryWrote === true).length;
    lines.push(`After the failover the old primary, reached on its own host, acknowledged a write in ${splitBrain} of ${ok.length} runs.`);
    const diverged = ok.filter((x) => x.diverged === true).length;
    if (diverged > 0) {
      lines.push(
        `In ${diverged} of ${ok.length} runs the old primary held commits the new one lacks (acknowledged after the cut) and left the group, stopped with its data and a fault, as designed; the bench deleted it and made a new replica in its place.`,
      );
    }
    for (const [i, x] of done.entries()) if (x.failure !== undefined) lines.push(`Run ${i + 1} failed: ${x.failure}`);
    lines.push('');
  }
  lines.push(
    '## Others\' published figures (not measured here)',
    '',
    'For context only, from the documentation of other products, not from this machine:',
    'Patroni with its defaults (ttl 30 s, loop_wait 10 s) fails over in about 30–45 s, and about 7–19 s tuned;',
    'Amazon RDS Multi-AZ states 60–120 s for a failover.',
    '',
  );
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  await mkdir(dirname(values.out!), { recursive: true });
  await writeFile(values.out!, text);
}

await main();
