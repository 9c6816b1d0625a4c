// The configuration-group half of the stand-in API (fake-coffer.ts): Trove's shapes, status codes
// and messages (trove-reference.md §2.7, §2.8, §2.2 PUT /instances/{id}), with values checked by
// the same rules as Coffer's API (src/common).
import { randomUUID } from 'node:crypto';
import { CofferError, validateConfigurationValues, type ConfigurationParameter, type ConfigurationValues } from '../../src/common/index.js';

type State = Record<string, unknown>;
type Send = (status: number, payload?: unknown) => void;
export type Fail = (fault: 'badRequest' | 'itemNotFound' | 'unprocessableEntity', message: string) => void;

export interface FakeParameter {
  name: string;
  type: 'integer' | 'float' | 'boolean' | 'string';
  restart_required: boolean;
  min?: number;
  max?: number;
}

/** What a group holds, as the state DB would. */
export interface FakeGroup {
  id: string;
  name: string;
  description: string | null;
  created: string;
  updated: string;
  datastore_version_id: string;
  datastore_name: string;
  datastore_version_name: string;
  datastore_version_number: string;
  values: ConfigurationValues;
}

/** The parts of fake-coffer's instances this half reads and changes. */
export interface InstanceHost {
  instance(id: string): { id: string; base: State } | undefined;
  instances(): Array<{ id: string; base: State }>;
  /** the instance shows `during` for one poll, then ACTIVE and healthy with `after` on top */
  follow(instance: { id: string; base: State }, during: State, after: State): void;
  datastores: ReadonlyArray<{ id: string; name: string; versions?: Array<{ id: string; name: string; version?: string }> }>;
  pageSize(): number;
}

/** PostgreSQL 15's, cut down; `test_password` stands for any parameter whose value Trove masks. */
export const postgresParameters: FakeParameter[] = [
  { name: 'max_connections', type: 'integer', restart_required: true, min: 1, max: 8388607 },
  { name: 'shared_buffers', type: 'integer', restart_required: true, min: 16, max: 1073741823 },
  { name: 'work_mem', type: 'integer', restart_required: false, min: 64, max: 2147483647 },
  { name: 'maintenance_work_mem', type: 'integer', restart_required: false, min: 1024, max: 2147483647 },
  { name: 'log_min_duration_statement', type: 'integer', restart_required: false, min: -1, max: 2147483647 },
  { name: 'random_page_cost', type: 'float', restart_required: false, max: 1.79769e308 },
  { name: 'autovacuum', type: 'boolean', restart_required: false },
  { name: 'log_line_prefix', type: 'string', restart_required: false },
  { name: 'test_password', type: 'string', restart_required: false },
];

/** What GET /instances/{id}/configuration shows without a group: the engine's own values. */
const engineDefaults: ConfigurationValues = { max_connections: 100, shared_buffers: '128MB', work_mem: '4MB', autovacuum: 'on' };

const applyFault = { message: "shared_buffers: 2000000 is more than the flavor's memory allows; the previous values are kept", created: '2024-05-01T12:00:00', details: null };

function rule(p: FakeParameter): ConfigurationParameter {
  return { name: p.name, type: p.type, restartRequired: p.restart_required, ...(p.min === undefined ? {} : { min: p.min }), ...(p.max === undefined ? {} : { max: p.max }) };
}

export class FakeConfigurations {
  /** Parameters by datastore version id; a version without an entry has none (mysql here). */
  readonly parameters: Record<string, FakeParameter[]> = { v15: postgresParameters, v16: postgresParameters };
  readonly groups = new Map<string, FakeGroup>();

  constructor(private readonly host: InstanceHost) {}

