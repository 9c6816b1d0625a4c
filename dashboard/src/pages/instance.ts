import { ApiError, trove } from '../api.js';
import { fields, formValues, h, replace, statusText } from '../dom.js';
import { addressText, bytesText, connectCommand, timeText } from '../format.js';
import type { ConfigurationGroup, Datastore, Flavor, Instance, InstanceEvent } from '../types.js';
import { errorText, poll, type PageContext } from './page.js';

// One instance: its status (live), connection, metrics, history and fault; its databases, users,
// root and access rules; resize, upgrade, restart and delete (confirmed by typing its name); its
// backups (take one, restore one into a new instance); its replicas (create one) or, on a replica, its source (promote, detach). Each section
// loads on its own, so one the engine lacks (Redis has no databases) says so without hiding the
// others.

/** a section whose body comes from `load`; a refusal of the API shows as its text */
function section(title: string, id: string, load: (body: HTMLElement) => Promise<void>): HTMLElement {
  const body = h('div');
  const element = h('section', { class: 'card', id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title` }, title), body);
  const refresh = () =>
    load(body).catch((err: unknown) => {
      if (err instanceof ApiError && err.status === 501) replace(body, h('p', { class: 'muted' }, err.message));
      else replace(body, h('p', { class: 'error', role: 'alert' }, errorText(err)));
    });
  element.addEventListener('refresh', () => void refresh());
  void refresh();
  return element;
}

function refreshOf(element: HTMLElement): () => void {
  return () => element.closest('section')?.dispatchEvent(new Event('refresh'));
}

/** a form whose submit runs `act`; its error shows beside it, and success refreshes its section */
function actionForm(id: string, controls: HTMLElement[], label: string, act: (values: Record<string, string>) => Promise<unknown>, danger = false): HTMLFormElement {
  const error = h('span', { class: 'field-error', role: 'alert' });
  const button = h('button', { type: 'submit', class: danger ? 'danger' : '' }, label);
  const form = h('form', { class: 'inline', id }, ...controls, button, error);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    error.textContent = '';
    button.disabled = true;
    act(formValues(form)).then(
      () => {
        button.disabled = false;
        refreshOf(form)();
      },
      (err: unknown) => {
        button.disabled = false;
        error.textContent = errorText(err);
      },
    );
  });
  return form;
}

const field = (label: string, name: string, attributes: Record<string, string | boolean> = {}) => h('label', {}, label, h('input', { name, ...attributes }));

/**
 * A backup restored into a new instance (always a new one, as Trove's), with this instance's
 * datastore, version, flavor and size; at a moment within the backup's window when one is given.
 * The new instance's page opens once the API accepted it.
 */
function restoreForm(context: PageContext, instance: Instance, completed: ReadonlyArray<{ id: string; name: string; created: string }>): HTMLFormElement {
  return actionForm(
    'restore-backup',
    [
      h('label', {}, 'Backup', h('select', { name: 'backup' }, ...completed.map((b) => h('option', { value: b.id }, `${b.name} (${timeText(b.created)})`)))),
      field('New instance name', 'name', { required: true }),
      field('To a moment (optional, e.g. 2026-12-06T10:30:00Z)', 'time', { placeholder: 'the end of the backup' }),
    ],
    'Restore into a new instance',
    async (v) => {
      const restorePoint = { backupRef: v.backup, ...(v.time === '' || v.time === undefined ? {} : { restore_time: v.time }) };
      const created = await trove<{ instance: Instance }>('POST', '/instances', {
        instance: {
          name: v.name,
          flavorRef: instance.flavor?.id,
          volume: { size: instance.volume?.size },
          datastore: { type: instance.datastore?.type, version: instance.datastore?.version },
          restorePoint,
        },
      });
      context.go(`#/instances/${encodeURIComponent(created.instance.id)}`);
    },
  );
}

