import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import type { ComputeDriver, Endpoint, PlacedInstance, PortNeeds } from '../../src/agent/compute-driver.js';
import { suffix } from '../guest/engine-fixture.js';

// The compute driver port's contract, run against any adapter: what the agent relies on when it
// places instances on a host, hands them to their guests, and finds them again after a restart.
// An adapter's test calls `computeDriverConformance` with a way to make a driver on a host (a
// data directory here) and what it expects of that host's addressing.

const run = promisify(execFile);

export interface ConformanceHost {
  /** a new driver on the host (after a restart: another instance on the same host) */
  driver(): ComputeDriver;
  /** 'loopback': an address per instance, the standard port; 'host': one address, a port block each */
  addressing: 'loopback' | 'host';
  /** the host address, when addressing is 'host' */
  hostAddress?: string;
  /** called once after the suite: what is left of the host goes */
  cleanUp(): Promise<void>;
}

const pg: PortNeeds = { standardPort: 5432, span: 1 };
const redis: PortNeeds = { standardPort: 6379, span: 2 };
const engines = { postgresql: pg, redis } as Record<string, PortNeeds>;
const portsOf = (manager: string): PortNeeds => engines[manager] ?? pg;

function request(instanceId: string, manager: 'postgresql' | 'redis' = 'postgresql') {
  return {
    instanceId,
    engine: { manager, version: manager === 'redis' ? '7.0' : '15' },
    flavor: { id: 'small', ramMb: 512, vcpus: 1 },
    volumeSizeGb: 1,
    ports: portsOf(manager),
  };
}

const sameEndpoint = (a: Endpoint) => (b: Endpoint) => a.address === b.address && a.port === b.port;
const endpointOf = ({ record }: PlacedInstance): Endpoint => ({ address: record.address, port: record.port });

/** Every port each endpoint holds on its address, as `address:port`. */
function heldPorts(instances: readonly PlacedInstance[]): string[] {
  return instances.flatMap(({ record }) =>
    Array.from({ length: portsOf(record.engine.manager).span }, (_, i) => `${record.address}:${record.port + i}`),
  );
}

async function alive(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return status !== '' && !/^State:\s+Z/m.test(status);
}

function listen(address: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen({ host: address, port }, () => resolve(server));
  });
}

/** What a program run as the instance's identity gets connecting to address:port: 'open' or the error code. */
async function connectAs(driver: ComputeDriver, instance: PlacedInstance, { address, port }: Endpoint): Promise<string> {
  const script = `const s=require('node:net').connect(${port},'${address}');s.setTimeout(5000,()=>{console.log('timeout');process.exit()});s.on('connect',()=>{console.log('open');process.exit()});s.on('error',(e)=>{console.log(e.code);process.exit()})`;
  const runner = await driver.runnerFor(instance);
  return (await runner.run(process.execPath, ['-e', script], { timeoutMs: 20_000 })).stdout.trim();
}