  /** Adds a group for PostgreSQL `version` (by name) holding `values`, as POST /configurations would. */
  addGroup(name: string, values: ConfigurationValues, version = '15'): string {
    const datastore = this.host.datastores.find((ds) => ds.name === 'postgresql')!;
    const v = datastore.versions!.find((x) => x.name === version)!;
    const id = randomUUID();
    this.groups.set(id, {
      id,
      name,
      description: null,
      created: '2024-05-01T10:00:00',
      updated: '2024-05-01T10:00:00',
      datastore_version_id: v.id,
      datastore_name: datastore.name,
      datastore_version_name: v.name,
      datastore_version_number: v.version ?? v.name,
      values,
    });
    return id;
  }

  /** Attaches a group to an instance at once, as if done before the test. */
  attach(instanceId: string, groupId: string): void {
    const group = this.groups.get(groupId)!;
    this.host.instance(instanceId)!.base.configuration = { id: group.id, name: group.name, links: [] };
  }

  /** Answers the request if it is one of this half's routes; false if not. */
  handle(method: string, path: string, url: URL, body: unknown, send: Send, fail: Fail): boolean {
    const byNames = /^\/datastores\/([^/]+)\/versions\/([^/]+)\/parameters(?:\/([^/]+))?$/.exec(path);
    if (method === 'GET' && byNames !== null && byNames[1] !== 'versions') {
      const version = this.version(decodeURIComponent(byNames[1]!), decodeURIComponent(byNames[2]!), fail);
      if (version !== undefined) this.showParameters(version.id, byNames[3], send, fail);
      return true;
    }
    const byId = /^\/datastores\/versions\/([^/]+)\/parameters(?:\/([^/]+))?$/.exec(path);
    if (method === 'GET' && byId !== null) {
      const id = decodeURIComponent(byId[1]!);
      if (!this.host.datastores.some((ds) => ds.versions?.some((v) => v.id === id))) {
        fail('badRequest', `Datastore version '${id}' cannot be found.`);
      } else {
        this.showParameters(id, byId[2], send, fail);
      }
      return true;
    }
    if (path === '/configurations' && method === 'GET') {
      send(200, this.listPage(url));
      return true;
    }
    if (path === '/configurations' && method === 'POST') {
      this.create(body, send, fail);
      return true;
    }
    const member = /^\/configurations\/([^/]+)(\/instances)?$/.exec(path);
    if (member !== null) {
      const id = decodeURIComponent(member[1]!);
      const group = this.groups.get(id);
      if (group === undefined) {
        fail('itemNotFound', `Configuration group with ID ${id} could not be found.`);
      } else if (member[2] !== undefined && method === 'GET') {
        send(200, { instances: this.attachedTo(group).map((i) => ({ id: i.id, name: i.base.name })) });
      } else if (member[2] === undefined) {
        this.member(group, method, body, send, fail);
      } else {
        return false;
      }
      return true;
    }
    const effective = /^\/instances\/([^/]+)\/configuration$/.exec(path);
    if (effective !== null && method === 'GET') {
      const instance = this.host.instance(decodeURIComponent(effective[1]!));
      if (instance === undefined) fail('itemNotFound', `Resource ${effective[1]!} cannot be found.`);
      else send(200, { instance: { configuration: this.effective(instance) } });
      return true;
    }
    return false;
  }

  /** PUT /instances/{id} with `configuration`: attach (an id) or detach (null), as Trove checks them. */
  attachOrDetach(instance: { id: string; base: State }, configuration: unknown, fail: Fail): boolean {
    const current = instance.base.configuration as { id: string } | undefined;
    const broken = String(instance.base.name).includes('broken');
    if (configuration === null) {
      if (current === undefined) return true;
      const group = this.groups.get(current.id);
      const restart = group !== undefined && this.restartNeeded(group, Object.keys(group.values));
      if (!broken) delete instance.base.configuration;
      this.host.follow(instance, { status: 'ACTIVE', operating_status: '' }, broken ? { fault: applyFault } : restart ? restartRequired : {});
      return true;
    }
    if (typeof configuration !== 'string') {
      fail('badRequest', "Validation error: instance['configuration'] is not of type 'string', 'null'");
      return false;
    }
    if (current !== undefined) {
      fail('badRequest', `Instance ${instance.id} already has a Configuration Group attached: ${current.id}.`);
      return false;
    }
    const group = this.groups.get(configuration);
    if (group === undefined) {
      fail('itemNotFound', `Configuration group with ID ${configuration} could not be found.`);
      return false;
    }
    const version = (instance.base.datastore as { version: string }).version;
    if (version !== group.datastore_version_name) {
      fail(
        'badRequest',
        `Datastore Version on Configuration ${group.datastore_version_name} does not match the Datastore Version on the instance ${version}.`,
      );
      return false;
    }
    if (!broken) instance.base.configuration = { id: group.id, name: group.name, links: [] };
    const restart = this.restartNeeded(group, Object.keys(group.values));
    this.host.follow(instance, { status: 'ACTIVE', operating_status: '' }, broken ? { fault: applyFault } : restart ? restartRequired : {});
    return true;
  }

