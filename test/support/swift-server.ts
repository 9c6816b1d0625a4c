import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { processesMentioning } from './processes.js';
import { waitUntil } from './wait.js';

// A real Swift all-in-one (Debian's swift-proxy, -account, -container and -object packages, and
// memcached, which .ci/run installs) for one test file: rings with one replica and one device
// built by swift-ring-builder into a temporary directory, the device a plain directory beside
// them (ext4 keeps the user xattrs the object server needs, so `mount_check = false` suffices),
// every server in one process (`workers = 0`) on its own loopback address. The proxy serves Swift
// with tempauth and S3 through s3api, whose signatures tempauth checks against the same users:
// the S3 access key of `test:tester` is `test:tester`, its secret `testing`.

const run = promisify(execFile);

export interface SwiftServer {
  /** the loopback address every server listens on */
  address: string;
  /** the proxy's root, also the S3 endpoint (path-style) */
  url: string;
  /** tempauth's v1 endpoint */
  authUrl: string;
  /** an admin of account AUTH_test (also the S3 access key id) */
  user: string;
  /** `user`'s key (also the S3 secret) */
  key: string;
  /** S3 region (s3api's `location`) */
  region: string;
  /** every file the object server stored for `container`/`object` of account AUTH_test */
  objectFiles(container: string, object: string): Promise<string[]>;
  /**
   * Flips a byte in the middle of the file the object server keeps for `container`/`object`,
   * leaving Swift's own records alone: the damage a disk does. For a static large object, the
   * file of segment `segment` (default: the last). Swift checks each segment's MD5 as it sends it
   * and stops short after a damaged one, so only damage to the last segment reaches a reader
   * whole, for the reader's own checksum to catch.
   */
  corruptObject(container: string, object: string, segment?: number): Promise<void>;
  /** makes every token tempauth handed out invalid (they live in memcached only), as their expiry would */
  forgetTokens(): Promise<void>;
  /**
   * Freezes the proxy (SIGSTOP): the kernel still accepts connections on its port, but nothing
   * answers, as a storage that hangs; `resume` lets it go on where it stopped.
   */
  pause(): void;
  resume(): void;
  /** a Swift request as `user`, for looking at the raw backend */
  call(method: string, path: string, headers?: Record<string, string>, body?: Buffer): Promise<Response>;
  stop(): Promise<void>;
}

const servers = ['account', 'container', 'object'] as const;

// Every address here is an IP: eventlet's green DNS resolver (dnspython) is not needed, and
// importing it is half of each server's start.
const pythonEnv = { ...process.env, EVENTLET_NO_GREENDNS: 'yes' };

// Each ring: 2^2 partitions, one replica, one device, no minimum hours between moves.
const buildRings = `
import os, sys
from swift.common.ring import RingBuilder
for spec in sys.argv[2:]:
    name, endpoint = spec.split('=')
    ip, port = endpoint.split(':')
    builder = RingBuilder(2, 1, 0)
    builder.add_dev({'region': 1, 'zone': 1, 'ip': ip, 'port': int(port), 'device': 'd1', 'weight': 1})
    builder.rebalance()
    builder.save(os.path.join(sys.argv[1], name + '.builder'))
    builder.get_ring().save(os.path.join(sys.argv[1], name + '.ring.gz'))
`;
// Swift's servers take the hash salt and storage policies from /etc/swift/swift.conf (the swift
// package's) whatever their swift_dir says: that is where the object server's paths come from.
const swiftConf = '/etc/swift/swift.conf';

/** A free TCP port on `address`. */
async function freePortOn(address: string): Promise<number> {
  const server = createServer();
  server.listen(0, address);
  await once(server, 'listening');
  const bound = server.address();
  server.close();
  if (bound === null || typeof bound === 'string') throw new Error('no port');
  return bound.port;
}

/** An address of 127.89/16, apart from the instances' pool; its ports are then picked free. */
function randomAddress(): string {
  return `127.89.${Math.floor(Math.random() * 256)}.${2 + Math.floor(Math.random() * 250)}`;
}

function ini(sections: Record<string, Record<string, string | number>>): string {
  return Object.entries(sections)
    .map(([name, values]) => [`[${name}]`, ...Object.entries(values).map(([k, v]) => `${k} = ${v}`)].join('\n'))
    .join('\n\n') + '\n';
}

