// The backups half of the stand-in API (fake-coffer.ts): Trove's shapes, status codes and
// messages as Coffer's API answers them (src/api/trove/backup-*.ts, create-instance.ts; checked by
// test/api/backups.test.ts), with each backup's course picked by its name.
import { randomUUID } from 'node:crypto';

type State = Record<string, unknown>;
type Send = (status: number, payload?: unknown) => void;
/** The recoverable window every fake instance has (point in time). */
export const fakeRecoverableWindow = ['2024-05-01T10:00:00.000Z', '2024-05-01T11:00:00.000Z'] as const;

export type BackupFault = 'badRequest' | 'forbidden' | 'itemNotFound' | 'conflict' | 'overLimit' | 'unprocessableEntity' | 'notImplemented';
export type BackupFail = (fault: BackupFault, message: string) => void;

/** The parts of fake-coffer's instances this half reads. */
export interface BackupHost {
  projectId: string;
  instance(id: string): { id: string; base: State } | undefined;
  pageSize(): number;
}

interface ImportSpec {
  remote_location: string;
  local_datastore_version_id: string;
  size: number;
}

interface FakeBackup {
  view: State;
  /** what each GET shows in turn (status, fail_reason, size, and `percent` for the instance's progress); the last one stays */
  course: State[];
  polls: number;
  /** GB of data the restore needs (Trove's 403 when the volume asked for is smaller) */
  dataGb: number;
  /** the container it went to (not in Trove's view: its locationRef names it) */
  container: string;
  /** after a delete: GETs left before it is gone (404) */
  deleteAfterPolls?: number;
  /** after a verify: what each GET shows of the verification in turn; the last one stays */
  verification?: { course: State[]; polls: number };
}

const running = ['NEW', 'BUILDING', 'SAVING'];

/** A verification's course by the backup's name: `damaged` fails the engine's check, `slow` never ends. */
function verificationCourse(name: string): State[] {
  const at = (message: string) => ({ status: 'RUNNING', started: '2024-05-02T09:00:00', finished: null, message, checks: {} });
  const steps = [at('waiting for a taskmanager'), at('restoring it into a scratch instance'), at("running the engine's own check of the data")];
  if (name.includes('slow')) return steps;
  const end = { ...at('removing the scratch instance'), finished: '2024-05-02T09:01:00' };
  if (name.includes('damaged')) {
    return [...steps, { ...end, status: 'FAILED', message: 'The engine\'s own check found 1 error(s) in the restored data: heap table "app.public.t", block 0: bad', checks: { databases: 2, tables: 3, indexes: 1, errors: 1 } }];
  }
  return [...steps, { ...end, status: 'PASSED', message: "Restored into a scratch instance; the engine's own check found no errors.", checks: { databases: 2, tables: 3, indexes: 1, errors: 0 } }];
}
const containerRule = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** A backup's course by its name, so each test can ask for the path it checks. */
function courseOf(name: string): State[] {
  const building = (percent: number) => ({ status: 'BUILDING', percent });
  if (name.includes('broken')) return [{ status: 'NEW' }, building(10), { status: 'FAILED', fail_reason: 'pg_basebackup: could not connect to the server' }];
  if (name.includes('stuck')) return [{ status: 'NEW' }, building(5)];
  if (name.includes('steps')) return [{ status: 'NEW' }, building(0), building(40), { ...building(80), stored_bytes: 12_400_000 }, { status: 'COMPLETED', size: 0.02 }];
  return [{ status: 'NEW' }, building(50), { status: 'COMPLETED', size: 0 }];
}

export class FakeBackups {
  readonly backups = new Map<string, FakeBackup>();
  readonly strategies: Array<{ instance_id: string; swift_container: string }> = [];
  /** backup schedules by instance id, as the API shows them */
  readonly schedules = new Map<string, State>();
  /** Coffer's backups quota; FAILED backups count too */
  quota = 10;
  /** whether the caller may list every project's backups (an admin) */
  allProjects = true;
  private clock = 0;
  /** the restore_from bodies POST /backups was given */
  readonly imports: ImportSpec[] = [];

  constructor(private readonly host: BackupHost) {}

  /** A backup taken before the test (COMPLETED unless `extra` says otherwise). */
  addBackup(name: string, instanceId: string, extra: State = {}, dataGb = 0.5): string {
    const id = randomUUID();
    const instance = this.host.instance(instanceId);
    const status = typeof extra.status === 'string' ? extra.status : 'COMPLETED';
    this.backups.set(id, {
      view: {
        ...this.newView(id, name, instanceId, instance?.base.datastore as State | undefined, null),
        status,
        size: status === 'COMPLETED' ? 0.01 : null,
        ...extra,
      },
      course: [],
      polls: 0,
      dataGb,
      container: 'database_backups',
    });
    return id;
  }

