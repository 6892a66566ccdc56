// One watch request: GET <path>?watch=true..., read as one JSON event per line until the server
// ends it (its timeout), the connection fails, or we abort. `done` is called exactly once: with
// nothing for a normal end or an abort, with an ApiError otherwise (HTTP status, or 0 when the
// server could not be reached or the stream broke).
import { request as httpRequest } from 'node:http';
import type { RequestOptions } from 'node:https';
import { request as httpsRequest } from 'node:https';
import type { ApiConnection } from './connection.js';
import { displayUrl } from './kubeconfig.js';
import { ApiError, scrubberFor, USER_AGENT } from './rest.js';
import { redactPatterns } from '../../observe/redact.js';
import { errorMessage } from '../../model/error-text.js';

export interface WatchEvent {
  readonly type: string;
  readonly object: unknown;
}

export interface WatchHandle {
  abort(): void;
}

/** No byte for this long past the server-side timeout: the connection is presumed dead. */
const STALL_GRACE_MS = 60_000;

export async function watch(
  connection: ApiConnection,
  path: string,
  query: Readonly<Record<string, string>>,
  timeoutSeconds: number,
  onEvent: (e: WatchEvent) => void,
  done: (err?: ApiError) => void,
): Promise<WatchHandle> {
  const url = new URL(connection.server + path);
  for (const [k, v] of Object.entries({ ...query, watch: 'true', timeoutSeconds: String(timeoutSeconds) })) url.searchParams.set(k, v);
  let finished = false;
  let aborted = false;
  const live: { req?: ReturnType<typeof httpsRequest> } = {};
  const finish = (err?: ApiError): void => {
    if (finished) return;
    finished = true;
    live.req?.destroy();
    done(aborted ? undefined : err);
  };
  let base: RequestOptions;
  try {
    base = await connection.requestOptions();
  } catch (e) {
    finish(new ApiError(`GET ${url.pathname}: credentials: ${redactPatterns(errorMessage(e))}`, 0, displayUrl(url.origin) + url.pathname, 'Unauthorized'));
    return { abort: () => undefined };
  }
  const opts: RequestOptions = { ...base, method: 'GET', headers: { ...base.headers, Accept: 'application/json', 'User-Agent': USER_AGENT } };
  // An error body may echo our request (a proxy, a broken server): never pass our credential on.
  const scrub = scrubberFor(opts.headers);
  const where = `${displayUrl(url.origin)}${url.pathname}`;
  const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
  const req = send(url, opts, (res) => {
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let st: { message?: string; reason?: string } = {};
        try {
          st = JSON.parse(text) as typeof st;
        } catch {
          // not a Status object
        }
        finish(new ApiError(`GET ${url.pathname} (watch): ${status} ${scrub(st.message ?? text.slice(0, 200))}`, status, where, st.reason ?? `HTTP${status}`));
      });
      return;
    }
    res.setEncoding('utf8');
    let pending = '';
    res.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.trim() === '') continue;
        let event: WatchEvent;
        try {
          event = JSON.parse(line) as WatchEvent;
        } catch {
          continue; // a line we cannot read is skipped, as client-go's decoder would fail it alone
        }
        if (!finished) onEvent(event);
      }
    });
    res.on('end', () => finish());
    res.on('error', (e) => finish(new ApiError(`GET ${url.pathname} (watch): ${scrub(e.message)}`, 0, where, 'ConnectionReset')));
    res.on('close', () => finish(res.complete ? undefined : new ApiError(`GET ${url.pathname} (watch): the connection closed mid-stream`, 0, where, 'ConnectionReset')));
  });
  req.on('socket', (s) => s.setKeepAlive(true, 30_000));
  live.req = req;
  req.setTimeout(timeoutSeconds * 1000 + STALL_GRACE_MS, () => req.destroy(new Error(`no data for ${timeoutSeconds + STALL_GRACE_MS / 1000}s`)));
  req.on('error', (e: NodeJS.ErrnoException) => finish(new ApiError(`GET ${where} (watch): ${e.code ?? ''} ${scrub(e.message)}`.replace(/\s+/g, ' '), 0, where, e.code ?? 'Unreachable')));
  req.end();
  return {
    abort: () => {
      aborted = true;
      finish();
    },
  };
}
