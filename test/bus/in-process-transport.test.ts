import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BusKey, connectTransport, InProcessTransport, SignedTransport } from '../../src/bus/index.js';
import { transportSuite } from './transport.suite.js';

transportSuite('InProcessTransport', async () => new InProcessTransport());

describe('connectTransport', () => {
  it('gives the in-process transport, signed, for no URL, memory: and inproc:', async () => {
    for (const url of [undefined, '', 'memory:', 'inproc:']) {
      const transport = await connectTransport(url, { key: BusKey.generate() });
      assert.ok(transport instanceof SignedTransport, String(url));
      assert.ok(transport.inner instanceof InProcessTransport, String(url));
      await transport.close();
    }
  });

  it('refuses a URL it has no transport for, saying which it accepts', async () => {
    await assert.rejects(connectTransport('redis://127.0.0.1:6379', { key: BusKey.generate() }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'BadRequest');
      assert.match(err.message, /"redis:"/);
      assert.match(err.message, /amqp:\/\//);
      return true;
    });
  });
});