  view(id: string): State | undefined {
    const backup = this.backups.get(id);
    return backup === undefined ? undefined : this.current(backup);
  }

  containerOf(id: string): string | undefined {
    return this.backups.get(id)?.container;
  }

  /** What the instance shows while a backup of it runs: BACKUP, and the backup's progress. */
  instanceOverlay(instanceId: string): State {
    for (const backup of this.backups.values()) {
      const shown = this.current(backup);
      if (shown.instance_id !== instanceId || !running.includes(String(shown.status))) continue;
      const percent = this.step(backup)?.percent;
      return { status: 'BACKUP', ...(typeof percent === 'number' ? { progress: { step: 'backing up', percent, updated: '2024-05-01T10:00:05' } } : {}) };
    }
    return {};
  }

  /** Answers the request if it is one of this half's routes; false if not. */
  handle(method: string, path: string, url: URL, body: unknown, send: Send, fail: BackupFail): boolean {
    if (path === '/backups' && method === 'GET') {
      this.list(url, send, fail);
      return true;
    }
    if (path === '/backups' && method === 'POST') {
      this.create(body, send, fail);
      return true;
    }
    const action = /^\/backups\/([^/]+)\/action$/.exec(path);
    if (action !== null && method === 'POST') {
      const backup = this.backups.get(decodeURIComponent(action[1]!));
      if (backup === undefined || backup.view.project_id !== this.host.projectId) fail('itemNotFound', `Backup ${action[1]!} cannot be found.`);
      else this.verify(backup, body, send, fail);
      return true;
    }
    const member = /^\/backups\/([^/]+)$/.exec(path);
    if (member !== null) {
      const id = decodeURIComponent(member[1]!);
      const backup = this.backups.get(id);
      if (backup === undefined || backup.view.project_id !== this.host.projectId) fail('itemNotFound', `Backup ${id} cannot be found.`);
      else if (method === 'GET') this.show(backup, send, fail);
      else if (method === 'DELETE') this.delete(backup, send, fail);
      else return false;
      return true;
    }
    if (path === '/backup_strategies') {
      this.strategy(method, url, body, send, fail);
      return true;
    }
    const scheduled = /^\/instances\/([^/]+)\/backup_schedule$/.exec(path);
    if (scheduled !== null) {
      this.schedule(method, decodeURIComponent(scheduled[1]!), body, send, fail);
      return true;
    }
    return false;
  }

  /** Create's restorePoint checks, in the API's order (point in time first); false when it failed the request. */
  checkRestore(
    restorePoint: { backupRef?: string; instance_id?: string; restore_time?: string },
    datastore: { version?: string },
    sizeGb: number,
    fail: BackupFail,
  ): boolean {
    if (restorePoint.restore_time !== undefined) {
      // every instance's recoverable window here is the fake's own
      const [earliest, latest] = fakeRecoverableWindow;
      const time = Date.parse(restorePoint.restore_time);
      if (Number.isNaN(time) || time < Date.parse(earliest) || time > Date.parse(latest)) {
        const source = restorePoint.instance_id ?? 'the backup’s instance';
        fail('badRequest', `restore_time ${restorePoint.restore_time} is outside what instance ${source} can be restored to: its recoverable window is ${earliest} to ${latest}.`);
        return false;
      }
      if (restorePoint.backupRef === undefined) return true;
    }
    const backup = this.backups.get(restorePoint.backupRef ?? '');
    if (backup === undefined) {
      fail('itemNotFound', `Backup ${String(restorePoint.backupRef)} cannot be found.`);
      return false;
    }
    const view = this.current(backup);
    if (view.status !== 'COMPLETED') {
      fail('conflict', `Unable to create instance because backup ${String(view.id)} is not completed. Actual state: ${String(view.status)}.`);
      return false;
    }
    const source = view.datastore as { type: string; version: string };
    const version = datastore.version ?? '15';
    if (source.version !== version) {
      fail('badRequest', `Backup ${String(view.id)} was taken from ${source.type} ${source.version}; restore it into version ${source.version}, not ${version}.`);
      return false;
    }
    if (backup.dataGb > sizeGb) {
      fail('forbidden', `Backup is too large for given flavor or volume. Backup size: ${backup.dataGb} GBs. Available size: ${sizeGb} GBs.`);
      return false;
    }
    return true;
  }

