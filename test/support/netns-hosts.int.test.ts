// test-lane: parallel (namespaces and a /24 of its own, random names; nothing in the root namespace but a relay on 127.0.0.1:0)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { createHostNetwork, type HostNetwork } from './netns-hosts.js';

// The multi-host harness the replica and failover tests stand on: hosts reach each other over
// the switch and nothing else, a pulled cable cuts a host off (timeouts, not refusals) until it is
// plugged back, the test reaches a host's server through a relay, and removing the network
// leaves no namespace and no process behind.

const echoServer = (port: number) =>
  `require('node:net').createServer((s) => s.end(require('node:os').hostname() + ' ' + process.argv[1] + '\\n')).listen(${port}, process.argv[1], () => console.log('up'))`;

let net: HostNetwork;

before(async () => {
  net = await createHostNetwork(2);
});

after(async () => {
  await net.remove();
});

function read(port: number, host = '127.0.0.1', timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let text = '';
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    });
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

/** a client inside `from` connecting to `address:port`: what it read, or why it could not */
async function readFrom(from: HostNetwork['hosts'][number], address: string, port: number): Promise<string> {
  const script = `const s = require('node:net').connect(${port}, '${address}'); let t = ''; s.setTimeout(1500, () => { console.log('TIMEOUT'); process.exit(0); }); s.on('data', (d) => (t += d)); s.on('end', () => { process.stdout.write(t); process.exit(0); }); s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
  return (await from.exec(process.execPath, ['-e', script])).trim();
}

test('two hosts reach each other by address, the test reaches them through a relay, and a pulled cable cuts one off until it is plugged back', async () => {
  const [a, b] = net.hosts as [HostNetwork['hosts'][number], HostNetwork['hosts'][number]];
  assert.notEqual(a.address, b.address);
  assert.ok(net.cidr.startsWith(a.address.split('.').slice(0, 3).join('.')));
  const server = a.spawn(process.execPath, ['-e', echoServer(7000), a.address], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => server.stdout!.once('data', resolve));

  assert.match(await readFrom(b, a.address, 7000), new RegExp(` ${a.address.replace(/\./g, '\\.')}$`));
  const port = await a.forward(7000);
  assert.match(await read(port), new RegExp(` ${a.address.replace(/\./g, '\\.')}`));

  // the root namespace's loopback services (the shared PostgreSQL on 5432) are not reachable from a host
  assert.equal(await readFrom(b, '127.0.0.1', 5432), 'ECONNREFUSED');

  await a.linkDown();
  assert.equal(await readFrom(b, a.address, 7000), 'TIMEOUT', 'a host without its cable does not answer, not even a refusal');
  await a.linkUp();
  // the bridge learns the port again within a moment
  let answer = '';
  for (let i = 0; i < 20 && !answer.includes(a.address); i++) answer = await readFrom(b, a.address, 7000);
  assert.match(answer, new RegExp(a.address.replace(/\./g, '\\.')));
});

test('removing the network kills what runs in it and leaves no namespace behind', async () => {
  const other = await createHostNetwork(1);
  const [h] = other.hosts as [HostNetwork['hosts'][number]];
  const sleeper = h.spawn('sleep', ['600']);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const pid = sleeper.pid!;
  await other.remove();
  const listed = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.ok(!listed.includes(h.netns), `${h.netns} is gone`);
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'its process is gone');
  await other.remove();
});
