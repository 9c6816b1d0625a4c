import { identity, trove } from '../api.js';
import { h, replace } from '../dom.js';
import { timeText } from '../format.js';
import type { PageContext } from './page.js';

// For administrators: the projects with their quotas, the datastore versions (inactive ones with
// why), and the compute agents with their health.

interface Quota {
  resource: string;
  in_use: number;
  limit: number;
}

function table(id: string, head: string[], rows: Array<Array<Node | string>>): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { id, class: 'stack-on-phone' },
      h('thead', {}, h('tr', {}, ...head.map((name) => h('th', { scope: 'col' }, name)))),
      h('tbody', {}, ...rows.map((cells) => h('tr', {}, ...cells.map((cell, i) => h('td', { 'data-label': head[i] ?? '' }, cell))))),
    ),
  );
}

export async function adminPage(root: HTMLElement, _context: PageContext): Promise<void> {
  const [{ projects }, { versions }, { hosts }] = await Promise.all([
    identity<{ projects: Array<{ id: string; name: string; enabled: boolean }> }>('GET', '/projects'),
    trove<{ versions: Array<{ id: string; name: string; datastore_name: string; active: boolean; default: boolean; inactive_reason?: string | null }> }>('GET', '/mgmt/datastore-versions'),
    trove<{ hosts: Array<{ name: string; instanceCount: number; last_seen: string; alive: boolean; engines: string[] }> }>('GET', '/mgmt/hosts'),
  ]);
  const quotas = await Promise.all(
    projects.map((p) => trove<{ quotas: Quota[] }>('GET', `/mgmt/quotas/${encodeURIComponent(p.id)}`).then((q) => q.quotas, () => [] as Quota[])),
  );
  const quotaText = (list: Quota[]) => list.map((q) => `${q.resource} ${q.in_use}/${q.limit < 0 ? '∞' : q.limit}`).join(', ');
  replace(
    root,
    h('h1', {}, 'Administration'),
    h('h2', {}, 'Projects'),
    table('projects', ['Project', 'ID', 'Enabled', 'Quotas (in use / limit)'], projects.map((p, i) => [p.name, p.id, p.enabled ? 'yes' : 'no', quotaText(quotas[i] ?? [])])),
    h('h2', {}, 'Datastore versions'),
    table(
      'datastore-versions',
      ['Datastore', 'Version', 'Active', 'Default', 'Why inactive'],
      versions.map((v) => [v.datastore_name, v.name, v.active ? 'yes' : 'no', v.default ? 'yes' : '', v.inactive_reason ?? '']),
    ),
    h('h2', {}, 'Compute agents'),
    hosts.length === 0
      ? h('p', { class: 'muted' }, 'No agent has reported yet.')
      : table('agents', ['Host', 'Health', 'Last report', 'Instances', 'Engines'], hosts.map((a) => [a.name, a.alive ? 'reporting' : 'silent', timeText(a.last_seen), String(a.instanceCount), a.engines.join(', ')])),
  );
}