export async function instancePage(root: HTMLElement, context: PageContext, id: string): Promise<void> {
  const path = `/instances/${encodeURIComponent(id)}`;
  let instance: Instance;
  try {
    ({ instance } = await trove<{ instance: Instance }>('GET', path));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      replace(root, h('h1', {}, 'Instance not found'), h('p', { role: 'alert' }, `There is no instance ${id} in this project.`), h('a', { href: '#/instances' }, 'Back to the instances'));
      return;
    }
    throw err;
  }
  const status = h('p', { id: 'instance-status' });
  const fault = h('p', { class: 'error', id: 'instance-fault', role: 'status' });
  const drawStatus = (current: Instance) => {
    replace(status, 'Status: ', statusText(current.status), ' ', statusText(current.operating_status));
    fault.textContent = current.fault?.message === undefined ? '' : `Fault: ${current.fault.message} (${timeText(current.fault.created)})`;
  };
  drawStatus(instance);

  const overview = h('section', { class: 'card', id: 'overview' });
  const drawOverview = (current: Instance) => {
    const command = connectCommand(current);
    replace(
      overview,
      fields([
        ['ID', current.id],
        ['Datastore', `${current.datastore?.type ?? ''} ${current.datastore?.version ?? ''}`],
        ['Flavor', current.flavor?.id],
        ['Volume', current.volume?.size === undefined ? undefined : `${current.volume.size} GB${current.volume.used === undefined ? '' : `, ${current.volume.used} GB used`}`],
        ['Address', addressText(current)],
        ['Connect', command === undefined ? undefined : h('code', { class: 'command' }, command)],
        ['Created', timeText(current.created)],
        ['Replica of', current.replica_of?.id === undefined ? undefined : h('a', { href: `#/instances/${current.replica_of.id}` }, current.replica_of.id)],
        ['Replicas', (current.replicas ?? []).length === 0 ? undefined : h('span', {}, ...(current.replicas ?? []).map((r) => h('a', { href: `#/instances/${r.id}` }, r.id, ' ')))],
      ]),
    );
  };
  drawOverview(instance);

  const confirm = h('div', { id: 'delete-confirm' });
  const askDelete = () => {
    const input = h('input', { name: 'confirm', 'aria-label': `Type ${instance.name} to delete it`, autocomplete: 'off' });
    const error = h('span', { class: 'field-error', role: 'alert' });
    const form = h(
      'form',
      { class: 'inline', id: 'delete-form' },
      h('label', {}, `Type the instance's name, ${instance.name}, to delete it and its data:`, input),
      h('button', { type: 'submit', class: 'danger' }, 'Delete for good'),
      h('button', { type: 'button', class: 'secondary', onclick: () => replace(confirm) }, 'Cancel'),
      error,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (input.value !== instance.name) {
        error.textContent = 'The name does not match.';
        return;
      }
      trove('DELETE', path).then(
        () => context.go('#/instances'),
        (err: unknown) => (error.textContent = errorText(err)),
      );
    });
    replace(confirm, form);
    input.focus();
  };
  const actionError = h('span', { class: 'field-error', role: 'alert', id: 'action-error' });
  const restart = () =>
    trove('POST', `${path}/action`, { restart: {} }).then(
      () => (actionError.textContent = ''),
      (err: unknown) => (actionError.textContent = errorText(err)),
    );

  const flavors = (await trove<{ flavors: Flavor[] }>('GET', '/flavors')).flavors;
  const isReplica = instance.replica_of?.id !== undefined;
  const replicas = replicasSection(path, instance.name);

  replace(
    root,
    h('h1', {}, instance.name),
    status,
    fault,
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'button', class: 'secondary', id: 'restart', onclick: () => void restart() }, 'Restart'),
      h('button', { type: 'button', class: 'danger', id: 'delete', onclick: askDelete }, 'Delete…'),
      actionError,
    ),
    confirm,
    overview,
    section('Metrics', 'metrics', async (body) => {
      const { metrics } = await trove<{ metrics: Record<string, number | string | boolean | null> }>('GET', `${path}/metrics`);
      if (metrics.measured === null) {
        replace(body, h('p', { class: 'muted' }, 'Not measured yet: the engine reports within a minute of being healthy.'));
        return;
      }
      const ratio = metrics.cache_hit_ratio;
      replace(
        body,
        fields([
          ['Measured', timeText(String(metrics.measured))],
          ['Connections', metrics.connections === null ? undefined : String(metrics.connections)],
          ['Data', typeof metrics.database_bytes === 'number' ? bytesText(metrics.database_bytes) : undefined],
          ['Operations since start', metrics.operations_total === null ? undefined : String(metrics.operations_total)],
          ['Cache hit ratio', typeof ratio === 'number' ? `${(ratio * 100).toFixed(1)}%` : undefined],
          ['Replication lag', metrics.replication_lag_seconds === null ? undefined : `${metrics.replication_lag_seconds} s`],
        ]),
      );
    }),
    section('Databases', 'databases', async (body) => {
      const { databases } = await trove<{ databases: Array<{ name: string }> }>('GET', `${path}/databases`);
      replace(
        body,
        databases.length === 0 ? h('p', { class: 'muted' }, 'No databases.') : h('ul', {}, ...databases.map((db) => h('li', {}, db.name, ' ', isReplica ? null : removeButton(`Delete database ${db.name}`, () => trove('DELETE', `${path}/databases/${encodeURIComponent(db.name)}`))))),
        isReplica ? null : actionForm('add-database', [field('New database', 'name', { required: true })], 'Add database', (v) => trove('POST', `${path}/databases`, { databases: [{ name: v.name }] })),
      );
    }),
    section('Users', 'users', async (body) => {
      const { users } = await trove<{ users: Array<{ name: string; host?: string; databases?: Array<{ name: string }> }> }>('GET', `${path}/users`);
      replace(
        body,
        users.length === 0
          ? h('p', { class: 'muted' }, 'No users.')
          : h('ul', {}, ...users.map((u) => h('li', {}, `${u.name}${u.host === undefined || u.host === '%' ? '' : `@${u.host}`}`, (u.databases ?? []).length === 0 ? '' : ` (${(u.databases ?? []).map((d) => d.name).join(', ')})`, ' ', isReplica ? null : removeButton(`Delete user ${u.name}`, () => trove('DELETE', `${path}/users/${encodeURIComponent(u.name)}`))))),
        isReplica
          ? null
          : actionForm(
              'add-user',
              [field('New user', 'name', { required: true, autocomplete: 'off' }), field('Password', 'password', { type: 'password', required: true, autocomplete: 'new-password' }), field('Databases (comma-separated)', 'databases')],
              'Add user',
              (v) =>
                trove('POST', `${path}/users`, {
                  users: [{ name: v.name, password: v.password, databases: (v.databases ?? '').split(',').map((d) => d.trim()).filter((d) => d !== '').map((name) => ({ name })) }],
                }),
            ),
      );
    }),
    section('Root', 'root', async (body) => {
      const { rootEnabled } = await trove<{ rootEnabled: boolean }>('GET', `${path}/root`);
      const shown = h('p', { id: 'root-password' });
      replace(
        body,
        h('p', {}, rootEnabled ? 'Root has been enabled on this instance.' : 'Root is not enabled.'),
        shown,
        isReplica
          ? null
          : h(
              'div',
              { class: 'row' },
              h('button', {
                type: 'button',
                class: 'secondary',
                onclick: () =>
                  void trove<{ user: { name: string; password: string } }>('POST', `${path}/root`).then(
                    ({ user }) => replace(shown, 'Root user ', h('strong', {}, user.name), ', password (shown once): ', h('span', { class: 'secret' }, user.password)),
                    (err: unknown) => (shown.textContent = errorText(err)),
                  ),
              }, rootEnabled ? 'Enable root with a new password' : 'Enable root'),
              rootEnabled ? h('button', { type: 'button', class: 'secondary', onclick: () => void trove('DELETE', `${path}/root`).then(refreshOf(body), (err: unknown) => (shown.textContent = errorText(err))) }, 'Disable root') : null,
            ),
      );
    }),
    section('Access', 'access', async (body) => {
      const current = (await trove<{ instance: Instance }>('GET', path)).instance;
      const cidrs = current.access?.allowed_cidrs ?? [];
      replace(
        body,
        h('p', {}, cidrs.length === 0 ? 'Clients from the default ranges may connect.' : `Clients may connect from: ${cidrs.join(', ')}`),
        actionForm('access-form', [field('Allowed ranges (CIDRs, comma-separated)', 'cidrs', { value: cidrs.join(', ') })], 'Save access rules', (v) =>
          trove('PUT', path, { instance: { access: { allowed_cidrs: (v.cidrs ?? '').split(',').map((c) => c.trim()).filter((c) => c !== '') } } }),
        ),
      );
    }),
    section('Configuration group', 'configuration', async (body) => {
      const [current, { configurations }] = await Promise.all([
        trove<{ instance: Instance }>('GET', path).then((r) => r.instance),
        trove<{ configurations: ConfigurationGroup[] }>('GET', '/configurations'),
      ]);
      const attached = current.configuration ?? undefined;
      const fitting = configurations.filter((c) => c.datastore_name === current.datastore?.type && c.datastore_version_name === current.datastore?.version);
      replace(
        body,
        h('p', {}, attached === undefined ? 'No configuration group: the engine runs with Coffer\'s settings.' : `Attached: ${attached.name ?? attached.id}`),
        attached === undefined
          ? fitting.length === 0
            ? h('p', { class: 'muted' }, `The project has no configuration group for ${current.datastore?.type ?? ''} ${current.datastore?.version ?? ''}.`)
            : actionForm('attach-configuration', [h('label', {}, 'Group', h('select', { name: 'group' }, ...fitting.map((c) => h('option', { value: c.id }, c.name))))], 'Attach', (v) =>
                trove('PUT', path, { instance: { configuration: v.group } }),
              )
          : actionForm('detach-configuration', [], 'Detach', () => trove('PUT', path, { instance: { configuration: null } })),
      );
    }),
    section('Resize', 'resize', async (body) => {
      replace(
        body,
        actionForm('resize-flavor', [h('label', {}, 'Flavor', h('select', { name: 'flavor' }, ...flavors.map((f) => h('option', { value: f.id, selected: f.id === instance.flavor?.id }, `${f.name} (${f.ram} MB)`))))], 'Resize flavor', (v) =>
          trove('POST', `${path}/action`, { resize: { flavorRef: v.flavor } }),
        ),
        actionForm('resize-volume', [field('Volume size (GB)', 'size', { type: 'number', min: String((instance.volume?.size ?? 0) + 1) })], 'Grow volume', (v) =>
          trove('POST', `${path}/action`, { resize: { volume: { size: Number(v.size) } } }),
        ),
      );
    }),
    section('Upgrade', 'upgrade', async (body) => {
      const [current, { datastores }] = await Promise.all([
        trove<{ instance: Instance }>('GET', path).then((r) => r.instance),
        trove<{ datastores: Datastore[] }>('GET', '/datastores'),
      ]);
      const type = current.datastore?.type ?? '';
      const own = current.datastore?.version ?? '';
      const newer = newerVersions(datastores.find((d) => d.name === type), own);
      replace(
        body,
        h('p', {}, `Runs ${type} ${own}.`),
        newer.length === 0
          ? h('p', { class: 'muted' }, `No newer version of ${type} is available.`)
          : actionForm(
              'upgrade-form',
              [h('label', {}, 'Upgrade to version', h('select', { name: 'version' }, ...newer.map((v) => h('option', { value: v.name }, v.version === undefined || v.version === v.name ? v.name : `${v.name} (${v.version})`))))],
              'Upgrade',
              (v) => trove('PATCH', path, { instance: { datastore_version: v.version } }),
            ),
      );
    }),
    replicas.element,
    section('Backups', 'backups', async (body) => {
      const { backups } = await trove<{ backups: Array<{ id: string; name: string; status: string; created: string; size?: number | null }> }>('GET', `${path}/backups`);
      const completed = backups.filter((b) => b.status === 'COMPLETED');
      replace(
        body,
        backups.length === 0 ? h('p', { class: 'muted' }, 'No backups.') : h('ul', {}, ...backups.map((b) => h('li', {}, `${b.name} `, statusText(b.status), ` ${timeText(b.created)}`))),
        actionForm('create-backup', [field('Backup name', 'name', { required: true })], 'Back up now', (v) => trove('POST', '/backups', { backup: { name: v.name, instance: id } })),
        completed.length === 0 ? '' : restoreForm(context, instance, completed),
      );
    }),
    section('History', 'history', async (body) => {
      const { events } = await trove<{ events: InstanceEvent[] }>('GET', `${path}/events?limit=20`);
      replace(
        body,
        events.length === 0
          ? h('p', { class: 'muted' }, 'Nothing yet.')
          : h('ul', {}, ...events.map((e) => h('li', {}, `${timeText(e.created)} — ${e.type} ${e.name}`, e.message === null ? '' : `: ${e.message}`))),
      );
    }),
  );

  let ticks = 0;
  poll(context, 3000, async () => {
    const current = (await trove<{ instance: Instance }>('GET', path)).instance;
    if (!context.alive()) return;
    // the guest measures its engine once a minute: its figures are read again every 15 s
    ticks += 1;
    if (ticks % 5 === 0) document.getElementById('metrics')?.dispatchEvent(new Event('refresh'));
    const changed = current.status !== instance.status || current.operating_status !== instance.operating_status;
    // a task quicker than the poll (a small upgrade, a resize) leaves the status as it was between
    // two looks: the instance's own time of change says it happened all the same. Only the
    // overview is drawn again for it; the cards (with their forms) follow a change of status.
    const redraw = changed || current.updated !== instance.updated;
    instance = current;
    if ((current.replica_of?.id !== undefined) !== isReplica) {
      // promoted or detached: what may be changed here (databases, users, root) changed with it
      context.go(location.hash);
      return;
    }
    drawStatus(current);
    // a new replica's build is followed closely, a settled group's every 15 s
    if (!changed && (current.replicas ?? []).length > 0 && (replicas.settling() || ticks % 5 === 0)) replicas.element.dispatchEvent(new Event('refresh'));
    if (redraw) drawOverview(current);
    if (changed) {
      // what the engine refused while it was not ready (a build, a restart) is asked again
      for (const card of root.querySelectorAll('section.card')) card.dispatchEvent(new Event('refresh'));
    }
  });
}

