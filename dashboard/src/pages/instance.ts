import { ApiError, trove } from '../api.js';
import { fields, formValues, h, replace, statusText } from '../dom.js';
import { addressText, bytesText, connectCommand, timeText } from '../format.js';
import type { ConfigurationGroup, Flavor, Instance, InstanceEvent } from '../types.js';
import { errorText, poll, type PageContext } from './page.js';

// One instance: its status (live), connection, metrics, history and fault; its databases, users,
// root and access rules; resize, restart and delete (confirmed by typing its name); its backups
// and replicas. Each section loads on its own, so one the engine lacks (Redis has no databases)
// says so without hiding the others.

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
    section('Backups', 'backups', async (body) => {
      const { backups } = await trove<{ backups: Array<{ id: string; name: string; status: string; created: string; size?: number | null }> }>('GET', `${path}/backups`);
      replace(
        body,
        backups.length === 0 ? h('p', { class: 'muted' }, 'No backups.') : h('ul', {}, ...backups.map((b) => h('li', {}, `${b.name} `, statusText(b.status), ` ${timeText(b.created)}`))),
        actionForm('create-backup', [field('Backup name', 'name', { required: true })], 'Back up now', (v) => trove('POST', '/backups', { backup: { name: v.name, instance: id } })),
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
    instance = current;
    drawStatus(current);
    if (changed) {
      drawOverview(current);
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
