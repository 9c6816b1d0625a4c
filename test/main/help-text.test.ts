// What `coffer --help`, `coffer serve --help` and `coffer agent --help` tell a new user: every
// engine, and the data directory the process will really use (it depends on running as root).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../support/coffer-process.js';

const asRoot = process.getuid?.() === 0;

test('the top-level help names every engine', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /PostgreSQL, MariaDB, MySQL, Redis/);
});

test('serve, api and agent help give the data directory default as root too', async () => {
  const api = await runCli(['api', '--help']);
  assert.match(api.stdout.replace(/\s+/g, ' '), /default \.\/\.coffer, \/var\/lib\/coffer as root/);
  for (const role of ['serve', 'agent']) {
    const help = await runCli([role, '--help']);
    assert.equal(help.code, 0, help.stderr);
    const text = help.stdout.replace(/\s+/g, ' ');
    const expected = asRoot ? 'default /var/lib/coffer (run as root; ./.coffer otherwise)' : 'default ./.coffer (/var/lib/coffer when run as root)';
    assert.ok(text.includes(expected), `${role} --help: ${text}`);
  }
  const serve = await runCli(['serve', '--help']);
  assert.match(serve.stdout.replace(/\s+/g, ' '), /--max-volume-size <gb> largest volume one instance may have, default 10 \(env COFFER_MAX_VOLUME_SIZE\)/);
});

test('every role\'s help offers --metrics-address, off unless given', async () => {
  for (const role of ['serve', 'api', 'taskmanager', 'conductor', 'agent']) {
    const help = await runCli([role, '--help']);
    assert.equal(help.code, 0, help.stderr);
    const text = help.stdout.replace(/\s+/g, ' ');
    assert.match(text, /--metrics-address <host:port> serve \/metrics \(Prometheus\), \/healthz and \/readyz for the operator on this address, e\.g\. 127\.0\.0\.1:9180; default none \(env COFFER_METRICS_ADDRESS\)/, `${role} --help`);
  }
});

test('serve and agent help offer the host address mode and its port range, and say how the warm pool is sized', async () => {
  for (const role of ['serve', 'agent']) {
    const help = await runCli([role, '--help']);
    assert.equal(help.code, 0, help.stderr);
    const text = help.stdout.replace(/\s+/g, ' ');
    assert.match(text, /--host-address <ip> this host's IPv4 address: every instance listens on it with ports of its own from --instance-ports/, `${role} --help`);
    assert.match(text, /--instance-ports <from-to> the instances' ports with --host-address, default 30000-32767 \(env COFFER_INSTANCE_PORTS\)/, `${role} --help`);
    assert.match(text, /--warm-pool-size <n> .*default 10 \(a burst of ten creates\) or 4 per core where more, at most 1 per GiB of memory and 1 per GiB of free disk, from 2 to 16 \(0: off\)/, `${role} --help`);
  }
});
