// A stand-in for Coffer's HTTP API with just the endpoints the CLI uses, so the CLI tests run
// without the roles behind it. The real API is tested in test/api; the end-to-end test drives
// this CLI against it.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeBackups } from './fake-backups.js';
import { FakeConfigurations } from './fake-configurations.js';
import { runCli } from './run-cli.js';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

type InstanceState = Record<string, unknown>;
type Send = (status: number, payload?: unknown, headers?: Record<string, string>) => void;

interface TokenRequest {
  auth?: {
    identity?: { password?: { user?: { name?: string; password?: string } } };
    scope?: { project?: { name?: string } };
  };
}

interface CreateRequest {
  instance?: {
    name?: unknown;
    flavorRef?: unknown;
    volume?: { size?: unknown };
    datastore?: { type?: unknown; version?: string };
    configuration?: unknown;
    restorePoint?: { backupRef?: string; instance_id?: string; restore_time?: string };
    replica_of?: string;
    replica_count?: number;
  };
}

interface FakeInstance {
  id: string;
  base: InstanceState;
  /** What each GET shows, in turn; the last one stays. */
  states: InstanceState[];
  polls: number;
  /** After delete: GETs left before the instance is gone (404). */
  deleteAfterPolls?: number;
}

const unmeasured = {
  operating_status: 'HEALTHY',
  up: true,
  measured: null,
  connections: null,
  database_bytes: null,
  operations_total: null,
  cache_hit_ratio: null,
  replication_lag_seconds: null,
};

const faults = {
  badRequest: 400,
  unauthorized: 401,
  forbidden: 403,
  itemNotFound: 404,
  conflict: 409,
  overLimit: 413,
  unprocessableEntity: 422,
  notImplemented: 501,
} as const;

export class FakeCoffer {
  readonly user = 'admin';
  readonly project = 'admin';
  readonly password = `pw-${randomBytes(6).toString('hex')}`;
  readonly projectId = randomBytes(16).toString('hex');
  readonly token = `gAAAA${randomBytes(24).toString('hex')}`;
  readonly requests: RecordedRequest[] = [];
  readonly revokedTokens: string[] = [];
  /** Trove pages at 20; 2 makes the CLI follow `links[rel=next]` with only a few instances. */
  pageSize = 2;
  tokenLifetimeMs = 3_600_000;
  url = '';

  readonly flavors = [
    { id: 1, str_id: '1', name: 'small', ram: 512, vcpus: 1, disk: 0 },
    { id: 2, str_id: '2', name: 'medium', ram: 2048, vcpus: 2, disk: 0 },
  ];
  readonly datastores = [
    {
      id: randomUUID(),
      name: 'postgresql',
      default_version: 'v15',
      versions: [
        { id: 'v15', name: '15', version: '15.18' },
        { id: 'v16', name: '16', version: '16.4' },
      ],
    },
    {
      id: randomUUID(),
      name: 'mysql',
      versions: [
        { id: 'v80', name: '8.0', version: '8.0', active: false, inactive_reason: 'no MySQL server found: install mysql-community-server' },
      ],
    },
  ];

  private readonly instances = new Map<string, FakeInstance>();
  /** what GET /instances/{id}/metrics answers, by instance id (unmeasured when absent) */
  readonly metrics = new Map<string, Record<string, unknown>>();
  /** Configuration groups and the datastore versions' parameters. */
  readonly configurations = new FakeConfigurations({
    instance: (id) => this.instances.get(id),
    instances: () => [...this.instances.values()],
    follow: (instance, during, after) => this.follow(instance as FakeInstance, during, after),
    datastores: this.datastores,
    pageSize: () => this.pageSize,
  });
  /** Backups and backup strategies. */
  readonly backups = new FakeBackups({
    projectId: this.projectId,
    instance: (id) => this.instances.get(id),
    pageSize: () => this.pageSize,
  });
  private readonly server: Server = createServer((req, res) => this.handle(req, res));

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get endpoint(): string {
    return `${this.url}/v1.0/${this.projectId}`;
  }

