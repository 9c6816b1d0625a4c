import { trove } from '../api.js';
import { h, replace, statusText } from '../dom.js';
import { addressText, connectCommand } from '../format.js';
import type { Instance } from '../types.js';
import { poll, type PageContext } from './page.js';

// The project's instances, their status kept live (polled every 3 s while on screen), each with
// its address and a command to connect that a button copies.

async function allInstances(): Promise<Instance[]> {
  const found: Instance[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await trove<{ instances: Instance[]; links?: unknown[] }>('GET', `/instances?limit=100${marker === undefined ? '' : `&marker=${encodeURIComponent(marker)}`}`);
    found.push(...page.instances);
    if (page.links === undefined || page.instances.length === 0) return found;
    marker = page.instances.at(-1)!.id;
  }
}

function copyButton(text: string): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'secondary', 'aria-label': 'Copy the connect command' }, 'Copy');
  button.addEventListener('click', () => {
    navigator.clipboard?.writeText(text).then(
      () => (button.textContent = 'Copied'),
      () => (button.textContent = 'Select and copy'),
    );
  });
  return button;
}

function row(instance: Instance): HTMLTableRowElement {
  const command = connectCommand(instance);
  return h(
    'tr',
    { 'data-instance': instance.id },
    h('td', { 'data-label': 'Name' }, h('a', { href: `#/instances/${encodeURIComponent(instance.id)}` }, instance.name)),
    h('td', { 'data-label': 'Datastore' }, `${instance.datastore?.type ?? ''} ${instance.datastore?.version ?? ''}`),
    h('td', { 'data-label': 'Status', class: 'instance-status' }, statusText(instance.status), ' ', statusText(instance.operating_status)),
    h('td', { 'data-label': 'Address' }, addressText(instance)),
    h('td', { 'data-label': 'Connect' }, command === undefined ? '' : h('div', { class: 'row' }, h('code', { class: 'command' }, command), copyButton(command))),
  );
}

export async function instancesPage(root: HTMLElement, context: PageContext): Promise<void> {
  const body = h('tbody');
  const empty = h('p', { class: 'muted' });
  const draw = (instances: Instance[]) => {
    const ids = instances.map((i) => i.id).join(',');
    if (body.dataset.ids === ids) {
      // the same instances: only their status changes, and the keyboard's focus stays where it is
      for (const instance of instances) {
        const cell = body.querySelector(`tr[data-instance="${CSS.escape(instance.id)}"] .instance-status`);
        if (cell !== null) replace(cell, statusText(instance.status), ' ', statusText(instance.operating_status));
      }
    } else {
      body.dataset.ids = ids;
      replace(body, ...instances.map(row));
    }
    empty.textContent = instances.length === 0 ? 'No instances yet.' : '';
  };
  draw(await allInstances());
  replace(
    root,
    h('div', { class: 'row' }, h('h1', {}, 'Instances'), h('a', { href: '#/create' }, 'Create an instance')),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'stack-on-phone', id: 'instances' },
        h('thead', {}, h('tr', {}, ...['Name', 'Datastore', 'Status', 'Address', 'Connect'].map((name) => h('th', { scope: 'col' }, name)))),
        body,
      ),
    ),
    empty,
  );
  poll(context, 3000, async () => {
    const instances = await allInstances();
    if (context.alive()) draw(instances);
  });
}
