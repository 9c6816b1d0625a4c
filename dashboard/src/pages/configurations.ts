import { trove } from '../api.js';
import { formValues, h, replace } from '../dom.js';
import type { ConfigurationGroup, Datastore } from '../types.js';
import { errorText, type PageContext } from './page.js';

// The project's configuration groups: their values and how many instances use them; a new group
// from `name = value` lines (the API checks each value against the engine's rules); delete.

/** `max_connections = 200` lines as the API's values: numbers and booleans as such, the rest as text */
function parseValues(text: string): Record<string, string | number | boolean> {
  const values: Record<string, string | number | boolean> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const at = line.indexOf('=');
    if (at <= 0) throw new Error(`"${line.trim()}" is not name = value.`);
    const name = line.slice(0, at).trim();
    const raw = line.slice(at + 1).trim();
    values[name] = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return values;
}

export async function configurationsPage(root: HTMLElement, context: PageContext): Promise<void> {
  const [{ configurations }, { datastores }] = await Promise.all([
    trove<{ configurations: ConfigurationGroup[] }>('GET', '/configurations'),
    trove<{ datastores: Datastore[] }>('GET', '/datastores'),
  ]);
  const groups = await Promise.all(configurations.map((c) => trove<{ configuration: ConfigurationGroup }>('GET', `/configurations/${encodeURIComponent(c.id)}`).then((r) => r.configuration)));
  const error = h('span', { class: 'field-error', role: 'alert', id: 'configuration-error' });
  const form = h(
    'form',
    { class: 'stack', id: 'configuration-form' },
    h('label', {}, 'Name', h('input', { name: 'name', required: true })),
    h('label', {}, 'Datastore and version', h('select', { name: 'datastore' }, ...datastores.flatMap((ds) => ds.versions.map((v) => h('option', { value: `${ds.name}/${v.name}` }, `${ds.name} ${v.name}`))))),
    h('label', {}, 'Values, one "name = value" a line', h('textarea', { name: 'values', rows: 4 })),
    error,
    h('button', { type: 'submit' }, 'Create group'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    error.textContent = '';
    const v = formValues(form);
    const [type, version] = (v.datastore ?? '').split('/');
    let values: Record<string, string | number | boolean>;
    try {
      values = parseValues(v.values ?? '');
    } catch (err) {
      error.textContent = errorText(err);
      return;
    }
    trove('POST', '/configurations', { configuration: { name: v.name, values, datastore: { type, version } } }).then(
      () => context.go('#/configurations'),
      (err: unknown) => (error.textContent = errorText(err)),
    );
  });
  const rows = groups.map((g) =>
    h(
      'tr',
      {},
      h('td', { 'data-label': 'Name' }, g.name),
      h('td', { 'data-label': 'Datastore' }, `${g.datastore_name ?? ''} ${g.datastore_version_name ?? ''}`),
      h('td', { 'data-label': 'Values' }, Object.entries(g.values ?? {}).map(([name, value]) => `${name} = ${String(value)}`).join(', ')),
      h('td', { 'data-label': 'Instances' }, String(g.instance_count ?? 0)),
      h('td', {}, h('button', {
        type: 'button',
        class: 'secondary',
        'aria-label': `Delete group ${g.name}`,
        onclick: (event: Event) =>
          void trove('DELETE', `/configurations/${encodeURIComponent(g.id)}`).then(
            () => context.go('#/configurations'),
            (err: unknown) => ((event.target as HTMLButtonElement).textContent = errorText(err)),
          ),
      }, 'Delete')),
    ),
  );
  replace(
    root,
    h('h1', {}, 'Configuration groups'),
    groups.length === 0
      ? h('p', { class: 'muted' }, 'No configuration groups yet.')
      : h(
          'div',
          { class: 'table-wrap' },
          h('table', { class: 'stack-on-phone', id: 'configurations' }, h('thead', {}, h('tr', {}, ...['Name', 'Datastore', 'Values', 'Instances', ''].map((n) => h('th', { scope: 'col' }, n)))), h('tbody', {}, ...rows)),
        ),
    h('h2', {}, 'New group'),
    form,
  );
}
