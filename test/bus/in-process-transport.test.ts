import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectTransport, InProcessTransport } from '../../src/bus/index.js';
import { transportSuite } from './transport.suite.js';

transportSuite('InProcessTransport', async () => new InProcessTransport());

describe('connectTransport', () => {
  it('gives the in-process transport for no URL, memory: and inproc:', async () => {
    for (const url of [undefined, '', 'memory:', 'inproc:']) {
      const transport = await connectTransport(url);
      assert.ok(transport instanceof InProcessTransport, String(url));
      await transport.close();
    }
  });

  it('refuses a URL it has no transport for, saying which it accepts', async () => {
    await assert.rejects(connectTransport('redis://127.0.0.1:6379'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'BadRequest');
      assert.match(err.message, /"redis:"/);
      assert.match(err.message, /amqp:\/\//);
      return true;
    });
  });
});
