// test-lane: serial (as root it adds and removes OS users, walls them and counts their processes by uid; ports from a random range of 127.0.0.1)
import { rm } from 'node:fs/promises';
import { silentLogger } from '../../src/common/logger.js';
import { HostPortAllocator, LoopbackAllocator } from '../../src/agent/address-allocator.js';
import { LocalComputeDriver } from '../../src/agent/local-compute-driver.js';
import { randomPool } from '../guest/engine-fixture.js';
import { removeInstanceUsersUnder } from '../support/instance-users.js';
import { tempDataDir } from '../support/temp-dir.js';
import { computeDriverConformance } from './compute-driver-conformance.js';

// The local process driver passes the compute driver port's contract with both address
// allocators: a loopback address per instance (the embedded default) and the host's address with
// a port block per instance (here 127.0.0.1, every 127/8 address being this host's). As root it
// runs each instance as a user of its own behind the network wall; otherwise as this user.

async function localHost(prefix: string, addresses: () => LoopbackAllocator | HostPortAllocator) {
  const dataDir = await tempDataDir(prefix);
  return {
    dataDir,
    // each driver a fresh allocator, as a restarted agent has: what it knows comes from the host
    driver: () => new LocalComputeDriver({ dataDir, addresses: addresses(), logger: silentLogger() }),
    cleanUp: async () => {
      await removeInstanceUsersUnder(dataDir);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

const pool = randomPool();
const loopback = await localHost('coffer-cd-lo-', () => new LoopbackAllocator(pool));
computeDriverConformance('local driver, loopback addresses', { ...loopback, addressing: 'loopback' });

// a random block of 100 in 42000-49999, so that parallel runs rarely meet
const first = 42_000 + Math.floor(Math.random() * 80) * 100;
const ports = `${first}-${first + 99}`;
const host = await localHost('coffer-cd-host-', () => new HostPortAllocator('127.0.0.1', ports));
computeDriverConformance('local driver, host address with a port per instance', { ...host, addressing: 'host', hostAddress: '127.0.0.1' });