  private newView(id: string, name: string, instanceId: string, datastore: State | undefined, parentId: string | null): State {
    this.clock += 1;
    const created = `2024-05-01T10:${String(this.clock).padStart(2, '0')}:00`;
    return {
      id,
      name,
      description: null,
      locationRef: null,
      instance_id: instanceId,
      created,
      updated: created,
      size: null,
      status: 'NEW',
      parent_id: parentId,
      project_id: this.host.projectId,
      verification: null,
      ...(datastore === undefined ? {} : { datastore: { type: datastore.type, version: datastore.version, version_id: `v${String(datastore.version)}` } }),
    };
  }

  /** Trove's restore_from: the object must be in the default container; `broken` names one sealed under another key. */
  private import(name: string, description: string | undefined, from: ImportSpec, send: Send, fail: BackupFail): void {
    if (!from.remote_location.startsWith('database_backups/')) {
      return fail('badRequest', `restore_from.remote_location ${JSON.stringify(from.remote_location)} is not an object in one of your project's backup containers (database_backups) of this deployment's backup storage.`);
    }
    if (from.size !== 0.02) return fail('badRequest', `restore_from.size ${from.size} does not match the object's size, 0.02 GB (21474836 bytes): check the remote_location.`);
    const id = randomUUID();
    const view = { ...this.newView(id, name, '', { type: 'postgresql', version: '15' }, null), instance_id: null, description: description ?? null };
    const course = name.includes('broken')
      ? [{ status: 'NEW' }, { status: 'FAILED', fail_reason: "The object cannot be imported: The backup cannot be decrypted with this project's key, or it was altered (it was sealed with key 1f2e3d4c5b6a7988; the key given is 0a1b2c3d4e5f6071)." }]
      : [{ status: 'NEW' }, { status: 'RESTORED', size: 0.02, locationRef: `file:///var/lib/coffer/backups/${from.remote_location}` }];
    this.backups.set(id, { view, course, polls: 0, dataGb: 0.5, container: 'database_backups' });
    this.imports.push(from);
    send(202, { backup: view });
  }

  /** where its course is: what the last GET showed (NEW before the first) */
  private step(backup: FakeBackup): State | undefined {
    return backup.course[Math.min(Math.max(backup.polls - 1, 0), backup.course.length - 1)];
  }

  private current(backup: FakeBackup): State {
    const verifying = backup.verification;
    const verification = verifying === undefined ? undefined : verifying.course[Math.min(Math.max(verifying.polls - 1, 0), verifying.course.length - 1)];
    const view = verification === undefined ? backup.view : { ...backup.view, verification };
    const step = this.step(backup);
    if (step === undefined) return view;
    const { percent: _percent, ...shown } = step;
    const stored = shown.status === 'COMPLETED' ? { locationRef: `file:///var/lib/coffer/backups/database_backups/${String(backup.view.id)}.zst.enc` } : {};
    return { ...view, ...stored, ...shown };
  }

  private verify(backup: FakeBackup, body: unknown, send: Send, fail: BackupFail): void {
    const keys = body !== null && typeof body === 'object' ? Object.keys(body) : [];
    if (keys.length !== 1 || keys[0] !== 'verify') return fail('badRequest', 'Validation error: Unrecognized key(s) in object');
    const view = this.current(backup);
    if (view.status !== 'COMPLETED') {
      return fail('conflict', `Backup ${String(view.id)} cannot be verified because it is not completed. Actual state: ${String(view.status)}.`);
    }
    if ((view.verification as State | null | undefined)?.status === 'RUNNING') {
      return fail('unprocessableEntity', `Backup ${String(view.id)} is already being verified: wait until its verification has PASSED or FAILED.`);
    }
    backup.verification = { course: verificationCourse(String(view.name)), polls: 0 };
    send(202);
  }

  private show(backup: FakeBackup, send: Send, fail: BackupFail): void {
    const id = String(backup.view.id);
    if (backup.deleteAfterPolls !== undefined) {
      if (String(backup.view.name).includes('undeletable')) {
        delete backup.deleteAfterPolls;
        Object.assign(backup.view, { status: 'DELETE_FAILED', fail_reason: 'Delete failed: the storage answered 503 Service Unavailable', updated: '2024-05-01T12:00:00' });
      } else if (backup.deleteAfterPolls <= 0) {
        this.backups.delete(id);
        return fail('itemNotFound', `Backup ${id} cannot be found.`);
      } else {
        backup.deleteAfterPolls -= 1;
      }
    }
    // each GET moves the backup one step along its course, and its verification along its own
    backup.polls += 1;
    if (backup.verification !== undefined) backup.verification.polls += 1;
    send(200, { backup: this.current(backup) });
  }