  /** Adds an instance that shows `states` in turn (default: ACTIVE and healthy). */
  addInstance(name: string, states: InstanceState[] = [activeState()], extra: InstanceState = {}): string {
    const id = randomUUID();
    this.instances.set(id, {
      id,
      base: {
        id,
        name,
        datastore: { type: 'postgresql', version: '15', version_number: '15.18' },
        flavor: { id: '1' },
        volume: { size: 1 },
        created: '2024-05-01T10:00:00',
        updated: '2024-05-01T10:00:00',
        ...extra,
      },
      states,
      polls: 0,
    });
    return id;
  }

  requestsTo(method: string, pathPrefix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path.startsWith(pathPrefix));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body: unknown = text === '' ? undefined : JSON.parse(text);
    const url = new URL(req.url ?? '/', this.url);
    this.requests.push({ method: req.method ?? '', path: url.pathname + url.search, headers: req.headers, body });
    const send = (status: number, payload?: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    const fail = (fault: keyof typeof faults, message: string) =>
      send(faults[fault], { [fault]: { code: faults[fault], message } });

    if (url.pathname === '/identity/v3/auth/tokens') {
      if (req.method === 'POST') return this.issueToken(body, send);
      if (req.method === 'DELETE') {
        this.revokedTokens.push(String(req.headers['x-subject-token']));
        return send(204);
      }
    }
    const match = /^\/v1\.0\/([^/]+)(\/.*)$/.exec(url.pathname);
    if (match === null) return fail('itemNotFound', 'The resource could not be found.');
    const token = req.headers['x-auth-token'];
    if (token !== this.token || this.revokedTokens.includes(token)) {
      return send(401, {
        error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
      });
    }
    if (match[1] !== this.projectId) return fail('forbidden', `User with tenant id X cannot access this resource.`);
    const path = match[2]!;
    if (req.method === 'GET' && path === '/flavors') return send(200, { flavors: this.flavors });
    if (req.method === 'GET' && path === '/datastores') return send(200, { datastores: this.datastores });
    if (this.configurations.handle(req.method ?? '', path, url, body, send, fail)) return;
    if (this.backups.handle(req.method ?? '', path, url, body, send, fail)) return;
    if (req.method === 'GET' && path === '/instances') return send(200, this.listPage(url));
    if (req.method === 'POST' && path === '/instances') return this.createInstance(body, send, fail);
    const instanceMatch = /^\/instances\/([^/]+)$/.exec(path);
    const instance = instanceMatch === null ? undefined : this.instances.get(decodeURIComponent(instanceMatch[1]!));
    if (instanceMatch !== null && instance === undefined) {
      return fail('itemNotFound', `Resource ${decodeURIComponent(instanceMatch[1]!)} cannot be found.`);
    }
    if (instance !== undefined && req.method === 'GET') return this.showInstance(instance, send, fail);
    if (instance !== undefined && (req.method === 'PUT' || req.method === 'PATCH')) return this.updateInstance(instance, body, send, fail);
    const metricsMatch = /^\/instances\/([^/]+)\/metrics$/.exec(path);
    if (metricsMatch !== null && req.method === 'GET') {
      const target = this.instances.get(decodeURIComponent(metricsMatch[1]!));
      if (target === undefined) return fail('itemNotFound', `Resource ${metricsMatch[1]!} cannot be found.`);
      return send(200, { metrics: { instance_id: target.id, ...(this.metrics.get(target.id) ?? unmeasured) } });
    }
    const actionMatch = /^\/instances\/([^/]+)\/action$/.exec(path);
    if (actionMatch !== null && req.method === 'POST') {
      const target = this.instances.get(decodeURIComponent(actionMatch[1]!));
      if (target === undefined) return fail('itemNotFound', `Resource ${actionMatch[1]!} cannot be found.`);
      return this.act(target, body, send, fail);
    }
    if (instance !== undefined && req.method === 'DELETE') {
      instance.states = [{ status: 'SHUTDOWN', operating_status: '' }];
      instance.deleteAfterPolls = 2;
      return send(202);
    }
    return fail('itemNotFound', 'The resource could not be found.');
  }

