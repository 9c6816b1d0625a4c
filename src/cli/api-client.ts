import { ApiError, CliError } from './cli-error.js';

export interface ApiClientOptions {
  /** Requests go to `baseUrl + path` (the catalog's database endpoint, or the identity root). */
  baseUrl: string;
  /** The URL the user logged in to, named in error messages. */
  serverUrl: string;
  token?: string;
  /** Per request; a hung server must not hang the command. */
  timeoutMs?: number;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A thin JSON-over-HTTP client for Coffer's Trove and Keystone APIs, mapping failures to CliErrors. */
export class ApiClient {
  private readonly baseUrl: string;

  constructor(private readonly options: ApiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
  }

  get serverUrl(): string {
    return this.options.serverUrl;
  }

  async get<T>(path: string): Promise<T> {
    return (await this.request('GET', path)).body as T;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return (await this.request('POST', path, body)).body as T;
  }

  /** `body[key]` of a GET, e.g. the `instance` of `{"instance": {...}}`; a CliError if it is missing. */
  async getMember<T>(path: string, key: string): Promise<T> {
    return this.member<T>('GET', path, key, await this.get<unknown>(path));
  }

  async postMember<T>(path: string, key: string, body: unknown): Promise<T> {
    return this.member<T>('POST', path, key, await this.post<unknown>(path, body));
  }

  private member<T>(method: HttpMethod, path: string, key: string, body: unknown): T {
    const value = isRecord(body) ? body[key] : undefined;
    if (value === undefined || value === null) {
      throw new CliError(`Coffer answered ${method} ${path} without "${key}".`, 'Is --url the Coffer API?');
    }
    return value as T;
  }

  async delete(path: string): Promise<void> {
    await this.request('DELETE', path);
  }

  async request(
    method: HttpMethod,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse> {
    const allHeaders: Record<string, string> = { Accept: 'application/json', ...headers };
    if (this.options.token !== undefined) allHeaders['X-Auth-Token'] = this.options.token;
    // Trove ignores a body sent without this header, so set it exactly when there is one.
    if (body !== undefined) allHeaders['Content-Type'] = 'application/json';
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: allHeaders,
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (err) {
      throw this.networkError(err, timeoutMs);
    }
    const parsed = parseJson(text);
    if (response.status >= 400) {
      const message = troveMessage(parsed) ?? `Coffer answered ${response.status} ${response.statusText}.`;
      throw new ApiError(response.status, message, this.hintFor(response.status));
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }

  private hintFor(status: number): string | undefined {
    if (status === 401) return `Run \`coffer login --url ${this.options.serverUrl}\` to sign in again.`;
    // 501 is an answer, not a failure: the feature is missing, and the command says what instead.
    if (status >= 500 && status !== 501) return "Coffer failed on its side; the server's log has the details.";
    return undefined;
  }

  private networkError(err: unknown, timeoutMs: number): CliError {
    const url = this.options.serverUrl;
    if (err instanceof Error && err.name === 'TimeoutError') {
      return new CliError(
        `Coffer at ${url} did not answer within ${Math.round(timeoutMs / 1000)} s.`,
        'Check that `coffer serve` is healthy and try again.',
      );
    }
    const reason = socketReason(err);
    return new CliError(
      `Cannot reach Coffer at ${url}: is \`coffer serve\` running?${reason === undefined ? '' : ` (${reason})`}`,
    );
  }
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Trove and Keystone both wrap errors as `{"<faultName>": {"code", "message"}}`. */
function troveMessage(body: unknown): string | undefined {
  if (!isRecord(body)) return undefined;
  const firstKey = Object.keys(body)[0];
  const inner = firstKey === undefined ? undefined : body[firstKey];
  if (isRecord(inner) && typeof inner.message === 'string') return inner.message;
  return typeof body.message === 'string' ? body.message : undefined;
}

/**
 * fetch says only "fetch failed"; the socket's reason (ECONNREFUSED, ENOTFOUND, "bad port"...)
 * is in `cause`, sometimes nested.
 */
function socketReason(err: unknown): string | undefined {
  let current: unknown = err instanceof Error ? err.cause : undefined;
  let message: string | undefined;
  for (let depth = 0; depth < 4 && current instanceof Error; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    message ??= current.message;
    current = current.cause;
  }
  return message;
}