function removeButton(label: string, act: () => Promise<unknown>): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'secondary', 'aria-label': label }, 'Delete');
  button.addEventListener('click', () => {
    button.disabled = true;
    act().then(refreshOf(button), (err: unknown) => {
      button.disabled = false;
      button.textContent = errorText(err);
    });
  });
  return button;
}

/** a dotted version's order against another's (15.18 < 16.4); what is not a number counts as 0 */
function compareVersions(a: string, b: string): number {
  const left = a.split('.').map((part) => Number.parseInt(part, 10) || 0);
  const right = b.split('.').map((part) => Number.parseInt(part, 10) || 0);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}

/** the datastore's versions an instance on `own` may be upgraded to, oldest first (the API refuses a downgrade) */
function newerVersions(datastore: Datastore | undefined, own: string): Datastore['versions'] {
  // an administrator's list has the inactive versions too, which nothing can run
  const usable = (datastore?.versions ?? []).filter((v) => v.active !== false && v.active !== 0);
  const number = (v: Datastore['versions'][number]) => v.version ?? v.name;
  const current = usable.find((v) => v.name === own || v.id === own);
  const base = current === undefined ? own : number(current);
  return usable.filter((v) => v.name !== own && compareVersions(number(v), base) > 0).sort((a, b) => compareVersions(number(a), number(b)));
}

