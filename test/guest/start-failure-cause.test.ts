// The one line a tenant reads when an engine fails to start: the cause from the engine's log,
// without timestamps, pids or host paths. The last test takes the log from a real redis-server
// that cannot bind its address.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startFailureCause, withoutPaths } from '../../src/guest/engines/start-failure-cause.js';

test('a known system error is the cause, whatever the engine wrapped it in', () => {
  assert.equal(
    startFailureCause(
      '2026-12-02 21:00:00.000 UTC [42] LOG:  starting PostgreSQL 15.18\n' +
        '2026-12-02 21:00:00.001 UTC [42] LOG:  could not bind IPv4 address "127.77.0.2": Address already in use\n' +
        '2026-12-02 21:00:00.002 UTC [42] FATAL:  could not create any TCP/IP sockets',
    ),
    'Address already in use',
  );
  assert.equal(
    startFailureCause("2026-12-02 21:00:00 0 [ERROR] mariadbd: Error writing file '/var/lib/coffer/instances/x/tmp/ib' (Errcode: 28 \"No space left on device\")"),
    'No space left on device',
  );
});

test("otherwise the last error line, after its level, with host paths cut to their last part", () => {
  assert.equal(
    startFailureCause(
      'earlier log line\n'.repeat(50) +
        '2026-12-02 21:00:00.000 UTC [7] LOG:  invalid value for parameter "shared_buffers": "bogus"\n' +
        '2026-12-02 21:00:00.001 UTC [7] FATAL:  configuration file "/var/lib/coffer/instances/abc/postgresql.conf" contains errors\n',
    ),
    'configuration file "postgresql.conf" contains errors',
  );
  assert.equal(startFailureCause('2026-12-02 21:00:00 0 [ERROR] Aborting'), 'Aborting');
  assert.equal(startFailureCause('123:M 02 Dec 2026 21:00:00.000 # Fatal error, can\'t open config file \'/etc/x/redis.conf\''), "Fatal error, can't open config file 'redis.conf'");
  assert.equal(startFailureCause('just some output\nnothing that says error'), undefined);
  assert.equal(withoutPaths('see /var/lib/coffer/instances/a/b.log and /tmp/'), 'see b.log and tmp');
  assert.equal(withoutPaths('could not create any TCP/IP sockets in "/run/x"'), 'could not create any TCP/IP sockets in "x"');
});

test('a real redis-server whose address is taken: "Address already in use"', async () => {
  const holder = createServer();
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const { port } = holder.address() as AddressInfo;
  const dir = await mkdtemp(join(tmpdir(), 'coffer-start-cause-'));
  try {
    const logFile = join(dir, 'redis.log');
    const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--logfile', logFile, '--dir', dir, '--save', ''], {
      stdio: 'ignore',
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.notEqual(code, 0, 'redis-server cannot start on a taken address');
    const log = await readFile(logFile, 'utf8');
    assert.equal(startFailureCause(log), 'Address already in use');
  } finally {
    holder.close();
    await rm(dir, { recursive: true, force: true });
  }
});