  private issueToken(body: unknown, send: Send) {
    const auth = (body as TokenRequest | undefined)?.auth;
    const user = auth?.identity?.password?.user;
    const project = auth?.scope?.project;
    if (user?.name !== this.user || user?.password !== this.password || project?.name !== this.project) {
      return send(401, {
        error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
      });
    }
    const expiresAt = new Date(Date.now() + this.tokenLifetimeMs).toISOString().replace('Z', '000Z');
    send(
      201,
      {
        token: {
          methods: ['password'],
          expires_at: expiresAt,
          project: { id: this.projectId, name: this.project, domain: { id: 'default', name: 'Default' } },
          user: { id: 'u1', name: this.user, domain: { id: 'default', name: 'Default' } },
          roles: [{ id: 'r1', name: 'admin' }],
          catalog: [
            { type: 'identity', name: 'keystone', endpoints: [{ interface: 'public', url: `${this.url}/identity/v3` }] },
            {
              type: 'database',
              name: 'trove',
              endpoints: [
                { interface: 'internal', url: 'http://127.0.0.1:9/wrong-interface' },
                { interface: 'public', url: this.endpoint },
              ],
            },
          ],
        },
      },
      { 'X-Subject-Token': this.token },
    );
  }

  private view(instance: FakeInstance): InstanceState {
    const state = instance.states[Math.min(instance.polls, instance.states.length - 1)] ?? {};
    return { ...instance.base, ...state, ...this.backups.instanceOverlay(instance.id) };
  }

  private listPage(url: URL): unknown {
    const marker = url.searchParams.get('marker');
    const sorted = [...this.instances.values()].sort((a, b) => a.id.localeCompare(b.id));
    const rest = marker === null ? sorted : sorted.filter((i) => i.id > marker);
    const page = rest.slice(0, this.pageSize);
    const last = page[page.length - 1];
    const links =
      rest.length > this.pageSize && last !== undefined
        ? [{ rel: 'next', href: `https://elsewhere.invalid/v1.0/${this.projectId}/instances?marker=${last.id}` }]
        : undefined;
    return { instances: page.map((i) => this.view(i)), ...(links === undefined ? {} : { links }) };
  }

  private showInstance(
    instance: FakeInstance,
    send: (status: number, payload?: unknown) => void,
    fail: (fault: keyof typeof faults, message: string) => void,
  ) {
    if (instance.deleteAfterPolls !== undefined) {
      if (instance.deleteAfterPolls <= 0) {
        this.instances.delete(instance.id);
        return fail('itemNotFound', `Resource ${instance.id} cannot be found.`);
      }
      instance.deleteAfterPolls -= 1;
    }
    const view = this.view(instance);
    instance.polls += 1;
    send(200, { instance: view });
  }

  /** The instance goes through `during` for one poll, then shows `after` (fault included). */
  private follow(instance: FakeInstance, during: InstanceState, after: InstanceState): void {
    instance.states = [during, { ...activeState(), ...after }];
    instance.polls = 0;
  }

