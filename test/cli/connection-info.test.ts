import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectionInfo } from '../../src/cli/connection-info.js';
import type { InstanceView } from '../../src/cli/api-types.js';

describe('connection info', () => {
  const redis = {
    id: 'i1',
    name: 'cache',
    addresses: [{ address: '127.77.0.9', type: 'private' }],
    datastore: { type: 'redis', version: '7.0' },
  } as unknown as InstanceView;

  it('logs in to Redis as the created user, asking for the password (no passwordless default user)', () => {
    assert.deepEqual(connectionInfo(redis, 'app'), {
      host: '127.77.0.9',
      port: 6379,
      command: 'redis-cli -h 127.77.0.9 -p 6379 --user app --askpass',
      url: 'redis://app@127.77.0.9:6379',
    });
    assert.equal(connectionInfo(redis)?.command, 'redis-cli -h 127.77.0.9 -p 6379 --user <user> --askpass');
  });

  it("connects to an instance on a host's address at the port its view carries", () => {
    const onHost = {
      id: 'i2',
      name: 'db',
      addresses: [{ address: '192.0.2.10', type: 'private', port: 30002 }],
      ip: ['192.0.2.10'],
      datastore: { type: 'postgresql', version: '15' },
    } as unknown as InstanceView;
    const info = connectionInfo(onHost, 'app', 'app');
    assert.equal(info?.command, 'psql -h 192.0.2.10 -p 30002 -U app -d app');
    assert.equal(info?.url, 'postgresql://app@192.0.2.10:30002/app');
  });
});
