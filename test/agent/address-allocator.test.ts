import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { addressAllocator } from '../../src/agent/agent.js';
import { HostPortAllocator, LoopbackAllocator, parsePortRange } from '../../src/agent/address-allocator.js';
import { CofferError, engineStandardPorts } from '../../src/common/index.js';
import { engineNames, engineRegistry } from '../../src/guest/index.js';
import { randomPool } from '../guest/engine-fixture.js';

const pg = { standardPort: 5432, span: 1 };
const redis = { standardPort: 6379, span: 2 };

/** a random block of 20 ports in 41000-48999, so parallel runs rarely meet */
function randomRange(): { first: number; text: string } {
  const first = 41_000 + Math.floor(Math.random() * 400) * 20;
  return { first, text: `${first}-${first + 19}` };
}

function listen(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port }, () => resolve(server));
  });
}

describe('address allocators', () => {
  it('the API knows every engine\'s standard port as the engine does', () => {
    for (const name of engineNames) assert.equal(engineStandardPorts[name], engineRegistry[name].standardPort, name);
  });

  it('loopback: an address each with the standard port, as before', async () => {
    const allocator = new LoopbackAllocator(randomPool());
    const a = await allocator.allocate('a', pg);
    const b = await allocator.allocate('b', pg);
    assert.notEqual(a.address, b.address);
    assert.deepEqual([a.port, b.port], [5432, 5432]);
    assert.deepEqual(allocator.defaultClientCidrs, ['127.0.0.0/8']);
    assert.deepEqual(await allocator.allocate('a', pg), a);
  });

  describe('host address with a port each', () => {
    let busy: Server;
    const range = randomRange();
    before(async () => {
      // something that is not ours holds the range's third port
      busy = await listen('127.0.0.1', range.first + 2);
    });
    after(() => busy.close());

    it('gives each instance its own port block on the one address, skipping ports in use by others', async () => {
      const allocator = new HostPortAllocator('127.0.0.1', range.text);
      const a = await allocator.allocate('a', pg);
      assert.deepEqual(a, { address: '127.0.0.1', port: range.first });
      // Redis needs two ports (plaintext, TLS): the next two free, not the busy third one
      const r = await allocator.allocate('r', redis);
      assert.deepEqual(r, { address: '127.0.0.1', port: range.first + 3 });
      const b = await allocator.allocate('b', pg);
      assert.equal(b.port, range.first + 1);
      const c = await allocator.allocate('c', pg);
      assert.equal(c.port, range.first + 5, 'after the Redis block');
      assert.deepEqual(allocator.defaultClientCidrs, ['0.0.0.0/0']);
    });

    it('hands a port out again only once it was released', async () => {
      const allocator = new HostPortAllocator('127.0.0.1', `${range.first}-${range.first + 1}`);
      const a = await allocator.allocate('a', pg);
      const b = await allocator.allocate('b', pg);
      await assert.rejects(allocator.allocate('c', pg), (err: CofferError) => err.code === 'NoHostAvailable');
      allocator.release('a');
      assert.deepEqual(await allocator.allocate('c', pg), a);
      assert.notDeepEqual(b, a);
    });

    it('reserves the ports of re-adopted instances, refusing a second holder, and keeps a loopback address found from before', async () => {
      const allocator = new HostPortAllocator('127.0.0.1', range.text);
      allocator.reserve('r', { address: '127.0.0.1', port: range.first }, redis);
      assert.throws(
        () => allocator.reserve('x', { address: '127.0.0.1', port: range.first + 1 }, pg),
        (err: CofferError) => err.code === 'Conflict',
      );
      allocator.reserve('old', { address: '127.77.0.2', port: 5432 }, pg);
      assert.deepEqual(allocator.endpointOf('old'), { address: '127.77.0.2', port: 5432 });
      // ports 0 and 1 are Redis's, 2 is busy
      assert.equal((await allocator.allocate('n', pg)).port, range.first + 3);
    });

    it('gives up on an address that is not this host\'s', async () => {
      const allocator = new HostPortAllocator('192.0.2.77', range.text);
      await assert.rejects(allocator.allocate('a', pg), (err: CofferError) => err.code === 'NoHostAvailable' && /this host's address/.test(err.message));
    });
  });

  it('refuses what is not an address or a range', () => {
    assert.throws(() => new HostPortAllocator('db.example'), /Invalid host address/);
    assert.throws(() => new HostPortAllocator('0.0.0.0'), /Invalid host address/);
    for (const text of ['40000', '500-600', '40010-40000', '40000-70000']) assert.throws(() => parsePortRange(text), /Invalid instance port range/);
    assert.deepEqual(parsePortRange('30000-32767'), { first: 30000, last: 32767 });
  });

  it("the agent's options choose the allocator", () => {
    assert.ok(addressAllocator({}) instanceof LoopbackAllocator);
    const host = addressAllocator({ hostAddress: '127.0.0.1', instancePorts: '40000-40009' });
    assert.ok(host instanceof HostPortAllocator);
    assert.equal(host.description, '127.0.0.1, ports 40000-40009');
  });
});
