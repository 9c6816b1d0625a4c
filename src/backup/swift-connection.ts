import { CofferError } from '../common/index.js';
import { endpointOf, storageFailed, storageRefusedCredentials, storageUnreachable } from './storage-errors.js';
import { timedFetch, type TimedResponse } from './timed-fetch.js';

// One Swift account: authentication and requests. With tempauth (v1) credentials it asks the
// auth URL for a token and the account's storage URL, and asks again when a token is refused (it
// expired); with a token and storage URL given (e.g. issued by Keystone) it uses them as they are.

export type SwiftCredentials =
  | { authUrl: string; user: string; key: string }
  | { storageUrl: string; token: string };

export interface SwiftRequest {
  method: string;
  /** a container, or a container and an object name (`/` kept), under the storage URL */
  path: readonly string[];
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer;
  signal?: AbortSignal;
  /** what the request does, for error messages: "store backup object x" */
  what: string;
}

interface Session {
  storageUrl: string;
  token: string;
}

export class SwiftConnection {
  // private fields stay out of util.inspect: a logged adapter shows no key or token
  readonly #credentials: SwiftCredentials;
  #session: Session | undefined;
  private authenticating: Promise<Session> | undefined;
  /** what error messages name: the storage's scheme, host and port */
  readonly endpoint: string;

  constructor(
    credentials: SwiftCredentials,
    private readonly idleTimeoutMs: number,
  ) {
    this.#credentials = credentials;
    if ('token' in credentials) {
      this.#session = { storageUrl: credentials.storageUrl.replace(/\/+$/, ''), token: credentials.token };
      this.endpoint = endpointOf(credentials.storageUrl);
    } else {
      this.endpoint = endpointOf(credentials.authUrl);
    }
  }

  /** The account's URL, once known (always with a given token; after the first request with tempauth). */
  get storageUrl(): string | undefined {
    return this.#session?.storageUrl;
  }

  /**
   * Sends a request and answers its response whatever the status, except that a refused token is
   * renewed once (tempauth) and that 401 and 403 become Unauthorized and 5xx
   * BackupStorageUnavailable; unreachable storage rejects with BackupStorageUnavailable.
   */
  async request(request: SwiftRequest): Promise<TimedResponse> {
    let session = await this.authenticate(request.signal);
    let reply = await this.send(session, request);
    if (reply.response.status === 401 && 'authUrl' in this.#credentials) {
      await reply.discard();
      if (this.#session === session) this.#session = undefined;
      session = await this.authenticate(request.signal);
      reply = await this.send(session, request);
    }
    const status = reply.response.status;
    if (status === 401 || status === 403) {
      await reply.discard();
      throw storageRefusedCredentials(this.endpoint, request.what);
    }
    if (status >= 500) {
      const text = await reply.text().catch(() => '');
      throw storageFailed(this.endpoint, request.what, status, text === '' ? undefined : new Error(text.slice(0, 500)));
    }
    return reply;
  }

  private async send(session: Session, request: SwiftRequest): Promise<TimedResponse> {
    const path = request.path.map((part) => part.split('/').map(encodeURIComponent).join('/')).join('/');
    const query = request.query === undefined ? '' : `?${new URLSearchParams(request.query).toString()}`;
    try {
      return await timedFetch(
        `${session.storageUrl}/${path}${query}`,
        {
          method: request.method,
          headers: { 'x-auth-token': session.token, ...request.headers },
          ...(request.body === undefined ? {} : { body: request.body }),
          ...(request.signal === undefined ? {} : { signal: request.signal }),
        },
        this.idleTimeoutMs,
      );
    } catch (err) {
      throw this.sendFailure(err, request.signal);
    }
  }

  private sendFailure(err: unknown, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return signal.reason;
    return err instanceof CofferError ? err : storageUnreachable(this.endpoint, err);
  }

  private authenticate(signal: AbortSignal | undefined): Promise<Session> {
    if (this.#session !== undefined) return Promise.resolve(this.#session);
    if ('token' in this.#credentials) throw new Error('unreachable: a given token has a session');
    // concurrent requests share one authentication
    this.authenticating ??= this.tempauth(this.#credentials, signal).finally(() => {
      this.authenticating = undefined;
    });
    return this.authenticating;
  }

  private async tempauth(credentials: { authUrl: string; user: string; key: string }, signal: AbortSignal | undefined): Promise<Session> {
    let reply: TimedResponse;
    try {
      reply = await timedFetch(
        credentials.authUrl,
        {
          method: 'GET',
          headers: { 'x-auth-user': credentials.user, 'x-auth-key': credentials.key },
          ...(signal === undefined ? {} : { signal }),
        },
        this.idleTimeoutMs,
      );
    } catch (err) {
      throw this.sendFailure(err, signal);
    }
    await reply.discard();
    const { status, headers } = reply.response;
    if (status === 401 || status === 403) throw storageRefusedCredentials(this.endpoint, `authenticate user ${credentials.user}`);
    const storageUrl = headers.get('x-storage-url');
    const token = headers.get('x-auth-token');
    if (status >= 300 || storageUrl === null || token === null) {
      throw storageFailed(this.endpoint, `authenticate user ${credentials.user} (no storage URL and token in the answer)`, status);
    }
    this.#session = { storageUrl: storageUrl.replace(/\/+$/, ''), token };
    return this.#session;
  }
}
