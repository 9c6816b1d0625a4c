// A minimal Keystone + Trove HTTP client for end-to-end tests (the product's CLI has its own).

export interface Session {
  baseUrl: string;
  token: string;
  projectId: string;
}

export interface HttpResult<T = unknown> {
  status: number;
  body: T;
}

export async function request<T = any>(
  method: string,
  url: string,
  options: { token?: string; body?: unknown } = {},
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token !== undefined) headers['x-auth-token'] = options.token;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(url, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
}

export async function login(baseUrl: string, user: string, password: string, project: string): Promise<Session> {
  const response = await fetch(`${baseUrl}/identity/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: user, domain: { id: 'default' }, password } } },
        scope: { project: { name: project, domain: { id: 'default' } } },
      },
    }),
  });
  if (response.status !== 201) throw new Error(`login failed: ${response.status} ${await response.text()}`);
  const token = response.headers.get('x-subject-token');
  const body = (await response.json()) as { token: { project: { id: string } } };
  if (token === null) throw new Error('no X-Subject-Token');
  return { baseUrl, token, projectId: body.token.project.id };
}

export function trove(session: Session, path: string): string {
  return `${session.baseUrl}/v1.0/${session.projectId}${path}`;
}

/** Polls an instance until `done` says so or the time runs out; returns the last view. */
export async function waitForInstance(
  session: Session,
  id: string,
  done: (instance: any, status: number) => boolean,
  timeoutMs: number,
): Promise<{ status: number; instance: any }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await request<any>('GET', trove(session, `/instances/${id}`), { token: session.token });
    const instance = res.body?.instance;
    if (done(instance, res.status)) return { status: res.status, instance };
    if (Date.now() > deadline) {
      throw new Error(`instance ${id} did not reach the expected state: last ${res.status} ${JSON.stringify(res.body)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
