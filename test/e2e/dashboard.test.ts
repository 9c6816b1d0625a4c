// test-lane: parallel (coffer serve on a random loopback range, a port and a data directory of its own, and a headless Chromium of its own)
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { login, request, waitForInstance, type Session } from '../support/api-client.js';
import { randomPool } from '../guest/engine-fixture.js';
import { startServe, type ServeRun } from './serve-run.js';
import { eventually } from '../support/wait.js';

// The web dashboard in a real browser (Debian's chromium, driven by playwright-core; nothing
// downloads a browser): a member logs in with the keyboard, creates a PostgreSQL instance through
// the form (whose own checks and the API's answer show next to the fields), watches it turn
// ACTIVE without a reload, adds a database and a user, and deletes it after typing its name. A
// wrong password is refused, a member of another project opening the instance's URL finds
// nothing, a revoked session sends the page back to the login form, an administrator sees the
// projects, datastore versions and agents, and the page fits a phone's width. The token is never
// in the page's storage. From an instance's page a member creates a replica, promotes it, detaches
// the old primary and upgrades that to PostgreSQL 16. Screenshots go to docs/.

// what the functions run in the page (page.evaluate, waitForFunction) name there: this file is
// compiled for Node, without the DOM's types
declare const document: any;
declare const window: any;
declare const localStorage: any;
declare const sessionStorage: any;

const adminPassword = 'Dash-admin-pass-1234';
const memberPassword = 'Dash-member-pass-1234';
const chromiumPath = '/usr/bin/chromium';
const shots = new URL('../../docs/', import.meta.url);
const instanceName = 'shop-orders-db';

let run: ServeRun;
let browser: Browser;
let admin: Session;
let instanceId: string | undefined;
/** the replication test's instances, deleted after (replicas first: a source with replicas is not) */
const groupIds: string[] = [];

