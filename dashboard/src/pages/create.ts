import { ApiError, trove } from '../api.js';
import { formValues, h, replace } from '../dom.js';
import type { Datastore, Flavor, Instance } from '../types.js';
import { errorText, type PageContext } from './page.js';

// Create an instance: the same checks as the API (its answer is shown next to the field it is
// about), and a few of its own before anything is sent.

type Field = 'name' | 'datastore' | 'flavor' | 'size' | 'databases' | 'user' | 'password' | 'cidrs' | 'form';

/** which field an API error is about, from its words */
function fieldOf(message: string): Field {
  if (/volume|size/i.test(message)) return 'size';
  if (/flavor/i.test(message)) return 'flavor';
  if (/datastore|version/i.test(message)) return 'datastore';
  if (/cidr|access|address range/i.test(message)) return 'cidrs';
  if (/password/i.test(message)) return 'password';
  if (/user/i.test(message)) return 'user';
  if (/database/i.test(message)) return 'databases';
  if (/name/i.test(message)) return 'name';
  return 'form';
}

export async function createPage(root: HTMLElement, context: PageContext): Promise<void> {
  const [{ datastores }, { flavors }] = await Promise.all([
    trove<{ datastores: Datastore[] }>('GET', '/datastores'),
    trove<{ flavors: Flavor[] }>('GET', '/flavors'),
  ]);
  const errors = new Map<Field, HTMLElement>();
  const errorFor = (field: Field) => {
    const element = h('span', { class: 'field-error', id: `error-${field}`, role: 'alert' });
    errors.set(field, element);
    return element;
  };
  const input = (field: Field, attributes: Record<string, string | boolean>) =>
    h('input', { name: field, 'aria-describedby': `error-${field}`, ...attributes });
  const versions = datastores.flatMap((ds) =>
    ds.versions.map((v) => ({ value: `${ds.name}/${v.name}`, label: `${ds.name} ${v.name}`, preferred: v.id === ds.default_version })),
  );
  const form = h(
    'form',
    { class: 'stack', id: 'create-form', novalidate: true },
    h('label', {}, 'Name', input('name', { required: true, maxlength: '255' }), errorFor('name')),
    h(
      'label',
      {},
      'Datastore and version',
      h('select', { name: 'datastore', 'aria-describedby': 'error-datastore' }, ...versions.map((v) => h('option', { value: v.value, selected: v.preferred && v.value.startsWith('postgresql/') }, v.label))),
      errorFor('datastore'),
    ),
    h(
      'label',
      {},
      'Flavor',
      h('select', { name: 'flavor', 'aria-describedby': 'error-flavor' }, ...flavors.map((f) => h('option', { value: f.id }, `${f.name} (${f.ram} MB)`))),
      errorFor('flavor'),
    ),
    h('label', {}, 'Volume size (GB)', input('size', { type: 'number', min: '1', value: '1', required: true }), errorFor('size')),
    h('label', {}, 'Databases (comma-separated, optional)', input('databases', {}), errorFor('databases')),
    h('label', {}, 'User (optional)', input('user', { autocomplete: 'off' }), errorFor('user')),
    h('label', {}, "User's password", input('password', { type: 'password', autocomplete: 'new-password' }), errorFor('password')),
    h('label', {}, 'Allowed client ranges (CIDRs, comma-separated; empty: the default)', input('cidrs', {}), errorFor('cidrs')),
    errorFor('form'),
    h('button', { type: 'submit' }, 'Create'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    for (const element of errors.values()) element.textContent = '';
    const values = formValues(form);
    const list = (text: string | undefined) => (text ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '');
    const problems: Array<[Field, string]> = [];
    if ((values.name ?? '') === '') problems.push(['name', 'Give the instance a name.']);
    const size = Number(values.size);
    if (!Number.isInteger(size) || size < 1) problems.push(['size', 'The volume size is a whole number of GB, at least 1.']);
    if ((values.user ?? '') !== '' && (values.password ?? '') === '') problems.push(['password', 'The user needs a password.']);
    if ((values.user ?? '') === '' && (values.password ?? '') !== '') problems.push(['user', 'Name the user the password is for.']);
    if (problems.length > 0) {
      for (const [field, message] of problems) errors.get(field)!.textContent = message;
      return;
    }
    const [type, version] = (values.datastore ?? '').split('/');
    const databases = list(values.databases).map((name) => ({ name }));
    const cidrs = list(values.cidrs);
    const body = {
      instance: {
        name: values.name,
        flavorRef: values.flavor,
        volume: { size },
        datastore: { type, version },
        ...(databases.length === 0 ? {} : { databases }),
        ...((values.user ?? '') === '' ? {} : { users: [{ name: values.user, password: values.password, databases }] }),
        ...(cidrs.length === 0 ? {} : { access: { allowed_cidrs: cidrs } }),
      },
    };
    const button = form.querySelector('button[type=submit]') as HTMLButtonElement;
    button.disabled = true;
    trove<{ instance: Instance }>('POST', '/instances', body).then(
      ({ instance }) => context.go(`#/instances/${encodeURIComponent(instance.id)}`),
      (err: unknown) => {
        button.disabled = false;
        const message = errorText(err);
        errors.get(err instanceof ApiError ? fieldOf(message) : 'form')!.textContent = message;
      },
    );
  });
  replace(root, h('h1', {}, 'Create an instance'), form);
}
