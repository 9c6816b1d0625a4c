import { ApiError, login } from '../api.js';
import { formValues, h, replace } from '../dom.js';
import type { PageContext } from './page.js';

export async function loginPage(root: HTMLElement, _context: PageContext, notice: string | undefined, done: () => void): Promise<void> {
  const error = h('p', { class: 'error', role: 'alert', id: 'login-error' }, notice ?? '');
  const form = h(
    'form',
    { class: 'stack', id: 'login-form' },
    h('label', {}, 'User name', h('input', { name: 'user', autocomplete: 'username', required: true, autofocus: true })),
    h('label', {}, 'Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    h('label', {}, 'Project (empty: your default project)', h('input', { name: 'project' })),
    h('button', { type: 'submit' }, 'Log in'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = formValues(form);
    const button = form.querySelector('button')!;
    button.disabled = true;
    error.textContent = '';
    login(values.user ?? '', values.password ?? '', values.project ?? '').then(done, (err: unknown) => {
      button.disabled = false;
      error.textContent = err instanceof ApiError ? err.message : 'The identity service could not be reached.';
    });
  });
  replace(root, h('h1', {}, 'Log in to Coffer'), error, form);
}