async function identity(method: string, path: string, body?: unknown): Promise<any> {
  const res = await request<any>(method, `${run.baseUrl}/identity/v3${path}`, { token: admin.token, ...(body === undefined ? {} : { body }) });
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function member(projectName: string, userName: string): Promise<void> {
  const project = (await identity('POST', '/projects', { project: { name: projectName, domain_id: 'default' } })).project;
  const user = (await identity('POST', '/users', { user: { name: userName, password: memberPassword, default_project_id: project.id, domain_id: 'default' } })).user;
  const role = (await identity('GET', '/roles?name=member')).roles[0];
  await identity('PUT', `/projects/${project.id}/users/${user.id}/roles/${role.id}`);
}

/** a fresh browser session (its own memory: no token carries over), at `hash` */
async function open(hash = ''): Promise<{ context: BrowserContext; page: Page; tokens: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  // the test (not the page) watches the token go by, to revoke it as an operator would
  const tokens: string[] = [];
  // what goes wrong in the page shows in the test's output
  page.on('pageerror', (err) => process.stderr.write(`dashboard page error: ${err.message}\n`));
  page.on('response', (response) => {
    if (response.status() >= 400 && process.env.COFFER_TEST_DEBUG !== undefined) process.stderr.write(`dashboard ${response.status()} ${response.url()}\n`);
  });
  page.on('console', (message) => {
    if (message.type() === 'error') process.stderr.write(`dashboard console: ${message.text()}\n`);
  });
  page.on('request', (req) => {
    const token = req.headers()['x-auth-token'];
    if (token !== undefined && !tokens.includes(token)) tokens.push(token);
  });
  await page.goto(`${run.baseUrl}/dashboard${hash}`);
  return { context, page, tokens };
}

/** logs in with the keyboard alone: the form has the focus, Tab moves, Enter submits */
async function logIn(page: Page, user: string, password: string): Promise<void> {
  await page.waitForSelector('#login-form');
  await page.keyboard.type(user);
  await page.keyboard.press('Tab');
  await page.keyboard.type(password);
  await page.keyboard.press('Enter');
}

async function removeGroup(): Promise<void> {
  const url = (id: string) => `${run.baseUrl}/v1.0/${admin.projectId}/instances/${id}`;
  const views = await Promise.all(groupIds.map((id) => request<any>('GET', url(id), { token: admin.token })));
  const replicasFirst = groupIds.filter((_, index) => views[index]?.body?.instance?.replica_of != null);
  for (const id of replicasFirst) await request('DELETE', url(id), { token: admin.token });
  const deadline = Date.now() + 60_000;
  for (const id of groupIds.filter((other) => !replicasFirst.includes(other))) {
    // refused (403) while its replicas' deletes run
    while ((await request('DELETE', url(id), { token: admin.token })).status === 403 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

before(async () => {
  // the longer name this had once made an upgrade's socket path too long: postgresql-upgrade's
  // test now upgrades an instance as deep as its own socket allows
  run = await startServe('coffer-e2e-dashboard', adminPassword, ['--address-pool', randomPool(), '--warm-pool-size', '1']);
  admin = await login(run.baseUrl, 'admin', adminPassword, 'admin');
  await member('shop', 'alice');
  await member('elsewhere', 'mallory');
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  await mkdir(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  // an instance a failed check left (an admin may delete any project's)
  if (instanceId !== undefined) await request('DELETE', `${run.baseUrl}/v1.0/${admin.projectId}/instances/${instanceId}`, { token: admin.token }).catch(() => undefined);
  if (run !== undefined) await removeGroup().catch(() => undefined);
  await run?.stop();
});

test('the page and its scripts are served from the repo with a strict content security policy, and nothing else is', async () => {
  const page = await fetch(`${run.baseUrl}/dashboard`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
  assert.match(await page.text(), /<main id="app"/);
  for (const path of ['/dashboard/js/app.js', '/dashboard/js/pages/instance.js', '/dashboard/static/style.css']) {
    assert.equal((await fetch(`${run.baseUrl}${path}`)).status, 200, path);
  }
  for (const path of ['/dashboard/js/../../package.json', '/dashboard/js/pages/../../../package.json', '/dashboard/static/.env', '/dashboard/js/app.ts']) {
    assert.equal((await fetch(`${run.baseUrl}${path}`)).status, 404, path);
  }
});

test('a wrong password is refused on the form, and nothing is kept in the page', async () => {
  const { context, page } = await open();
  try {
    await logIn(page, 'alice', 'not-her-password');
    await page.waitForFunction(() => /Wrong user name or password/.test(document.getElementById('login-error')?.textContent ?? ''));
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.equal(await page.$('#instances'), null);
  } finally {
    await context.close();
  }
});

test('a member creates an instance through the form, watches it turn ACTIVE, adds a database and a user, and deletes it', async () => {
  const { context, page, tokens } = await open();
  try {
    await logIn(page, 'alice', memberPassword);
    await page.waitForSelector('#instances');
    assert.match((await page.textContent('#nav')) ?? '', /alice/);
    // nothing of the session in the page's storage: the token lives in memory
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }) + document.cookie);
    assert.ok(tokens.length > 0 && !tokens.some((token) => stored.includes(token)), stored);

    await page.click('a[href="#/create"]');
    await page.waitForSelector('#create-form');
    // the form's own checks, next to their fields
    await page.fill('input[name=size]', '0');
    await page.click('#create-form button[type=submit]');
    assert.equal(await page.textContent('#error-name'), 'Give the instance a name.');
    assert.match((await page.textContent('#error-size')) ?? '', /whole number of GB/);
    // the API's answer, next to the field it is about
    await page.fill('input[name=name]', instanceName);
    await page.fill('input[name=size]', '1');
    await page.fill('input[name=databases]', 'shop');
    await page.fill('input[name=user]', 'app');
    await page.fill('input[name=password]', 'App-user-pass-1234');
    await page.fill('input[name=cidrs]', 'not-a-range');
    await page.click('#create-form button[type=submit]');
    await page.waitForFunction(() => (document.getElementById('error-cidrs')?.textContent ?? '') !== '');
    await page.fill('input[name=cidrs]', '');
    await page.selectOption('select[name=datastore]', { label: 'postgresql 15' });
    await page.click('#create-form button[type=submit]');

    await page.waitForSelector('#instance-status');
    instanceId = decodeURIComponent(new URL(page.url()).hash.replace('#/instances/', ''));
    // live: the status turns without a reload
    await page.waitForFunction(() => /ACTIVE\s+HEALTHY/.test(document.getElementById('instance-status')?.textContent ?? ''), undefined, { timeout: 120_000 });
    assert.match((await page.textContent('#overview')) ?? '', /psql "host=127\.[0-9.]+ port=5432 user=<user> dbname=postgres"/);

    await page.fill('#add-database input[name=name]', 'orders');
    await page.click('#add-database button[type=submit]');
    await page.waitForFunction(() => /orders/.test(document.querySelector('#databases ul')?.textContent ?? ''));
    await page.fill('#add-user input[name=name]', 'reporter');
    await page.fill('#add-user input[name=password]', 'Reporter-pass-1234');
    await page.fill('#add-user input[name=databases]', 'orders');
    await page.click('#add-user button[type=submit]');
    await page.waitForFunction(() => /reporter \(orders\)/.test(document.querySelector('#users ul')?.textContent ?? ''));
    // the API has them: not just the page
    const users = await request<any>('GET', `${run.baseUrl}/v1.0/${admin.projectId}/instances/${instanceId}/users`, { token: admin.token });
    assert.deepEqual(users.body.users.map((u: { name: string }) => u.name).sort(), ['app', 'reporter']);
    // a configuration group, made on its page and attached on the instance's
    await page.click('a[href="#/configurations"]');
    await page.waitForSelector('#configuration-form');
    await page.fill('#configuration-form input[name=name]', 'tuned');
    await page.selectOption('#configuration-form select[name=datastore]', { label: 'postgresql 15' });
    await page.fill('#configuration-form textarea[name=values]', 'no_such_setting = 1');
    await page.click('#configuration-form button[type=submit]');
    await page.waitForFunction(() => /no_such_setting/.test(document.getElementById('configuration-error')?.textContent ?? ''));
    await page.fill('#configuration-form textarea[name=values]', 'work_mem = 8MB');
    await page.click('#configuration-form button[type=submit]');
    await page.waitForSelector('#configurations');
    assert.match((await page.textContent('#configurations')) ?? '', /tuned.*work_mem = 8MB/);
    await page.evaluate((id) => (window.location.hash = `#/instances/${id}`), instanceId);
    await page.waitForSelector('#attach-configuration');
    await page.click('#attach-configuration button[type=submit]');
    await page.waitForFunction(() => /Attached: tuned/.test(document.getElementById('configuration')?.textContent ?? ''));
    const view = await request<any>('GET', `${run.baseUrl}/v1.0/${admin.projectId}/instances/${instanceId}`, { token: admin.token });
    assert.equal(view.body.instance.configuration?.name, 'tuned');
    await page.waitForFunction(() => /ACTIVE\s+HEALTHY/.test(document.getElementById('instance-status')?.textContent ?? ''), undefined, { timeout: 60_000 });
    await page.waitForFunction(() => /Measured/.test(document.getElementById('metrics')?.textContent ?? ''), undefined, { timeout: 90_000 });
    await page.screenshot({ path: new URL('dashboard-instance.png', shots).pathname, fullPage: true });

    // the list, with its address and connect command, then the same at a phone's width
    await page.click('a[href="#/instances"]');
    await page.waitForSelector(`tr[data-instance="${instanceId}"]`);
    assert.match((await page.textContent(`tr[data-instance="${instanceId}"]`)) ?? '', /ACTIVE HEALTHY.*127\.[0-9.]+:5432.*psql/);
    await page.screenshot({ path: new URL('dashboard-instances.png', shots).pathname });
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(`${run.baseUrl}/dashboard#/instances/${instanceId}`);
    await page.reload();
    // a reload ends the session (the token was in memory): log in again, and land where the URL said
    await logIn(page, 'alice', memberPassword);
    await page.waitForSelector('#instance-status');
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no sideways scrolling at 375 px');
    await page.screenshot({ path: new URL('dashboard-phone.png', shots).pathname, fullPage: true });
    await page.setViewportSize({ width: 1200, height: 900 });

    // a backup taken on the page, then restored from it into a new instance, whose page opens
    await page.fill('#create-backup input[name=name]', 'before-delete');
    await page.click('#create-backup button[type=submit]');
    await eventually(
      'the backup completed',
      async () => (await request<any>('GET', `${run.baseUrl}/v1.0/${admin.projectId}/instances/${instanceId}/backups`, { token: admin.token })).body.backups,
      (backups: Array<{ status: string }>) => backups.some((b) => b.status === 'COMPLETED'),
      120_000,
    );
    await page.click('a[href="#/instances"]');
    await page.waitForSelector(`tr[data-instance="${instanceId}"]`);
    await page.evaluate((id) => (window.location.hash = `#/instances/${id}`), instanceId);
    await page.waitForSelector('#restore-backup');
    assert.match((await page.textContent('#restore-backup select[name=backup]')) ?? '', /before-delete/);
    await page.fill('#restore-backup input[name=time]', 'yesterday');
    await page.fill('#restore-backup input[name=name]', `${instanceName}-restored`);
    await page.click('#restore-backup button[type=submit]');
    await page.waitForFunction(() => /restore_time "yesterday" is not a time/.test(document.querySelector('#restore-backup .field-error')?.textContent ?? ''));
    await page.fill('#restore-backup input[name=time]', '');
    await page.click('#restore-backup button[type=submit]');
    await page.waitForFunction((id) => !window.location.hash.endsWith(id) && window.location.hash.startsWith('#/instances/'), instanceId);
    const restoredId = decodeURIComponent(new URL(page.url()).hash.replace('#/instances/', ''));
    // the new instance's own page (not the one it came from), live until its restore is done
    await page.waitForFunction(
      (name) => (document.querySelector('h1')?.textContent ?? '').includes(name) && /ACTIVE\s+HEALTHY/.test(document.getElementById('instance-status')?.textContent ?? ''),
      `${instanceName}-restored`,
      { timeout: 180_000 },
    );
    const restoredDatabases = await request<any>('GET', `${run.baseUrl}/v1.0/${admin.projectId}/instances/${restoredId}/databases`, { token: admin.token });
    assert.equal(restoredDatabases.status, 200, JSON.stringify(restoredDatabases.body));
    assert.ok(restoredDatabases.body.databases.some((d: { name: string }) => d.name === 'orders'), 'the restored instance has what the backup held');
    assert.equal((await request('DELETE', `${run.baseUrl}/v1.0/${admin.projectId}/instances/${restoredId}`, { token: admin.token })).status, 202);
    await page.evaluate((id) => (window.location.hash = `#/instances/${id}`), instanceId);
    // the restored instance's page (with a Delete button of its own) stays until this one is drawn
    await page.waitForFunction((name) => document.querySelector('h1')?.textContent === name && document.getElementById('delete') !== null, instanceName);

    // delete: refused until the name is typed
    await page.click('#delete');
    await page.fill('#delete-form input[name=confirm]', 'something else');
    await page.click('#delete-form button[type=submit]');
    assert.equal(await page.textContent('#delete-form .field-error'), 'The name does not match.');
    await page.fill('#delete-form input[name=confirm]', instanceName);
    await page.click('#delete-form button[type=submit]');
    await page.waitForSelector('#instances');
    await page.waitForFunction((id) => document.querySelector(`tr[data-instance="${id}"]`) === null, instanceId, { timeout: 120_000 });
    instanceId = undefined;
  } finally {
    await context.close();
  }
});

test('on the instance page a member creates a replica, sees it ACTIVE, promotes it, detaches the old primary and upgrades that to PostgreSQL 16', { timeout: 420_000 }, async () => {
  const alice = await login(run.baseUrl, 'alice', memberPassword, 'shop');
  const api = async (path: string) => (await request<any>('GET', `${run.baseUrl}/v1.0/${alice.projectId}${path}`, { token: alice.token })).body;
  const made = await request<any>('POST', `${run.baseUrl}/v1.0/${alice.projectId}/instances`, {
    token: alice.token,
    body: { instance: { name: 'ledger-db', flavorRef: '1', volume: { size: 1 }, datastore: { type: 'postgresql', version: '15' } } },
  });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const primaryId = made.body.instance.id as string;
  groupIds.push(primaryId);
  const { context, page } = await open(`#/instances/${primaryId}`);
  const healthy = () => page.waitForFunction(() => /ACTIVE\s+HEALTHY/.test(document.getElementById('instance-status')?.textContent ?? ''), undefined, { timeout: 120_000 });
  try {
    await logIn(page, 'alice', memberPassword);
    // the versions this host runs newer than 15: Debian's 15, the npm builds of 16 to 18
    await page.waitForSelector('#upgrade-form');
    assert.deepEqual(await page.$$eval('#upgrade-form select[name=version] option', (options) => options.map((o: any) => o.value)), ['16', '17', '18']);
    await healthy();

    await page.fill('#create-replica input[name=name]', 'ledger-db-copy');
    await page.click('#create-replica button[type=submit]');
    // listed at once, and its status followed without a reload
    await page.waitForFunction(() => /ledger-db-copy/.test(document.getElementById('replica-list')?.textContent ?? ''));
    await page.waitForFunction(() => /ledger-db-copy\s+ACTIVE/.test(document.getElementById('replica-list')?.textContent ?? ''), undefined, { timeout: 120_000 });
    // a group's members run one version: the API's reason shows next to the form
    await page.click('#upgrade-form button[type=submit]');
    await page.waitForFunction(() => /replication group/.test(document.querySelector('#upgrade-form .field-error')?.textContent ?? ''));

    await page.click('#replica-list a');
    await page.waitForSelector('#promote');
    const replicaId = decodeURIComponent(new URL(page.url()).hash.replace('#/instances/', ''));
    groupIds.push(replicaId);
    assert.match((await page.textContent('#replica-source')) ?? '', /A read replica of ledger-db/);
    await page.click('#promote');
    await page.click('#promote-form button[type=submit]');
    // promoted, the page is a primary's, with the old primary as its replica
    await page.waitForFunction((id) => document.querySelector(`#replica-list a[href="#/instances/${id}"]`) !== null, primaryId, { timeout: 120_000 });
    assert.equal((await api(`/instances/${primaryId}`)).instance.replica_of?.id, replicaId);
    const promoted = (await api(`/instances/${replicaId}`)).instance;
    assert.equal(promoted.replica_of, undefined);
    assert.deepEqual(promoted.replicas.map((r: { id: string }) => r.id), [primaryId]);

    // the old primary, detached, runs alone and may then be upgraded
    await page.click(`#replica-list a[href="#/instances/${primaryId}"]`);
    await page.waitForSelector('#detach');
    await healthy();
    await page.click('#detach');
    await page.click('#detach-form button[type=submit]');
    await page.waitForSelector('#create-replica', { timeout: 120_000 });
    await healthy();
    await page.selectOption('#upgrade-form select[name=version]', '16');
    await page.click('#upgrade-form button[type=submit]');
    await page.waitForFunction(() => /UPGRADE|postgresql 16/.test((document.getElementById('instance-status')?.textContent ?? '') + (document.getElementById('overview')?.textContent ?? '')), undefined, { timeout: 60_000 });
    // a failed upgrade leaves the instance ACTIVE on 15 with a fault: that ends the wait too
    const upgraded = await waitForInstance(alice, primaryId, (i) => i?.status === 'ERROR' || /^Upgrade failed/.test(i?.fault?.message ?? '') || (i?.status === 'ACTIVE' && i?.datastore?.version === '16'), 180_000);
    assert.equal(upgraded.instance.status, 'ACTIVE', JSON.stringify(upgraded.instance.fault));
    assert.equal(upgraded.instance.datastore.version, '16', JSON.stringify(upgraded.instance.fault));
    await page.waitForFunction(() => /postgresql 16/.test(document.getElementById('overview')?.textContent ?? ''), undefined, { timeout: 30_000 });
    // 16 is an npm build without pg_basebackup: no replicas, and so no form for one
    await page.waitForFunction(() => /has no replication here/.test(document.getElementById('replicas')?.textContent ?? ''), undefined, { timeout: 30_000 });
    assert.equal(await page.$('#create-replica'), null);
  } finally {
    await context.close();
  }
});

test("a member of another project opening an instance's URL finds nothing there", async () => {
  const made = await request<any>('POST', `${run.baseUrl}/v1.0/${admin.projectId}/instances`, {
    token: admin.token,
    body: { instance: { name: 'admins-own', flavorRef: '1', volume: { size: 1 }, datastore: { type: 'redis' } } },
  });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const { context, page } = await open(`#/instances/${made.body.instance.id}`);
  try {
    await logIn(page, 'mallory', memberPassword);
    await page.waitForFunction(() => /Instance not found/.test(document.querySelector('main h1')?.textContent ?? ''));
    assert.doesNotMatch((await page.textContent('main')) ?? '', /admins-own/);
  } finally {
    await context.close();
    await request('DELETE', `${run.baseUrl}/v1.0/${admin.projectId}/instances/${made.body.instance.id}`, { token: admin.token });
  }
});

test('the page being left cannot be acted on while the next one loads, and the next one gets the keyboard', async () => {
  const { context, page } = await open();
  try {
    await logIn(page, 'alice', memberPassword);
    await page.waitForSelector('#instances');
    // the next page's first answer is held back, as a slow API would
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/configurations', async (route) => {
      await held;
      await route.continue();
    });
    await page.evaluate(() => (window.location.hash = '#/configurations'));
    await page.waitForFunction(() => document.getElementById('app')?.getAttribute('aria-busy') === 'true');
    assert.equal(await page.evaluate(() => document.getElementById('app')!.inert), true);
    assert.ok(await page.$('#instances'), 'the list stays on screen meanwhile');
    release();
    await page.waitForFunction(() => !document.getElementById('app')!.inert && document.getElementById('app')!.getAttribute('aria-busy') === null);
    assert.equal(await page.$('#instances'), null);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'app');
  } finally {
    await context.close();
  }
});