export async function startSwift(): Promise<SwiftServer> {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-swift-'));
  const address = randomAddress();
  const [proxyPort = 0, memcachedPort = 0, ...serverPorts] = await Promise.all([0, 1, 2, 3, 4].map(() => freePortOn(address)));
  const portOf = (server: (typeof servers)[number]) => serverPorts[servers.indexOf(server)]!;
  const url = `http://${address}:${proxyPort}`;
  const devices = join(dir, 'devices');
  const children: ChildProcess[] = [];

  const stop = async () => {
    // a frozen proxy would hold its SIGTERM until it runs again
    for (const child of children) child.kill('SIGCONT');
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    const left = processesMentioning(dir);
    await rm(dir, { recursive: true, force: true });
    if (left.length > 0) throw new Error(`Swift processes left running: ${left.join(', ')}`);
  };

  const logTail = async () => {
    const names = (await readdir(dir)).filter((name) => name.endsWith('.log'));
    const tails = await Promise.all(
      names.map(async (name) => `${name}:\n${(await readFile(join(dir, name), 'utf8')).split('\n').slice(-15).join('\n')}`),
    );
    return tails.join('\n');
  };

  const start = async (name: string, command: string, args: string[]) => {
    const log = await open(join(dir, `${name}.log`), 'a');
    const child = spawn(command, args, { stdio: ['ignore', log.fd, log.fd], cwd: dir, env: pythonEnv });
    await log.close();
    children.push(child);
    return child;
  };

  try {
    await mkdir(join(devices, 'd1'), { recursive: true });
    const common = { devices, mount_check: 'false', bind_ip: address, workers: 0, swift_dir: dir, user: 'root', log_level: 'INFO' };
    // swift-ring-builder's create, add and rebalance for three rings cost nine Python starts of
    // a second or more each: one Python builds the three with the library that tool wraps
    const ringReady = run(
      '/usr/bin/python3',
      ['-c', buildRings, dir, ...servers.map((server) => `${server}=${address}:${portOf(server)}`)],
      { timeout: 60_000, env: pythonEnv },
    );
    await Promise.all(
      servers.map((server) =>
        writeFile(
          join(dir, `${server}-server.conf`),
          ini({
            DEFAULT: { ...common, bind_port: portOf(server) },
            'pipeline:main': { pipeline: `healthcheck ${server}-server` },
            [`app:${server}-server`]: { use: `egg:swift#${server}` },
            'filter:healthcheck': { use: 'egg:swift#healthcheck' },
          }),
        ),
      ),
    );
    await writeFile(
      join(dir, 'proxy-server.conf'),
      ini({
        DEFAULT: { bind_ip: address, bind_port: proxyPort, workers: 0, swift_dir: dir, user: 'root', log_level: 'INFO' },
        'pipeline:main': {
          pipeline:
            'catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server',
        },
        'app:proxy-server': { use: 'egg:swift#proxy', account_autocreate: 'true', allow_account_management: 'true' },
        'filter:tempauth': {
          use: 'egg:swift#tempauth',
          user_test_tester: 'testing .admin',
        },
        'filter:s3api': { use: 'egg:swift#s3api', location: 'us-east-1' },
        'filter:cache': { use: 'egg:swift#memcache', memcache_servers: `${address}:${memcachedPort}` },
        'filter:catch_errors': { use: 'egg:swift#catch_errors' },
        'filter:gatekeeper': { use: 'egg:swift#gatekeeper' },
        'filter:healthcheck': { use: 'egg:swift#healthcheck' },
        'filter:proxy-logging': { use: 'egg:swift#proxy_logging' },
        'filter:listing_formats': { use: 'egg:swift#listing_formats' },
        'filter:bulk': { use: 'egg:swift#bulk' },
        'filter:copy': { use: 'egg:swift#copy' },
        'filter:slo': { use: 'egg:swift#slo' },
        'filter:dlo': { use: 'egg:swift#dlo' },
      }),
    );
    // tempauth keeps its tokens in memcached: without one, no token it hands out is ever valid
    await start('memcached', 'memcached', ['-l', address, '-p', String(memcachedPort), '-U', '0', '-m', '16', '-u', 'root']);
    await ringReady;
    for (const server of [...servers, 'proxy'] as const) {
      await start(server, `swift-${server}-server`, [join(dir, `${server}-server.conf`), '--verbose']);
    }
    const ports = [...servers.map(portOf), proxyPort];
    await waitUntil(
      'Swift to answer',
      async () => {
        const exited = children.find((child) => child.exitCode !== null);
        if (exited !== undefined) throw new Error(`a Swift process exited with ${exited.exitCode}:\n${await logTail()}`);
        const answers = await Promise.all(
          ports.map((port) => fetch(`http://${address}:${port}/healthcheck`).then((r) => r.ok, () => false)),
        );
        return answers.every(Boolean) ? true : undefined;
      },
      60_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const user = 'test:tester';
  const key = 'testing';
  let session: { storageUrl: string; token: string } | undefined;
  const call: SwiftServer['call'] = async (method, path, headers = {}, body) => {
    if (session === undefined) {
      const reply = await fetch(`${url}/auth/v1.0`, { headers: { 'x-auth-user': user, 'x-auth-key': key } });
      if (!reply.ok) throw new Error(`tempauth refused ${user}: ${reply.status}`);
      session = { storageUrl: reply.headers.get('x-storage-url')!, token: reply.headers.get('x-auth-token')! };
    }
    return fetch(`${session.storageUrl}${path}`, {
      method,
      headers: { 'x-auth-token': session.token, ...headers },
      ...(body === undefined ? {} : { body }),
    });
  };

  const objectFiles: SwiftServer['objectFiles'] = async (container, object) => {
    // the object server keeps an object under the MD5 of its path salted with swift.conf's prefix and suffix
    const conf = await readFile(swiftConf, 'utf8');
    const salt = (key: string) => new RegExp(`^\\s*${key}\\s*=\\s*(.*?)\\s*$`, 'm').exec(conf)?.[1] ?? '';
    const path = `${salt('swift_hash_path_prefix')}/AUTH_test/${container}/${object}${salt('swift_hash_path_suffix')}`;
    const hash = createHash('md5').update(path).digest('hex');
    const found: string[] = [];
    const walk = async (path: string): Promise<void> => {
      for (const entry of await readdir(path, { withFileTypes: true })) {
        const child = join(path, entry.name);
        if (entry.isDirectory()) {
          if (entry.name === hash) found.push(...(await readdir(child)).map((file) => join(child, file)));
          else await walk(child);
        }
      }
    };
    await walk(join(devices, 'd1', 'objects'));
    return found;
  };

  const corruptObject: SwiftServer['corruptObject'] = async (container, object, segment) => {
    const path = `/${container}/${object.split('/').map(encodeURIComponent).join('/')}`;
    const head = await call('HEAD', `${path}?multipart-manifest=get`);
    if (!head.ok) throw new Error(`no object ${container}/${object}: ${head.status}`);
    let [target, name] = [container, object];
    if (head.headers.get('x-static-large-object') === 'True') {
      const manifest = (await (await call('GET', `${path}?multipart-manifest=get`)).json()) as { name: string }[];
      const match = /^\/([^/]+)\/(.+)$/.exec(manifest.at(segment ?? -1)!.name)!;
      [target, name] = [match[1]!, match[2]!];
    }
    const data = (await objectFiles(target, name)).filter((file) => file.endsWith('.data'));
    if (data.length !== 1) throw new Error(`expected one data file for ${target}/${name}, found ${data.length}`);
    const file = await open(data[0]!, 'r+');
    try {
      const { size } = await file.stat();
      const byte = Buffer.alloc(1);
      await file.read(byte, 0, 1, Math.floor(size / 2));
      byte[0] = byte[0]! ^ 0xff;
      await file.write(byte, 0, 1, Math.floor(size / 2));
    } finally {
      await file.close();
    }
  };

  const forgetTokens: SwiftServer['forgetTokens'] = async () => {
    const socket = connect(memcachedPort, address);
    socket.end('flush_all\r\n');
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    await once(socket, 'close');
    if (!answer.startsWith('OK')) throw new Error(`memcached did not flush: ${answer}`);
    session = undefined;
  };

  const proxy = children.at(-1)!;
  return {
    address,
    url,
    authUrl: `${url}/auth/v1.0`,
    user,
    key,
    region: 'us-east-1',
    objectFiles,
    corruptObject,
    forgetTokens,
    pause: () => void proxy.kill('SIGSTOP'),
    resume: () => void proxy.kill('SIGCONT'),
    call,
    stop,
  };
}
