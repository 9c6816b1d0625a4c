import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

// Several "hosts" on one machine for tests that need more than one (issue 11): each host is a
// Linux network namespace with one interface, `eth0`, plugged into a switch (a bridge inside a
// namespace of its own), all on a /24 of 10.0.0.0/8 picked at random so that parallel tests do
// not meet. Nothing is added to the root namespace: every address and every server lives inside
// a namespace the test made, and the machine's own loopback services stay out of reach, as they
// would be from another machine.
//
// A host's cable can be pulled and plugged back (`linkDown`, `linkUp`): the switch port goes
// down, so packets to and from the host are lost (connections time out rather than being
// refused), as when a machine drops off the network.
//
// The test process itself stays in the root namespace. It reaches a server inside a host through
// `forward`, a relay it runs: a listener on 127.0.0.1 in the root namespace hands each connection,
// over a Unix socket (file system sockets cross namespaces), to a relay process inside the host
// that connects to the server there. Needs root (`ip netns`).

const run = promisify(execFile);

export interface NetnsHost {
  /** the namespace's name, for `ip netns exec` */
  readonly netns: string;
  /** the host's address on the switch */
  readonly address: string;
  /** starts a program inside the host (killed by `remove` if still running) */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** runs a program inside the host and answers its stdout; rejects when it fails */
  exec(command: string, args: readonly string[], options?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<string>;
  /** pulls the host's cable: nothing reaches it or leaves it until linkUp */
  linkDown(): Promise<void>;
  linkUp(): Promise<void>;
  /** a port on 127.0.0.1 in the test's namespace that leads to `port` at `address` (default: this host's) inside the host */
  forward(port: number, address?: string): Promise<number>;
}

export interface HostNetwork {
  readonly hosts: readonly NetnsHost[];
  /** the /24 the hosts share, e.g. 10.123.45.0/24 */
  readonly cidr: string;
  /** kills what runs in the hosts, then removes the namespaces; safe to call twice */
  remove(): Promise<void>;
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args, { timeout: 10_000 });
}

// The relay inside a host: one Unix socket in, one TCP connection out per client.
const relayScript = `
const net = require('node:net');
const [socketPath, host, port] = process.argv.slice(1);
net.createServer((client) => {
  const upstream = net.connect({ host, port: Number(port) });
  client.pipe(upstream).pipe(client);
  const end = () => { client.destroy(); upstream.destroy(); };
  client.on('error', end); upstream.on('error', end); client.on('close', end); upstream.on('close', end);
}).listen(socketPath, () => process.stdout.write('ready\\n'));
`;

export async function createHostNetwork(count: number): Promise<HostNetwork> {
  const id = randomBytes(3).toString('hex');
  const subnet = `10.${1 + (randomBytes(1)[0]! % 250)}.${randomBytes(1)[0]!}`;
  const switchNs = `cf${id}-sw`;
  const names = Array.from({ length: count }, (_, i) => `cf${id}-h${i + 1}`);
  const children = new Set<ChildProcess>();
  const closers: Array<() => Promise<void>> = [];
  const dir = await mkdtemp(join(tmpdir(), 'coffer-netns-'));
  let removed = false;

  const remove = async () => {
    if (removed) return;
    removed = true;
    for (const close of closers) await close().catch(() => undefined);
    await Promise.all(
      [...children].map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        // `ip netns exec` runs the program in its own place: killing the group ends what it started too
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
        await exited;
      }),
    );
    // a namespace outlives its last process only while it is mounted: deleting it is the end
    for (const ns of [...names, switchNs]) await ip('netns', 'del', ns).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await ip('netns', 'add', switchNs);
    await ip('-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', switchNs, 'link', 'set', 'br0', 'up');
    const hosts: NetnsHost[] = [];
    for (const [i, ns] of names.entries()) {
      const address = `${subnet}.${i + 2}`;
      const port = `p${i + 1}`;
      await ip('netns', 'add', ns);
      await ip('link', 'add', port, 'netns', switchNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await ip('-n', switchNs, 'link', 'set', port, 'master', 'br0');
      await ip('-n', switchNs, 'link', 'set', port, 'up');
      await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      hosts.push(makeHost(ns, address, port));
    }
    return { hosts, cidr: `${subnet}.0/24`, remove };
  } catch (err) {
    await remove();
    throw err;
  }

  function makeHost(ns: string, address: string, switchPort: string): NetnsHost {
    const spawnIn = (command: string, args: readonly string[], options: SpawnOptions = {}) => {
      const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { ...options, detached: true });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    };
    return {
      netns: ns,
      address,
      spawn: spawnIn,
      async exec(command, args, options = {}) {
        const { stdout } = await run('ip', ['netns', 'exec', ns, command, ...args], { timeout: options.timeoutMs ?? 30_000, env: options.env ?? process.env });
        return stdout;
      },
      linkDown: () => ip('-n', switchNs, 'link', 'set', switchPort, 'down'),
      linkUp: () => ip('-n', switchNs, 'link', 'set', switchPort, 'up'),
      async forward(port, target = address) {
        const socketPath = join(dir, `${ns}-${target}-${port}-${randomBytes(3).toString('hex')}.sock`);
        const relay = spawnIn(process.execPath, ['-e', relayScript, socketPath, target, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
        await new Promise<void>((resolve, reject) => {
          relay.stdout!.once('data', () => resolve());
          relay.once('exit', (code) => reject(new Error(`the relay into ${ns} exited with ${code}`)));
        });
        // the connections are tracked: closing the relay ends them (a client a test left open
        // must not keep `remove` waiting)
        const open = new Set<import('node:net').Socket>();
        const server = createServer((client) => {
          open.add(client);
          client.once('close', () => open.delete(client));
          const inner = connect(socketPath);
          client.pipe(inner).pipe(client);
          const end = () => {
            client.destroy();
            inner.destroy();
          };
          client.on('error', end);
          inner.on('error', end);
          client.on('close', end);
          inner.on('close', end);
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        closers.push(
          () =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              for (const socket of open) socket.destroy();
            }),
        );
        return (server.address() as AddressInfo).port;
      },
    };
  }
}