test('a session revoked (or expired) meanwhile sends the page back to the login form, saying so', async () => {
  const { context, page, tokens } = await open();
  try {
    await logIn(page, 'alice', memberPassword);
    await page.waitForSelector('#instances');
    const token = tokens.at(-1)!;
    const revoked = await fetch(`${run.baseUrl}/identity/v3/auth/tokens`, { method: 'DELETE', headers: { 'x-auth-token': admin.token, 'x-subject-token': token } });
    assert.equal(revoked.status, 204);
    // the list's next poll meets a 401
    await page.waitForFunction(() => /session has expired/.test(document.getElementById('login-error')?.textContent ?? ''), undefined, { timeout: 15_000 });
    await logIn(page, 'alice', memberPassword);
    await page.waitForSelector('#instances');
  } finally {
    await context.close();
  }
});

test('an administrator sees the projects with their quotas, the datastore versions and the agents', async () => {
  const { context, page } = await open('#/admin');
  try {
    await logIn(page, 'admin', adminPassword);
    await page.waitForSelector('#agents');
    assert.match((await page.textContent('#projects')) ?? '', /shop/);
    assert.match((await page.textContent('#projects')) ?? '', /instances \d+\//);
    assert.match((await page.textContent('#datastore-versions')) ?? '', /postgresql/);
    assert.match((await page.textContent('#agents')) ?? '', /local\s*reporting/);
    await page.screenshot({ path: new URL('dashboard-admin.png', shots).pathname, fullPage: true });
  } finally {
    await context.close();
  }
});