/**
 * A button whose action is asked about first, as delete is, in `panel` (shared by a row of such
 * buttons: one question at a time): the question says what follows, its confirm button takes the
 * focus, Cancel gives it back. An instance's data is not lost by these, so no name is typed.
 */
function confirmedAction(panel: HTMLElement, id: string, label: string, question: string, confirmLabel: string, act: () => Promise<unknown>): HTMLButtonElement {
  const trigger = h('button', { type: 'button', class: 'secondary', id }, label);
  trigger.addEventListener('click', () => {
    const error = h('span', { class: 'field-error', role: 'alert' });
    const confirmButton = h('button', { type: 'submit', class: 'danger' }, confirmLabel);
    const form = h(
      'form',
      { id: `${id}-form` },
      h('p', {}, question),
      h(
        'div',
        { class: 'row' },
        confirmButton,
        h('button', {
          type: 'button',
          class: 'secondary',
          onclick: () => {
            replace(panel);
            trigger.focus();
          },
        }, 'Cancel'),
        error,
      ),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      error.textContent = '';
      confirmButton.disabled = true;
      act().then(
        // the page's poll follows the task, and redraws the page when the instance's role changes
        () => replace(panel, h('p', { class: 'notice', role: 'status' }, `${confirmLabel}: started. The status above follows it.`)),
        (err: unknown) => {
          confirmButton.disabled = false;
          error.textContent = errorText(err);
        },
      );
    });
    replace(panel, form);
    confirmButton.focus();
  });
  return trigger;
}

