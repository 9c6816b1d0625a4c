// Elements made from data with textContent only: nothing a tenant named (an instance, a user, a
// fault) is ever parsed as HTML.

type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | ((event: Event) => void) | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild !== null) parent.removeChild(parent.firstChild);
  append(parent, ...children);
}

/** a definition list of the fields that have a value */
export function fields(rows: Array<[string, Child]>): HTMLDListElement {
  const list = h('dl', { class: 'fields' });
  for (const [name, value] of rows) {
    if (value === null || value === undefined || value === '') continue;
    append(list, h('dt', {}, name), h('dd', {}, value));
  }
  return list;
}

export function statusText(status: string | undefined): HTMLSpanElement {
  return h('span', { class: `status status-${status ?? ''}` }, status ?? '');
}

/** a form's named values, trimmed */
export function formValues(form: HTMLFormElement): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, value] of new FormData(form).entries()) values[name] = typeof value === 'string' ? value.trim() : '';
  return values;
}
