// The dashboard's session and its calls to this same origin's API: Coffer's identity service for
// the token, Trove's API for everything else. The token lives in this module's memory only (never
// in localStorage or a cookie a script could read): a reload or a closed tab ends the session.

export interface Session {
  token: string;
  userName: string;
  projectId: string;
  projectName: string;
  isAdmin: boolean;
  expiresAt: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The session ended (expired or revoked): the page goes back to the login form. */
export class SessionExpired extends Error {}

let session: Session | undefined;
const listeners: Array<() => void> = [];

export function currentSession(): Session | undefined {
  return session;
}

/** called when the session ends on its own (expired, revoked) */
export function onSessionEnd(listener: () => void): void {
  listeners.push(listener);
}

interface TokenBody {
  token?: { expires_at?: string; user?: { name?: string }; project?: { id?: string; name?: string }; roles?: Array<{ name?: string }> };
}

async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as Record<string, { message?: unknown; title?: unknown }>;
    const first = Object.values(body)[0];
    const message = typeof first?.message === 'string' ? first.message : undefined;
    if (message !== undefined) return new ApiError(response.status, message);
  } catch {
    // not JSON: the status says enough
  }
  return new ApiError(response.status, `The API answered ${response.status} ${response.statusText}.`);
}

async function issue(auth: unknown): Promise<Session> {
  const response = await fetch('/identity/v3/auth/tokens?nocatalog', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth }),
  });
  if (response.status === 401) throw new ApiError(401, 'Wrong user name or password, or no access to that project.');
  if (!response.ok) throw await errorOf(response);
  const body = (await response.json()) as TokenBody;
  const token = response.headers.get('x-subject-token');
  const project = body.token?.project;
  if (token === null || project?.id === undefined) throw new ApiError(500, 'The identity service answered without a token.');
  return {
    token,
    userName: body.token?.user?.name ?? '',
    projectId: project.id,
    projectName: project.name ?? project.id,
    isAdmin: (body.token?.roles ?? []).some((role) => role.name === 'admin'),
    expiresAt: Date.parse(body.token?.expires_at ?? '') || Date.now() + 3_600_000,
  };
}

/** A password login, to `project` when named (else the user's default project). */
export async function login(userName: string, password: string, project: string): Promise<Session> {
  const scope = project === '' ? undefined : { project: { name: project, domain: { id: 'default' } } };
  session = await issue({
    identity: { methods: ['password'], password: { user: { name: userName, domain: { id: 'default' }, password } } },
    ...(scope === undefined ? {} : { scope }),
  });
  return session;
}

/** A token for another of the user's projects, from the current one. */
export async function switchProject(projectId: string): Promise<Session> {
  const current = requireSession();
  session = await issue({ identity: { methods: ['token'], token: { id: current.token } }, scope: { project: { id: projectId } } });
  // the old token is revoked: one live token per tab
  await fetch('/identity/v3/auth/tokens', { method: 'DELETE', headers: { 'x-auth-token': session.token, 'x-subject-token': current.token } }).catch(() => undefined);
  return session;
}

export async function logout(): Promise<void> {
  const ended = session;
  session = undefined;
  if (ended !== undefined) {
    await fetch('/identity/v3/auth/tokens', { method: 'DELETE', headers: { 'x-auth-token': ended.token, 'x-subject-token': ended.token } }).catch(() => undefined);
  }
}

function requireSession(): Session {
  if (session === undefined) throw new SessionExpired('Log in first.');
  return session;
}

async function call<T>(url: string, method: string, body?: unknown): Promise<T> {
  const current = requireSession();
  const response = await fetch(url, {
    method,
    headers: { 'x-auth-token': current.token, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (response.status === 401) {
    session = undefined;
    for (const listener of listeners) listener();
    throw new SessionExpired('Your session has expired: log in again.');
  }
  if (!response.ok) throw await errorOf(response);
  const text = await response.text();
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

/** Trove's API of the session's project: `/instances`, `/flavors`, … */
export function trove<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  return call<T>(`/v1.0/${encodeURIComponent(requireSession().projectId)}${path}`, method, body);
}

/** Coffer's identity service: `/auth/projects`, `/projects`, … */
export function identity<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  return call<T>(`/identity/v3${path}`, method, body);
}
