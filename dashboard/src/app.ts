import { currentSession, identity, logout, onSessionEnd, SessionExpired, switchProject } from './api.js';
import { h, replace } from './dom.js';
import { adminPage } from './pages/admin.js';
import { configurationsPage } from './pages/configurations.js';
import { createPage } from './pages/create.js';
import { instancePage } from './pages/instance.js';
import { instancesPage } from './pages/instances.js';
import { loginPage } from './pages/login.js';
import type { PageContext } from './pages/page.js';

// Coffer's web dashboard: one page, routed by the URL's fragment (#/instances, #/instances/<id>,
// #/create, #/admin, #/login), each view drawn from the API's answers. Views that show live status
// poll while they are on screen and stop when the user leaves them.

const app = document.getElementById('app')!;
const nav = document.getElementById('nav')!;
let generation = 0;
let loginNotice: string | undefined;

function go(hash: string): void {
  if (location.hash === hash) void render();
  else location.hash = hash;
}

function drawNav(): void {
  const session = currentSession();
  if (session === undefined) {
    replace(nav);
    return;
  }
  const picker = h('select', { 'aria-label': 'Project', id: 'project-picker' }, h('option', { value: session.projectId, selected: true }, session.projectName));
  identity<{ projects: Array<{ id: string; name: string }> }>('GET', '/auth/projects').then(
    ({ projects }) => {
      replace(picker, ...projects.map((p) => h('option', { value: p.id, selected: p.id === session.projectId }, p.name)));
    },
    () => undefined,
  );
  picker.addEventListener('change', () => {
    switchProject(picker.value).then(
      () => go('#/instances'),
      (err: unknown) => alertError(err),
    );
  });
  replace(
    nav,
    h('a', { href: '#/instances' }, 'Instances'),
    h('a', { href: '#/create' }, 'Create'),
    h('a', { href: '#/configurations' }, 'Configuration groups'),
    session.isAdmin ? h('a', { href: '#/admin' }, 'Administration') : null,
    h('span', { class: 'muted' }, session.userName),
    picker,
    h('button', { class: 'secondary', type: 'button', id: 'logout', onclick: () => void logout().then(() => go('#/login')) }, 'Log out'),
  );
}

function alertError(err: unknown): void {
  replace(app, h('p', { class: 'error', role: 'alert' }, err instanceof Error ? err.message : String(err)));
}

async function render(): Promise<void> {
  const mine = ++generation;
  const context: PageContext = { alive: () => mine === generation, go };
  const path = location.hash.replace(/^#/, '') || '/instances';
  drawNav();
  if (currentSession() === undefined && path !== '/login') {
    // after logging in, back to where the user was going
    sessionStorage.setItem('coffer-next', path);
    go('#/login');
    return;
  }
  const instance = /^\/instances\/([^/]+)$/.exec(path);
  // the view being left stays on screen until the next is drawn, but can no longer be acted on: a
  // click meant for the new instance's page must not land on the old one's buttons
  app.inert = true;
  app.setAttribute('aria-busy', 'true');
  try {
    if (path === '/login') {
      const notice = loginNotice;
      loginNotice = undefined;
      await loginPage(app, context, notice, () => {
        const next = sessionStorage.getItem('coffer-next');
        sessionStorage.removeItem('coffer-next');
        go(`#${next !== null && next !== '/login' ? next : '/instances'}`);
      });
    } else if (path === '/instances') await instancesPage(app, context);
    else if (instance !== null) await instancePage(app, context, decodeURIComponent(instance[1]!));
    else if (path === '/create') await createPage(app, context);
    else if (path === '/configurations') await configurationsPage(app, context);
    else if (path === '/admin') await adminPage(app, context);
    else replace(app, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/instances' }, 'Back to the instances')));
  } catch (err) {
    if (!(err instanceof SessionExpired) && mine === generation) alertError(err);
  }
  if (mine !== generation) return;
  app.inert = false;
  app.removeAttribute('aria-busy');
  // a new view takes the keyboard's focus, on its field marked autofocus if it has one (it could
  // not take it itself while inert)
  const field = app.querySelector<HTMLElement>('[autofocus]');
  if (field !== null) field.focus();
  else if (!app.contains(document.activeElement)) app.focus();
}

onSessionEnd(() => {
  loginNotice = 'Your session has expired: log in again.';
  sessionStorage.setItem('coffer-next', location.hash.replace(/^#/, ''));
  go('#/login');
});
window.addEventListener('hashchange', () => void render());
void render();
