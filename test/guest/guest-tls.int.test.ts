// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { engineRegistry, type CertificateIssuer } from '../../src/guest/index.js';
import { killServerProcesses, runningServer } from '../../src/guest/engines/redis/server-process.js';
import { connectRedis } from '../support/redis-client.js';
import { testCa } from '../support/test-ca.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { startBusGuest, type BusGuest } from './bus-guest.js';
import { localRunner } from './engine-fixture.js';

// The guest's part of TLS, on a real Redis (the quickest engine to start): the certificate is
// installed before the engine first starts, reported to the conductor with the heartbeat, renewed
// when a guest starts and finds it due, and rotated on request over the bus, each time served by
// the running engine without a restart.

const instanceId = 'guest-tls';

describe('guest TLS', () => {
  let root: string;
  let dir: string;
  let bus: BusGuest | undefined;
  const address = `127.93.${randomInt(0, 256)}.${randomInt(2, 254)}`;
  const input = { memoryMb: 256, databases: [], users: [{ name: 'app', password: 'App-pass-1', databases: [] }], adminPassword: 'x', access: null };

  const issuer = async (renewBeforeMs: number): Promise<CertificateIssuer> => {
    const ca = await testCa();
    return { caCertificate: ca.certificate, issue: () => ca.issue({ address, validityDays: 30 }), renewBeforeMs };
  };
  const start = async (renewBeforeMs: number) => {
    const runner = await localRunner();
    const discovery = await engineRegistry.redis.discover([], runner);
    return startBusGuest({
      instance: { instanceId, dir, address, port: 6379, volumeSizeGb: 1 },
      engine: { manager: 'redis', binary: discovery.binaries[0] },
      runner,
      desiredState: 'running',
      certificates: await issuer(renewBeforeMs),
    });
  };
  /** the serial of the certificate the engine serves to a client that verifies it */
  const servedSerial = async (): Promise<string> => {
    const client = await connectRedis(address, 6380, ['app', 'App-pass-1'], { ca: (await testCa()).certificate });
    try {
      return (client.stream as TLSSocket).getPeerCertificate().serialNumber;
    } finally {
      client.disconnect();
    }
  };

  before(async () => {
    root = await tempDataDir('coffer-gt-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
  });

  after(async () => {
    await bus?.guest.destroy().catch(() => undefined);
    await bus?.closeBus();
    if (root !== undefined) {
      await killServerProcesses(join(dir, 'data')).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    }
  });

  it('installs a certificate before the first start and reports it with the healthy heartbeat', async () => {
    bus = await start(10 * 86_400_000);
    await bus.rpc.prepare(input);
    await until('prepare reports', () => bus!.beats.some((b) => b.status === 'FAILED' || b.status === 'HEALTHY'), 60_000);
    const healthy = bus.beats.find((b) => b.status === 'HEALTHY');
    assert.ok(healthy?.tls, JSON.stringify(bus.beats));
    assert.equal(healthy.tls.caCertificate, (await testCa()).certificate);
    assert.equal(healthy.tls.port, 6380);
    const days = (Date.parse(healthy.tls.expiresAt) - Date.now()) / 86_400_000;
    assert.ok(days > 29 && days <= 30, `expires in ${days} days`);
    assert.ok(await servedSerial());
  });

  it('rotates on request over the bus: the running engine serves the new certificate', async () => {
    const pid = await processOf();
    const before = await servedSerial();
    await bus!.rpc.rotateCertificate({});
    assert.notEqual(await servedSerial(), before);
    assert.equal(await processOf(), pid, 'no restart');
  });

  it('renews a certificate that is due when a guest starts, without restarting the engine', async () => {
    const pid = await processOf();
    const before = await servedSerial();
    await bus!.guest.close();
    await bus!.closeBus();
    // a renewal window longer than the certificate's life: every certificate is due
    bus = await start(60 * 86_400_000);
    await until('renewed at start', async () => (await servedSerial()) !== before, 30_000);
    assert.equal(await processOf(), pid, 'no restart');
  });

  it("fails a new instance's prepare with its certificate's fault once the files made beside it are done, starting nothing; delivered again, it starts", async () => {
    const otherDir = join(root, 'failing');
    await mkdir(otherDir);
    await chmod(otherDir, 0o711);
    const otherAddress = `127.93.${randomInt(0, 256)}.${randomInt(2, 254)}`;
    const ca = await testCa();
    let issues = 0;
    const runner = await localRunner();
    const discovery = await engineRegistry.redis.discover([], runner);
    const failing = await startBusGuest({
      instance: { instanceId: 'guest-tls-failing', dir: otherDir, address: otherAddress, port: 6379, volumeSizeGb: 1 },
      engine: { manager: 'redis', binary: discovery.binaries[0] },
      runner,
      desiredState: 'running',
      certificates: {
        caCertificate: ca.certificate,
        // the first as a CA that cannot sign: the files are being made meanwhile
        issue: async () => (++issues === 1 ? Promise.reject(new Error('the CA cannot sign')) : ca.issue({ address: otherAddress, validityDays: 30 })),
        renewBeforeMs: 86_400_000,
      },
    });
    const dataDir = join(otherDir, 'data');
    try {
      await failing.rpc.prepare(input);
      await until('prepare reports', () => failing.beats.some((b) => b.status === 'FAILED' || b.status === 'HEALTHY'), 60_000);
      const failed = failing.beats.find((b) => b.status === 'FAILED');
      assert.match(failed?.message ?? '', /the CA cannot sign/, JSON.stringify(failing.beats));
      assert.equal(await runningServer({ dataDir, pidFile: join(dataDir, 'redis.pid'), configFile: join(otherDir, 'redis.conf') }), undefined, 'nothing started');

      await failing.rpc.prepare(input);
      await until('prepared again', () => failing.beats.some((b) => b.status === 'HEALTHY'), 60_000);
      const app = await connectRedis(otherAddress, 6379, ['app', 'App-pass-1']);
      assert.equal(await app.call('ACL', ['WHOAMI']), 'app');
      app.disconnect();
    } finally {
      await failing.guest.destroy().catch(() => undefined);
      await failing.closeBus();
      await killServerProcesses(dataDir).catch(() => undefined);
    }
  });

  function processOf(): Promise<number | undefined> {
    return runningServer({ dataDir: join(dir, 'data'), pidFile: join(dir, 'data', 'redis.pid'), configFile: join(dir, 'redis.conf') });
  }
});