const instanceLink = (other: Instance | undefined, otherId: string) => h('a', { href: `#/instances/${encodeURIComponent(otherId)}` }, other?.name ?? otherId);

/**
 * The Replicas card. On a primary: its replicas, each with its status (read again while one is
 * not ACTIVE, in place, so that the create form keeps what is being typed), and a form that
 * creates one. On a replica: its source, promote and detach.
 */
function replicasSection(path: string, name: string): { element: HTMLElement; settling: () => boolean } {
  let settling = false;
  const read = (otherId: string) => trove<{ instance: Instance }>('GET', `/instances/${encodeURIComponent(otherId)}`).then((r) => r.instance, () => undefined);
  const element = section('Replicas', 'replicas', async (body) => {
    const current = (await trove<{ instance: Instance }>('GET', path)).instance;
    const sourceId = current.replica_of?.id;
    if (sourceId !== undefined) {
      settling = false;
      const source = await read(sourceId);
      const panel = h('div', { id: 'replica-confirm' });
      replace(
        body,
        h('p', { id: 'replica-source' }, 'A read replica of ', instanceLink(source, sourceId), source === undefined ? '' : ' ', source === undefined ? null : statusText(source.status), '. Its databases, users and root are its source\'s, changed there.'),
        h(
          'div',
          { class: 'row' },
          confirmedAction(
            panel,
            'promote',
            'Promote to primary…',
            `Promote ${current.name} to primary? ${source?.name ?? sourceId} becomes its replica, with the group's other replicas; clients that write must connect to ${current.name} from then on.`,
            'Promote',
            () => trove('POST', `${path}/action`, { promote_to_replica_source: {} }),
          ),
          confirmedAction(
            panel,
            'detach',
            'Detach…',
            `Detach ${current.name} from ${source?.name ?? sourceId}? It keeps the data it has now and stops following its source for good: a standalone instance that takes writes.`,
            'Detach',
            () => trove('PUT', path, { instance: { replica_of: null } }),
          ),
        ),
        panel,
      );
      return;
    }
    const ids = (current.replicas ?? []).map((r) => r.id);
    const found = await Promise.all(ids.map(read));
    settling = found.some((r) => r !== undefined && r.status !== 'ACTIVE' && r.status !== 'ERROR');
    const list = body.querySelector<HTMLElement>('#replica-list');
    if (list !== null && list.dataset.ids === ids.join(',') && body.querySelector('#create-replica') !== null) {
      // the same replicas: only their status changes
      found.forEach((replica, index) => {
        const cell = list.children[index]?.querySelector('.replica-status');
        if (cell instanceof HTMLElement && replica !== undefined) replace(cell, statusText(replica.status), ' ', statusText(replica.operating_status));
      });
      return;
    }
    // only a standalone instance may lack replication: its engine's answer says so up front
    let supported = true;
    if (ids.length === 0) {
      await trove('GET', `${path}/replication`).catch((err: unknown) => {
        if (err instanceof ApiError && err.status === 422 && /^Operation not supported/.test(err.message)) supported = false;
      });
    }
    const items = ids.map((replicaId, index) => {
      const replica = found[index];
      return h('li', {}, instanceLink(replica, replicaId), ' ', h('span', { class: 'replica-status' }, statusText(replica?.status), ' ', statusText(replica?.operating_status)));
    });
    replace(
      body,
      ids.length === 0 ? h('p', { class: 'muted' }, supported ? 'No replicas.' : `${current.datastore?.type ?? ''} ${current.datastore?.version ?? ''} has no replication here.`) : h('ul', { id: 'replica-list', 'data-ids': ids.join(',') }, ...items),
      supported
        ? actionForm('create-replica', [field('Create a replica', 'name', { required: true, value: `${name}-replica-${ids.length + 1}`, autocomplete: 'off' })], 'Create replica', (v) =>
            // no flavor, volume or datastore: Trove refuses them with replica_of, and Coffer gives a replica its source's
            trove('POST', '/instances', { instance: { name: v.name, replica_of: current.id } }),
          )
        : null,
    );
  });
  return { element, settling: () => settling };
}