  /** Trove's paging for backups: newest first, an integer offset as the marker. */
  private list(url: URL, send: Send, fail: BackupFail): void {
    const all = url.searchParams.get('all_projects') === 'true';
    if (all && !this.allProjects) return fail('forbidden', "Policy doesn't allow backup:index:all_projects to be performed.");
    const instanceId = url.searchParams.get('instance_id');
    const offset = Number(url.searchParams.get('marker') ?? '0');
    const views = [...this.backups.values()]
      .map((b) => this.current(b))
      .filter((v) => (all || v.project_id === this.host.projectId) && (instanceId === null || v.instance_id === instanceId))
      .sort((a, b) => String(b.updated).localeCompare(String(a.updated)));
    const page = views.slice(offset, offset + this.host.pageSize());
    const next = page.length === this.host.pageSize() ? [{ rel: 'next', href: `https://elsewhere.invalid/backups?marker=${offset + page.length}` }] : undefined;
    send(200, { backups: page, ...(next === undefined ? {} : { links: next }) });
  }

  private create(body: unknown, send: Send, fail: BackupFail): void {
    const spec = (body as { backup?: { name?: string; instance?: string; description?: string; incremental?: boolean; parent_id?: string; swift_container?: string; restore_from?: ImportSpec } })?.backup;
    if (spec === undefined || typeof spec.name !== 'string') return fail('badRequest', "Validation error: backup: 'name' is a required property");
    if (spec.restore_from !== undefined) return this.import(spec.name, spec.description, spec.restore_from, send, fail);
    const instance = this.host.instance(spec.instance ?? '');
    if (instance === undefined) return fail('itemNotFound', `Instance ${String(spec.instance)} cannot be found.`);
    const mine = [...this.backups.values()].map((b) => this.current(b)).filter((v) => v.instance_id === instance.id);
    if (mine.some((v) => running.includes(String(v.status)))) {
      return fail('unprocessableEntity', `Instance ${instance.id} is not currently available for an action to be performed (instance status was BACKUP).`);
    }
    const datastore = instance.base.datastore as { type: string; version: string };
    if (datastore.type === 'redis') return fail('notImplemented', 'Backups are not supported for datastore redis.');
    let parentId: string | null = null;
    if (spec.parent_id !== undefined) {
      const parent = this.backups.get(spec.parent_id);
      if (parent === undefined) return fail('itemNotFound', `Backup ${spec.parent_id} cannot be found.`);
      const view = this.current(parent);
      if (view.instance_id !== instance.id) {
        return fail('badRequest', `Backup ${spec.parent_id} is a backup of another instance: an incremental backup follows a backup of its own instance.`);
      }
      if (view.status !== 'COMPLETED') return fail('badRequest', `Backup ${spec.parent_id} is not completed (it is ${String(view.status)}): it cannot be a parent.`);
      parentId = spec.parent_id;
    } else if (spec.incremental === true) {
      parentId = (mine.filter((v) => v.status === 'COMPLETED').sort((a, b) => String(b.updated).localeCompare(String(a.updated)))[0]?.id as string | undefined) ?? null;
    }
    if (parentId !== null && datastore.type !== 'mariadb') {
      return fail('notImplemented', `Incremental backups are not supported for datastore ${datastore.type} yet: take a full backup (without incremental or parent_id).`);
    }
    if (spec.swift_container !== undefined && !containerRule.test(spec.swift_container)) {
      return fail('badRequest', `Invalid swift_container name ${JSON.stringify(spec.swift_container)}.`);
    }
    const used = [...this.backups.values()].filter((b) => b.view.project_id === this.host.projectId).length;
    if (used + 1 > this.quota) {
      return fail(
        'overLimit',
        `Quota exceeded for resources: ['backups']. backups: limit ${this.quota}, in use ${used}, this request adds 1. ` +
          `An admin can raise the project's limit: \`openstack database quota update ${this.host.projectId} backups <limit>\` ` +
          `(PUT /v1.0/<project>/mgmt/quotas/${this.host.projectId}), or the default for every project (--max-*-per-tenant).`,
      );
    }
    const id = randomUUID();
    const view = { ...this.newView(id, spec.name, instance.id, datastore, parentId), description: spec.description ?? null };
    const container = this.containerFor(instance.id, spec.swift_container);
    this.backups.set(id, { view, course: courseOf(spec.name), polls: 0, dataGb: 0.5, container });
    send(202, { backup: view });
  }

  /** Where a new backup goes: the request's, the instance's, the project's, the default. */
  private containerFor(instanceId: string, requested: string | undefined): string {
    return (
      requested ??
      this.strategies.find((s) => s.instance_id === instanceId)?.swift_container ??
      this.strategies.find((s) => s.instance_id === '')?.swift_container ??
      'database_backups'
    );
  }