  private version(datastoreRef: string, versionRef: string, fail: Fail) {
    const datastore = this.host.datastores.find((ds) => ds.name === datastoreRef || ds.id === datastoreRef);
    if (datastore === undefined) {
      fail('itemNotFound', `Datastore '${datastoreRef}' cannot be found.`);
      return undefined;
    }
    const version = datastore.versions?.find((v) => v.name === versionRef || v.id === versionRef);
    if (version === undefined) fail('badRequest', `Datastore version '${versionRef}' cannot be found.`);
    return version;
  }

  private parameterView(versionId: string, p: FakeParameter): State {
    // Trove's view leaves out min and max when they are falsy (a min of 0 is not shown).
    return {
      name: p.name,
      datastore_version_id: versionId,
      restart_required: p.restart_required,
      type: p.type,
      ...(p.max ? { max: p.max } : {}),
      ...(p.min ? { min: p.min } : {}),
    };
  }

  private showParameters(versionId: string, name: string | undefined, send: Send, fail: Fail) {
    const parameters = this.parameters[versionId] ?? [];
    if (name === undefined) {
      send(200, { 'configuration-parameters': parameters.map((p) => this.parameterView(versionId, p)) });
      return;
    }
    const found = parameters.find((p) => p.name === decodeURIComponent(name));
    if (found === undefined) fail('itemNotFound', `Resource ${decodeURIComponent(name)} cannot be found.`);
    else send(200, this.parameterView(versionId, found));
  }

  private listItem(group: FakeGroup): State {
    const { values: _values, ...item } = group;
    return item;
  }

  private detail(group: FakeGroup): State {
    const values = Object.fromEntries(Object.entries(group.values).map(([k, v]) => [k, k.toLowerCase().includes('password') ? '***' : v]));
    return { ...this.listItem(group), values, instance_count: this.attachedTo(group).length };
  }

  private attachedTo(group: FakeGroup) {
    return this.host.instances().filter((i) => (i.base.configuration as { id?: string } | undefined)?.id === group.id);
  }

  private listPage(url: URL): unknown {
    const marker = url.searchParams.get('marker');
    const sorted = [...this.groups.values()].sort((a, b) => a.id.localeCompare(b.id));
    const rest = marker === null ? sorted : sorted.filter((g) => g.id > marker);
    const page = rest.slice(0, this.host.pageSize());
    const last = page[page.length - 1];
    const links = rest.length > this.host.pageSize() && last !== undefined ? [{ rel: 'next', href: `https://elsewhere.invalid/configurations?marker=${last.id}` }] : undefined;
    return { configurations: page.map((g) => this.listItem(g)), ...(links === undefined ? {} : { links }) };
  }