export function computeDriverConformance(name: string, host: ConformanceHost): void {
  describe(`compute driver conformance: ${name}`, () => {
    const driver = host.driver();
    const id = (label: string) => `cf-${label}-${suffix()}`;
    after(() => host.cleanUp());

    it('opens an empty host, finding nothing to adopt', async (t) => {
      assert.deepEqual(await driver.open(portsOf), []);
      t.diagnostic(`isolated: ${driver.isolated}`);
    });

    it('places instances each with an endpoint of its own, idempotently', async () => {
      const placed = [
        await driver.place(request(id('a'))),
        await driver.place(request(id('r'), 'redis')),
        ...(await Promise.all([id('b'), id('c'), id('d')].map((instanceId) => driver.place(request(instanceId))))),
      ];
      const held = heldPorts(placed);
      assert.equal(new Set(held).size, held.length, `no port of any address is held twice: ${held.join(' ')}`);
      if (host.addressing === 'loopback') {
        assert.equal(new Set(placed.map((p) => p.record.address)).size, placed.length, 'an address each');
        for (const p of placed) assert.equal(p.record.port, portsOf(p.record.engine.manager).standardPort, 'the standard port');
        for (const p of placed) assert.match(p.record.address, /^127\./);
      } else {
        for (const p of placed) assert.equal(p.record.address, host.hostAddress, "the host's address");
        assert.equal(new Set(placed.map((p) => p.record.port)).size, placed.length, 'a port each');
        for (const p of placed) assert.notEqual(p.record.port, portsOf(p.record.engine.manager).standardPort);
      }
      const again = await driver.place(request(placed[0]!.record.id));
      assert.deepEqual(again, placed[0], 'placing it again gives the instance as it is');
      assert.deepEqual(await driver.find(placed[0]!.record.id), placed[0]);
      assert.equal(await driver.find(id('never')), undefined);
      await Promise.all(placed.map((p) => driver.remove(p.record.id)));
    });

    it("gives the instance's directory to its identity alone, and runs its programs as that identity", async () => {
      const instance = await driver.place(request(id('own')));
      const other = await driver.place(request(id('other')));
      const runner = await driver.runnerFor(instance);
      const { stdout: uid } = await runner.run('id', ['-u'], { timeoutMs: 10_000 });
      const info = await stat(instance.dir);
      assert.ok(info.isDirectory());
      assert.equal(info.mode & 0o006, 0, 'others may not read or write it');
      if (driver.isolated) {
        assert.notEqual(Number(uid), 0, 'not as root');
        assert.ok(instance.record.osUser !== undefined);
        const { stdout: gid } = await runner.run('id', ['-g'], { timeoutMs: 10_000 });
        assert.equal(info.gid, Number(gid), "the directory opens to the instance's group");
        assert.equal(info.mode & 0o777, 0o710);
        assert.notEqual(instance.record.osUser, other.record.osUser, 'an identity each');
        // the host's directory is not the engine's to change; a directory handed over inside is
        await assert.rejects(runner.run('mkdir', [join(instance.dir, 'nope')], { timeoutMs: 10_000 }));
        const data = join(instance.dir, 'data');
        await run('mkdir', [data]);
        await runner.handOver(data);
        await runner.run('touch', [join(data, 'mine')], { timeoutMs: 10_000 });
        assert.equal((await stat(join(data, 'mine'))).uid, Number(uid));
        // another instance's identity cannot even look in
        const otherRunner = await driver.runnerFor(other);
        await assert.rejects(otherRunner.run('ls', [instance.dir], { timeoutMs: 10_000 }), /Permission denied|exited with code/);
      } else {
        assert.equal(Number(uid), process.getuid!(), "as the agent's own user");
        assert.equal(info.mode & 0o777, 0o700);
      }
      await driver.remove(instance.record.id);
      await driver.remove(other.record.id);
      await assert.rejects(access(instance.dir), /ENOENT/, 'remove takes the directory');
      if (driver.isolated) {
        await assert.rejects(run('id', [instance.record.osUser!]), 'remove takes the identity');
      }
    });

    it('hands an endpoint out again only once its instance was removed', async () => {
      const a = await driver.place(request(id('first')));
      const b = await driver.place(request(id('second')));
      const c = await driver.place(request(id('third')));
      for (const p of [b, c]) assert.ok(!sameEndpoint(endpointOf(a))(endpointOf(p)));
      await driver.remove(a.record.id);
      const d = await driver.place(request(id('fourth')));
      // the lowest free endpoint: the one just released
      assert.deepEqual(endpointOf(d), endpointOf(a));
      for (const p of [b, c]) assert.ok(!sameEndpoint(endpointOf(d))(endpointOf(p)));
      await Promise.all([b, c, d].map((p) => driver.remove(p.record.id)));
    });

    it('finds its instances and their processes again from a new driver, and their endpoints stay theirs', async () => {
      const instance = await driver.place(request(id('adopt')));
      const runner = await driver.runnerFor(instance);
      // a stand-in for an engine: a detached process working in the instance's directory
      const logFile = join(instance.dir, 'engine.log');
      const child = await runner.spawnDetached('sleep', ['600'], { logFile, cwd: instance.dir });
      assert.ok(await alive(child.pid));
      assert.deepEqual(await driver.processes(instance), [child.pid]);

      const restarted = host.driver();
      const found = await restarted.open(portsOf);
      const adopted = found.find((p) => p.record.id === instance.record.id);
      assert.deepEqual(adopted, instance, 'the new driver finds the instance as it was placed');
      assert.deepEqual(await restarted.processes(adopted!), [child.pid], 'and its process, still running');
      // a new instance never gets the adopted one's endpoint
      const fresh = await restarted.place(request(id('fresh')));
      assert.ok(!sameEndpoint(endpointOf(instance))(endpointOf(fresh)));

      await restarted.stopProcesses(adopted!);
      assert.equal(await alive(child.pid), false, 'stop really ends it');
      assert.deepEqual(await restarted.processes(adopted!), []);
      await restarted.remove(instance.record.id);
      await restarted.remove(fresh.record.id);
    });

    it('stops what ignores SIGTERM and what the instance started, and remove leaves no process behind', async () => {
      const instance = await driver.place(request(id('stubborn')));
      const runner = await driver.runnerFor(instance);
      const logFile = join(instance.dir, 'engine.log');
      // ignores SIGTERM and starts a child of its own, as an engine's workers
      const script = "process.on('SIGTERM',()=>{});require('node:child_process').spawn('sleep',['600'],{stdio:'ignore'});setInterval(()=>{},1000)";
      const child = await runner.spawnDetached(process.execPath, ['-e', script], { logFile, cwd: instance.dir });
      await assert.doesNotReject(
        (async () => {
          for (let i = 0; i < 200 && (await driver.processes(instance)).length < 2; i++) await new Promise((r) => setTimeout(r, 25));
        })(),
      );
      const before = await driver.processes(instance);
      assert.ok(before.includes(child.pid) && before.length === 2, `the process and its child: ${before.join(',')}`);
      await driver.remove(instance.record.id);
      for (const pid of before) assert.equal(await alive(pid), false, `pid ${pid} ended`);
      await assert.rejects(access(instance.dir), /ENOENT/);
    });

    it('walls an isolated identity in: it reaches what it is allowed and nothing else', async () => {
      const instance = await driver.place(request(id('wall')));
      const other = await driver.place(request(id('beside')));
      const own = endpointOf(instance);
      // listeners where the engines would be, and one at another port of the same address
      const servers = [await listen(own.address, own.port), await listen(other.record.address, other.record.port)];
      const stray = await listen(own.address, 0);
      const strayPort = (stray.address() as AddressInfo).port;
      try {
        await driver.wall(instance, [own]);
        if (!driver.isolated) {
          // engines run as the agent's own user, which is never walled: nothing is, and the
          // agent reports no root that could run programs (see unprivileged-agent)
          assert.equal(await connectAs(driver, instance, { address: own.address, port: strayPort }), 'open');
          return;
        }
        assert.equal(await connectAs(driver, instance, own), 'open');
        assert.match(await connectAs(driver, instance, endpointOf(other)), /ECONNREFUSED|EPERM|EACCES/);
        assert.match(await connectAs(driver, instance, { address: own.address, port: strayPort }), /ECONNREFUSED|EPERM|EACCES/);
        // the allowed list is replaced, not added to
        await driver.wall(instance, [endpointOf(other)]);
        assert.match(await connectAs(driver, instance, own), /ECONNREFUSED|EPERM|EACCES/);
        assert.equal(await connectAs(driver, instance, endpointOf(other)), 'open');
      } finally {
        for (const server of [...servers, stray]) server.close();
        await driver.remove(instance.record.id);
        await driver.remove(other.record.id);
      }
    });

    it('keeps a changed record for the next adoption', async () => {
      const instance = await driver.place(request(id('save')));
      const changed = { ...instance, record: { ...instance.record, desiredState: 'stopped' as const, volumeSizeGb: 3 } };
      await driver.save(changed);
      assert.deepEqual(await host.driver().find(instance.record.id), changed);
      await writeFile(join(instance.dir, 'leftover'), 'x');
      await driver.remove(instance.record.id);
      assert.equal(await driver.find(instance.record.id), undefined);
      // removing what is gone is a no-op
      await driver.remove(instance.record.id);
    });
  });
}