  private delete(backup: FakeBackup, send: Send, fail: BackupFail): void {
    const doomed = [backup, ...this.descendants(String(backup.view.id))];
    const busy = doomed.find((b) => running.includes(String(this.current(b).status)));
    if (busy !== undefined) return fail('unprocessableEntity', `Backup ${String(busy.view.id)} cannot be deleted because it is running.`);
    for (const b of doomed) b.deleteAfterPolls = 1;
    send(202);
  }

  private descendants(id: string): FakeBackup[] {
    const children = [...this.backups.values()].filter((b) => b.view.parent_id === id);
    return children.flatMap((c) => [c, ...this.descendants(String(c.view.id))]);
  }

  private strategy(method: string, url: URL, body: unknown, send: Send, fail: BackupFail): void {
    const view = (s: { instance_id: string; swift_container: string }) => ({ project_id: this.host.projectId, ...s, backend: 'swift' });
    if (method === 'GET') return send(200, { backup_strategies: this.strategies.map(view) });
    if (method === 'DELETE') {
      const instanceId = url.searchParams.get('instance_id') ?? '';
      const at = this.strategies.findIndex((s) => s.instance_id === instanceId);
      if (at >= 0) this.strategies.splice(at, 1);
      return send(202);
    }
    const spec = (body as { backup_strategy?: { swift_container?: string; instance_id?: string } })?.backup_strategy ?? {};
    if (typeof spec.swift_container !== 'string' || !containerRule.test(spec.swift_container)) {
      return fail('badRequest', "Validation error: backup_strategy['swift_container'] is not valid");
    }
    if (spec.instance_id !== undefined && this.host.instance(spec.instance_id) === undefined) {
      return fail('itemNotFound', `Instance ${spec.instance_id} cannot be found.`);
    }
    const row = { instance_id: spec.instance_id ?? '', swift_container: spec.swift_container };
    const at = this.strategies.findIndex((s) => s.instance_id === row.instance_id);
    if (at >= 0) this.strategies.splice(at, 1, row);
    else this.strategies.push(row);
    send(202, { backup_strategy: view(row) });
  }

  /** PUT/GET/DELETE /instances/{id}/backup_schedule with the API's checks that the CLI meets (src/api/trove/backup-schedule-routes.ts). */
  private schedule(method: string, instanceId: string, body: unknown, send: Send, fail: BackupFail): void {
    if (this.host.instance(instanceId) === undefined) return fail('itemNotFound', `Resource ${instanceId} cannot be found.`);
    const current = this.schedules.get(instanceId);
    if (method === 'GET' || method === 'DELETE') {
      if (current === undefined) return fail('itemNotFound', `Instance ${instanceId} has no backup schedule.`);
      if (method === 'GET') return send(200, { backup_schedule: current });
      this.schedules.delete(instanceId);
      return send(202);
    }
    const spec = (body as { backup_schedule?: Record<string, unknown> })?.backup_schedule ?? {};
    if (typeof spec.pattern !== 'string' || spec.pattern.trim().split(/\s+/).length !== 5) {
      return fail('badRequest', `Invalid cron pattern ${JSON.stringify(spec.pattern)}: it has ${String(spec.pattern).trim().split(/\s+/).length} fields, not 5. Give five fields, minute hour day-of-month month day-of-week, in UTC (e.g. "30 2 * * *": every day at 02:30 UTC).`);
    }
    if (spec.incremental === true && this.host.instance(instanceId)?.base.datastore !== undefined && (this.host.instance(instanceId)!.base.datastore as State).type === 'postgresql') {
      return fail('notImplemented', 'Incremental backups are not supported for datastore postgresql yet: schedule full backups (without incremental).');
    }
    const view = {
      id: (current?.id as string | undefined) ?? randomUUID(),
      instance_id: instanceId,
      project_id: this.host.projectId,
      name: spec.name ?? null,
      pattern: spec.pattern,
      incremental: spec.incremental === true,
      retain_count: spec.retain_count ?? null,
      retain_days: spec.retain_days ?? null,
      verify: spec.verify === true,
      last_verified_backup_id: current?.last_verified_backup_id ?? null,
      next_run: '2024-05-02T02:30:00',
      last_run: current?.last_run ?? null,
      last_backup_id: current?.last_backup_id ?? null,
      last_error: current?.last_error ?? null,
      created: '2024-05-01T10:00:00',
      updated: '2024-05-01T10:00:00',
    };
    this.schedules.set(instanceId, view);
    send(200, { backup_schedule: view });
  }
}