  private check(values: unknown, group: Pick<FakeGroup, 'datastore_version_id' | 'datastore_name' | 'datastore_version_name'>, fail: Fail) {
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
      fail('badRequest', "Validation error: configuration['values'] is not of type 'object'");
      return undefined;
    }
    const rules = (this.parameters[group.datastore_version_id] ?? []).map(rule);
    try {
      return validateConfigurationValues(values as Record<string, unknown>, rules, `${group.datastore_name} ${group.datastore_version_name}`);
    } catch (err) {
      if (!(err instanceof CofferError)) throw err;
      fail('unprocessableEntity', err.message);
      return undefined;
    }
  }

  private create(body: unknown, send: Send, fail: Fail) {
    const spec = (body as { configuration?: { name?: unknown; values?: unknown; description?: unknown; datastore?: { type?: string; version?: string } } })?.configuration;
    if (spec === undefined || typeof spec.name !== 'string') return fail('badRequest', "Validation error: configuration: 'name' is a required property");
    const datastore = this.host.datastores.find((ds) => ds.name === spec.datastore?.type || ds.id === spec.datastore?.type);
    if (datastore === undefined) return fail('itemNotFound', `Datastore '${String(spec.datastore?.type)}' cannot be found.`);
    const version = this.version(datastore.name, spec.datastore?.version ?? '', fail);
    if (version === undefined) return;
    const now = '2024-05-01T10:00:00';
    const fields = {
      datastore_version_id: version.id,
      datastore_name: datastore.name,
      datastore_version_name: version.name,
      datastore_version_number: version.version ?? version.name,
    };
    const values = this.check(spec.values, fields, fail);
    if (values === undefined) return;
    const group: FakeGroup = {
      id: randomUUID(),
      name: spec.name,
      description: typeof spec.description === 'string' ? spec.description : null,
      created: now,
      updated: now,
      ...fields,
      values,
    };
    this.groups.set(group.id, group);
    send(200, { configuration: this.detail(group) });
  }

  private member(group: FakeGroup, method: string, body: unknown, send: Send, fail: Fail) {
    if (method === 'GET') return send(200, { configuration: this.detail(group) });
    if (method === 'DELETE') {
      if (this.attachedTo(group).length > 0) {
        return fail(
          'badRequest',
          'A configuration group cannot be deleted if it is associated with one or more non-terminated instances. Detach the configuration group from all non-terminated instances and please try again.',
        );
      }
      this.groups.delete(group.id);
      return send(202);
    }
    if (method !== 'PATCH' && method !== 'PUT') return fail('itemNotFound', 'The resource could not be found.');
    const spec = (body as { configuration?: { values?: unknown; name?: unknown; description?: unknown } })?.configuration ?? {};
    const values = this.check(spec.values, group, fail);
    if (values === undefined) return;
    const before = group.values;
    // PATCH adds and changes the given keys; PUT replaces them all (and may rename).
    group.values = method === 'PATCH' ? { ...group.values, ...values } : values;
    if (method === 'PUT' && typeof spec.name === 'string') group.name = spec.name;
    if (method === 'PUT' && 'description' in spec) group.description = spec.description as string | null;
    group.updated = '2024-05-01T11:00:00';
    const changed = [...new Set([...Object.keys(before), ...Object.keys(group.values)])].filter((k) => before[k] !== group.values[k]);
    for (const instance of this.attachedTo(group)) {
      // The group keeps its new values; the instance whose engine refused them keeps its old ones.
      const broken = String(instance.base.name).includes('broken');
      this.host.follow(instance, { status: 'ACTIVE', operating_status: '' }, broken ? { fault: applyFault } : this.restartNeeded(group, changed) ? restartRequired : {});
    }
    send(method === 'PATCH' ? 200 : 202);
  }

  private restartNeeded(group: FakeGroup, names: string[]): boolean {
    const parameters = this.parameters[group.datastore_version_id] ?? [];
    return names.some((n) => parameters.some((p) => p.name === n && p.restart_required));
  }

  private effective(instance: { base: State }): ConfigurationValues {
    const attached = (instance.base.configuration as { id?: string } | undefined)?.id;
    const group = attached === undefined ? undefined : this.groups.get(attached);
    return { ...engineDefaults, ...(group?.values ?? {}) };
  }
}

const restartRequired = { status: 'RESTART_REQUIRED', operating_status: '' };
