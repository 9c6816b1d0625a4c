import { CofferError, type Logger } from '../../common/index.js';
import { tokenBodySchema, type TokenBody } from './keystone-schemas.js';

// Coffer's HTTP client to an external Keystone, authenticated as Coffer's service user the way
// keystonemiddleware's auth plugin is: a project-scoped password token, renewed before it
// expires (keystoneauth re-authenticates within 120 s of expiry) and at once when Keystone
// answers 401, after which the call is tried once more. Calls go to the identity endpoint of
// the service token's catalog for the configured interface and region, as keystoneauth picks it;
// the configured URL serves when the catalog has none.

export type KeystoneInterface = 'public' | 'internal' | 'admin';

export interface KeystoneClientOptions {
  /** Keystone's URL, with or without the /v3 suffix */
  url: string;
  username: string;
  password: string;
  userDomainId: string;
  projectName: string;
  projectDomainId: string;
  region: string;
  interface: KeystoneInterface;
  /** per HTTP request to Keystone; default 10 s */
  timeoutMs?: number;
}

export interface KeystoneReply {
  status: number;
  headers: Headers;
  body: unknown;
}

interface ServiceSession {
  token: string;
  /** renewed from then on: 120 s before it expires (keystoneauth's margin), or half-way for short-lived tokens */
  renewAt: number;
  /** where calls go: the catalog's identity endpoint, without /v3 */
  base: string;
}

const renewMarginMs = 120_000;

/** `http://ks:5000/v3/` → `http://ks:5000`: paths below are written with their /v3. */
export function keystoneRoot(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/v3$/, '').replace(/\/+$/, '');
}

export class KeystoneClient {
  private session: Promise<ServiceSession> | undefined;
  private current: ServiceSession | undefined;
  readonly root: string;

  constructor(
    private readonly options: KeystoneClientOptions,
    private readonly logger: Logger,
  ) {
    this.root = keystoneRoot(options.url);
  }

  /** Calls Keystone with the service token in X-Auth-Token; `path` starts with /v3. */
  async call(method: string, path: string, init: { body?: unknown; headers?: Record<string, string> } = {}): Promise<KeystoneReply> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.serviceSession();
      const reply = await this.send(method, `${session.base}${path}`, { ...init.headers, 'x-auth-token': session.token }, init.body);
      // A 401 means the service token itself was refused (expired early, revoked, keys rotated).
      if (reply.status !== 401 || attempt > 0) return reply;
      this.logger.info('Keystone refused the service token; authenticating again');
      this.forget(session);
    }
  }

  /** Authenticates the service user now; throws IdentityUnavailable when Keystone refuses it. */
  async signIn(): Promise<void> {
    await this.serviceSession();
  }

  /** Fails with IdentityUnavailable unless Keystone gave the expected status. */
  async expect(method: string, path: string, status: number, body?: unknown): Promise<unknown> {
    const reply = await this.call(method, path, body === undefined ? {} : { body });
    if (reply.status !== status) throw this.refused(`${method} ${path}`, reply);
    return reply.body;
  }

  refused(what: string, reply: KeystoneReply): CofferError {
    const detail = (reply.body as { error?: { message?: unknown } } | undefined)?.error?.message;
    const hint =
      reply.status === 401 || reply.status === 403
        ? ` Coffer's service user "${this.options.username}" needs the admin role in project "${this.options.projectName}".`
        : '';
    return new CofferError(
      'IdentityUnavailable',
      `Keystone answered ${what} with ${reply.status}${typeof detail === 'string' ? `: ${detail}` : ''}.${hint}`,
    );
  }

  private async serviceSession(): Promise<ServiceSession> {
    const pending = (this.session ??= this.startAuthentication());
    const session = await pending;
    if (session.renewAt > Date.now()) return session;
    // Concurrent callers that find the same stale token share one renewal.
    if (this.session === pending) this.session = this.startAuthentication();
    return this.session;
  }

  private startAuthentication(): Promise<ServiceSession> {
    const pending = this.authenticate();
    pending.then(
      (session) => (this.current = session),
      () => {
        if (this.session === pending) this.session = undefined;
      },
    );
    return pending;
  }

  private forget(session: ServiceSession): void {
    if (this.current === session) {
      this.current = undefined;
      this.session = undefined;
    }
  }

  private async authenticate(): Promise<ServiceSession> {
    const o = this.options;
    const reply = await this.send('POST', `${this.root}/v3/auth/tokens`, {}, {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: o.username, domain: { id: o.userDomainId }, password: o.password } },
        },
        scope: { project: { name: o.projectName, domain: { id: o.projectDomainId } } },
      },
    });
    const token = reply.headers.get('x-subject-token');
    if (reply.status !== 201 || token === null) {
      throw new CofferError(
        'IdentityUnavailable',
        `Keystone at ${this.root} refused Coffer's service user "${o.username}" in project "${o.projectName}" (${reply.status}): check the Keystone user, password and project settings.`,
      );
    }
    const body = tokenBodySchema.parse(reply.body);
    const base = identityEndpoint(body, o.interface, o.region) ?? this.root;
    this.logger.debug({ identity: base }, 'authenticated to Keystone as the service user');
    const now = Date.now();
    const lifetime = Date.parse(body.token.expires_at) - now;
    return { token, renewAt: now + Math.max(lifetime - renewMarginMs, lifetime / 2), base };
  }

  private async send(method: string, url: string, headers: Record<string, string>, body: unknown): Promise<KeystoneReply> {
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw new CofferError('IdentityUnavailable', `Keystone at ${this.root} cannot be reached: ${(err as Error).message}`, { cause: err });
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    if (text !== '' && (response.headers.get('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }
}

/** The catalog's identity endpoint for `iface` in `region`, without /v3. */
function identityEndpoint(body: TokenBody, iface: KeystoneInterface, region: string): string | undefined {
  const identity = body.token.catalog?.find((s) => s.type === 'identity');
  const endpoint = identity?.endpoints.find(
    (e) => e.interface === iface && (e.region_id ?? e.region ?? region) === region,
  );
  return endpoint === undefined ? undefined : keystoneRoot(endpoint.url);
}
