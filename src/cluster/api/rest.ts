// A small JSON client for the few REST calls kube-ipvs makes besides watches: paginated lists
// (raw JSON, as watch events are, so list and watch objects compare equal) and event creation.
// Authentication and TLS come from the ApiConnection.
import { request as httpRequest } from 'node:http';
import type { RequestOptions } from 'node:https';
import { request as httpsRequest } from 'node:https';
import type { ApiConnection } from './connection.js';
import { displayServer, displayUrl } from './kubeconfig.js';
import { UNLIMITED, type RateLimiter } from './rate-limiter.js';
import { REDACTED, redactPatterns } from '../../observe/redact.js';
import { errorMessage } from '../../model/error-text.js';

/** An API call that failed: HTTP status (0 when the server could not be reached) and why. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    message: string,
    readonly statusCode: number,
    readonly url: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

export interface ObjectList<T> {
  readonly items: T[];
  readonly metadata: { readonly resourceVersion: string };
}

interface StatusBody {
  readonly message?: string;
  readonly reason?: string;
}

const PAGE_SIZE = 500;
export const USER_AGENT = 'kube-ipvs';
const REQUEST_TIMEOUT_MS = 60_000;

export class RestClient {
  constructor(
    private readonly connection: ApiConnection,
    /** Shared by every client of the process (--kube-api-qps, --kube-api-burst). */
    private readonly limiter: RateLimiter = UNLIMITED,
    private readonly userAgent = USER_AGENT,
  ) {}

  get server(): string {
    return this.connection.server;
  }

  /** The server for messages (no credentials in it). */
  get displayServer(): string {
    return displayServer(this.connection);
  }

  /** GETs every page of a collection (limit/continue), as one list at the first page's version. */
  async list<T>(path: string, query: Readonly<Record<string, string>> = {}): Promise<ObjectList<T>> {
    const items: T[] = [];
    let resourceVersion = '';
    let cont = '';
    do {
      const q = new URLSearchParams({ ...query, limit: String(PAGE_SIZE), ...(cont ? { continue: cont } : {}) });
      const page = (await this.call('GET', `${path}?${q.toString()}`)) as { items?: T[] | null; metadata?: { resourceVersion?: string; continue?: string } };
      for (const item of page.items ?? []) items.push(item);
      resourceVersion ||= page.metadata?.resourceVersion ?? '';
      cont = page.metadata?.continue ?? '';
    } while (cont !== '');
    return { items, metadata: { resourceVersion } };
  }

  async create<T>(path: string, body: unknown): Promise<T> {
    return (await this.call('POST', path, body)) as T;
  }

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    await this.limiter.acquire();
    const url = new URL(this.server + path);
    const base = await this.connection.requestOptions();
    const opts: RequestOptions = { ...base, method, headers: { ...base.headers, Accept: 'application/json', 'User-Agent': this.userAgent } };
    // An error body may echo our request (a proxy, a broken server): never pass our credential on.
    const scrub = scrubberFor(opts.headers);
    const where = `${displayUrl(url.origin)}${url.pathname}`;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload) opts.headers = { ...opts.headers, 'Content-Type': 'application/json', 'Content-Length': String(payload.length) };
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(new ApiError(`${method} ${url.pathname}: ${scrub(e.message)}`, 0, where, 'ConnectionReset')));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? {} : JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300 && parsed !== undefined) return resolve(parsed);
          const st = (parsed ?? {}) as StatusBody;
          const reason = st.reason ?? (status === 0 ? 'Unknown' : `HTTP${status}`);
          reject(new ApiError(`${method} ${url.pathname}: ${status} ${scrub(st.message ?? text.slice(0, 200))}`, status, where, reason));
        });
      });
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS / 1000}s`)));
      req.on('error', (e: NodeJS.ErrnoException) => reject(new ApiError(`${method} ${where}: ${e.code ?? ''} ${scrub(e.message)}`.replace(/\s+/g, ' '), 0, where, e.code ?? 'Unreachable')));
      if (payload) req.write(payload);
      req.end();
    });
  }
}

/**
 * Masks, in text an API server or proxy sends back (it may echo our request), the credential of
 * the Authorization header we sent and anything credential-shaped.
 */
export function scrubberFor(headers: RequestOptions['headers']): (text: string) => string {
  const sent = credentialOf(headers);
  return (text) => redactPatterns(sent ? text.split(sent).join(REDACTED) : text);
}

/** The credential in an Authorization header we send (without its scheme), if any. */
function credentialOf(headers: RequestOptions['headers']): string | undefined {
  if (headers === undefined || Array.isArray(headers)) return undefined;
  const h = headers as Record<string, unknown>;
  const value = h.Authorization ?? h.authorization;
  if (typeof value !== 'string') return undefined;
  const cred = value.replace(/^\S+\s+/, '').trim();
  return cred.length >= 8 ? cred : undefined;
}

/** A one-line explanation of a failed list/watch for the operator: what failed and what to do. */
export function explainApiError(e: unknown, resource: string, server: string): string {
  if (e instanceof ApiError) {
    if (e.statusCode === 0) return `cannot reach the API server ${server} to list ${resource} (${e.message}); check --kubeconfig/--master and the network`;
    if (e.statusCode === 401) return `the API server ${server} rejected our credentials listing ${resource} (401 Unauthorized); check the kubeconfig's user or the service account token`;
    if (e.statusCode === 403) return `forbidden to list/watch ${resource} at ${server} (403): grant the ServiceAccount the ClusterRole in deploy/kube-ipvs.yaml (list and watch ${resource})`;
    return `listing ${resource} at ${server} failed: ${e.message}`;
  }
  const statusCode = (e as { statusCode?: unknown } | undefined)?.statusCode;
  if (statusCode === 403) return `forbidden to watch ${resource} at ${server} (403): grant the ServiceAccount list and watch on ${resource}`;
  return `watching ${resource} at ${server} failed: ${errorMessage(e)}`;
}