  private act(instance: FakeInstance, body: unknown, send: Send, fail: (fault: keyof typeof faults, message: string) => void) {
    const action = (body ?? {}) as {
      restart?: unknown;
      resize?: { flavorRef?: string; volume?: { size?: number } };
      reset_status?: unknown;
      stop?: unknown;
      start?: unknown;
    };
    // The instance's name picks its fate: one named "broken" fails its action as Trove's do,
    // with no task and a new fault.
    const failed = String(instance.base.name).includes('broken') ? { fault: actionFault } : {};
    if (action.restart !== undefined) {
      this.follow(instance, { status: 'REBOOT', operating_status: '' }, failed);
    } else if (action.resize?.flavorRef !== undefined) {
      if (action.resize.flavorRef === (instance.base.flavor as { id: string }).id) {
        return fail('badRequest', `The new flavor id must be different than the current flavor id of '${action.resize.flavorRef}'.`);
      }
      if (!('fault' in failed)) instance.base.flavor = { id: action.resize.flavorRef };
      this.follow(instance, { status: 'RESIZE', operating_status: '' }, failed);
    } else if (action.resize?.volume !== undefined) {
      instance.base.volume = { size: action.resize.volume.size };
      this.follow(instance, { status: 'RESIZE', operating_status: '' }, failed);
    } else if (action.stop !== undefined) {
      // Coffer's stop: STOPPING, then SHUTOFF with the guest's SHUTDOWN; one that fails is ACTIVE again with a fault
      instance.states = [
        { status: 'STOPPING', operating_status: '' },
        'fault' in failed ? { ...activeState(), ...failed } : { status: 'SHUTOFF', operating_status: 'SHUTDOWN' },
      ];
      instance.polls = 0;
    } else if (action.start !== undefined) {
      const current = instance.states.at(-1);
      if (current?.status !== 'SHUTOFF') {
        return fail('conflict', `Instance ${instance.id} is not currently available for an action to be performed (instance status was ${String(current?.status)}). It is not stopped.`);
      }
      // a start that fails leaves it stopped, with a fault
      instance.states = [
        { status: 'STARTING', operating_status: '' },
        'fault' in failed ? { status: 'SHUTOFF', operating_status: 'SHUTDOWN', ...failed } : activeState(),
      ];
      instance.polls = 0;
    } else if (action.reset_status !== undefined) {
      instance.states = [{ ...activeState(), operating_status: 'ERROR' }];
      instance.polls = 0;
    } else {
      return fail('badRequest', 'Invalid instance action.');
    }
    send(202);
  }

  /** As the API: the source's flavor and size, `<name>-1..N` for several, the last one answered. */
  private createReplicas(spec: { name: string; replica_of: string; replica_count?: number }, send: Send, fail: (fault: keyof typeof faults, message: string) => void) {
    const source = this.instances.get(spec.replica_of);
    if (source === undefined) return fail('itemNotFound', `Resource ${spec.replica_of} cannot be found.`);
    const count = spec.replica_count ?? 1;
    const names = count === 1 ? [spec.name] : Array.from({ length: count }, (_, i) => `${spec.name}-${i + 1}`);
    const ids = names.map((name) =>
      this.addInstance(name, [{ status: 'BUILD', operating_status: '' }, activeState('127.77.0.13')], {
        volume: source.base.volume,
        flavor: source.base.flavor,
        replica_of: { id: source.id, links: [] },
      }),
    );
    source.base.replicas = ids.map((id) => ({ id, links: [] }));
    send(200, { instance: { ...this.view(this.instances.get(ids.at(-1)!)!) } });
  }

  private updateInstance(instance: FakeInstance, body: unknown, send: Send, fail: (fault: keyof typeof faults, message: string) => void) {
    const update =
      (
        body as
          | { instance?: { name?: string; access?: InstanceState; tls?: { required: boolean }; configuration?: unknown; replica_of?: null; datastore_version?: string } }
          | undefined
      )?.instance ?? {};
    if (update.datastore_version !== undefined) {
      // as the upgrade flow ends: the new version, or (an instance named "broken") the old one with a fault
      const datastore = instance.base.datastore as { type: string; version: string };
      const ended = String(instance.base.name).includes('broken')
        ? { fault: { message: `Upgrade failed: no pg_upgrade for ${update.datastore_version}. The instance keeps version ${datastore.version}.`, created: '2024-05-01T10:06:00', details: null } }
        : { datastore: { ...datastore, version: update.datastore_version } };
      this.follow(instance, { status: 'UPGRADE', operating_status: '' }, ended);
      return send(202);
    }
    if ('replica_of' in update) {
      if (instance.base.replica_of === undefined) return fail('badRequest', `Instance ${instance.id} is not a replica.`);
      delete instance.base.replica_of;
      this.follow(instance, { status: 'DETACH', operating_status: '' }, {});
      return send(202);
    }
    if ('configuration' in update && !this.configurations.attachOrDetach(instance, update.configuration, fail)) return;
    if (update.name !== undefined) instance.base.name = update.name;
    if (update.tls !== undefined) {
      instance.base.tls = { ...(instance.base.tls as InstanceState | undefined), required: update.tls.required };
      this.follow(instance, { status: 'ACTIVE', operating_status: '' }, {});
    }
    if (update.access !== undefined) {
      instance.base.access = update.access;
      // Trove's UPDATING shows the server status, without operating_status while it runs.
      this.follow(instance, { status: 'ACTIVE', operating_status: '' }, {});
    }
    send(202);
  }

  private createInstance(
    body: unknown,
    send: (status: number, payload?: unknown) => void,
    fail: (fault: keyof typeof faults, message: string) => void,
  ) {
    const spec = (body as CreateRequest | undefined)?.instance;
    if (spec === undefined || typeof spec.name !== 'string') return fail('badRequest', 'Validation error: name');
    if (spec.replica_of !== undefined) return this.createReplicas(spec as { name: string; replica_of: string; replica_count?: number }, send, fail);
    if (!this.flavors.some((f) => f.str_id === spec.flavorRef)) {
      return fail('badRequest', `Flavor ${String(spec.flavorRef)} could not be found.`);
    }
    if (spec.datastore?.type !== 'postgresql') {
      return fail('itemNotFound', `Datastore '${String(spec.datastore?.type)}' cannot be found.`);
    }
    const group = spec.configuration === undefined ? undefined : this.configurations.groups.get(String(spec.configuration));
    if (spec.configuration !== undefined && group === undefined) {
      return fail('itemNotFound', `Configuration group with ID ${String(spec.configuration)} could not be found.`);
    }
    const restorePoint = spec.restorePoint;
    if (restorePoint !== undefined && !this.backups.checkRestore(restorePoint, spec.datastore ?? {}, Number(spec.volume?.size), fail)) return;
    const name = spec.name;
    const building = { status: 'BUILD', operating_status: '' };
    // The instance's name picks its fate, so each test can ask for the path it checks.
    const states = name.includes('broken')
      ? [building, { status: 'ERROR', operating_status: '', fault: buildFault }]
      : name.includes('stuck')
        ? [building]
        : name.includes('steps')
          ? [building, ...buildSteps.map((progress) => ({ ...building, progress })), activeState()]
          : [building, building, activeState()];
    const configuration = group === undefined ? {} : { configuration: { id: group.id, name: group.name, links: [] } };
    const id = this.addInstance(name, states, { volume: { size: spec.volume?.size }, ...configuration });
    const instance = this.instances.get(id)!;
    send(200, { instance: { ...this.view(instance) } });
  }
}

/** Coffer's `progress` as a build shows it; the last step's name carries a terminal escape, as a hostile server might send */
const buildSteps = [
  { step: 'initialising', percent: 10, updated: '2024-05-01T10:00:01' },
  { step: 'starting', percent: 40, updated: '2024-05-01T10:00:02' },
  { step: 'creating\x1b[2J databases\nand users', percent: 70, updated: '2024-05-01T10:00:03' },
];

const actionFault = { message: 'Restart failed: the engine did not stop', created: '2024-05-01T11:00:00', details: null };
const buildFault = { message: 'initdb failed: No space left on device', created: '2024-05-01T10:00:03', details: null };

export function activeState(address = '127.77.0.12'): InstanceState {
  return {
    status: 'ACTIVE',
    operating_status: 'HEALTHY',
    ip: [address],
    addresses: [{ address, type: 'private', network: 'loopback' }],
  };
}

/** A started FakeCoffer that the CLI using `configDir` is logged in to. */
export async function loggedInFake(configDir: string): Promise<FakeCoffer> {
  const fake = new FakeCoffer();
  await fake.start();
  const login = await runCli(configDir, ['login', '--url', fake.url], { env: { COFFER_PASSWORD: fake.password } });
  if (login.code !== 0) throw new Error(`login to the fake failed: ${login.stderr}`);
  return fake;
}
