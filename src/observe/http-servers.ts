// The daemon's two HTTP servers, laid out as kube-proxy's: the proxy health server
// (--healthz-bind-address: /healthz, /livez) and the metrics server (--metrics-bind-address:
// /metrics, /proxyMode and the /healthz ping of cmd/kube-proxy/app/server.go's mux).
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { parseBindAddress } from './bind-address.js';
import { closeServer, listen } from './listen.js';
import { hostPort } from '../model/types.js';
import type { ProbeCounter, ProxyMetrics } from './metrics.js';
import type { HealthResult, ProxyHealth } from './proxy-health.js';
import { errorMessage } from '../model/error-text.js';

export interface RunningServer {
  /** The bound "host:port", e.g. "127.0.0.1:10249", "[::1]:10249", "[::]:10256" for ":10256". */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A server that could not start, naming the flag so the operator knows what to change. */
export class BindError extends Error {
  override readonly name = 'BindError';

  constructor(
    readonly flag: string,
    readonly address: string,
    /** The errno code, e.g. EADDRINUSE, EACCES, EADDRNOTAVAIL. */
    readonly code: string | undefined,
    cause: unknown,
  ) {
    super(`--${flag} ${address}: cannot listen: ${describe(code, cause)}; ${advice(flag, code)}`, { cause });
  }
}

export interface HealthzServerOptions {
  /** Counts answers in kubeproxy_proxy_healthz_total / _livez_total (pass the ProxyMetrics). */
  readonly probes?: ProbeCounter;
}

/** Serves /healthz and /livez on --healthz-bind-address; undefined when the address is "". */
export async function startHealthzServer(
  bindAddress: string,
  health: ProxyHealth,
  opts: HealthzServerOptions = {},
): Promise<RunningServer | undefined> {
  const probe = (name: 'healthz' | 'livez', r: HealthResult, res: ServerResponse): void => {
    opts.probes?.countProbe(name, r.status);
    res.writeHead(r.status, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
    res.end(JSON.stringify(r.body));
  };
  return start('healthz-bind-address', bindAddress, (req, res) => {
    switch (pathOf(req)) {
      case '/healthz':
        return probe('healthz', health.health(), res);
      case '/livez':
        return probe('livez', health.liveness(), res);
      default:
        return notFound(res);
    }
  });
}

/** An answer of a route the daemon adds to the metrics server (/status, /diff, /ui). */
export interface RouteResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type RouteHandler = (url: URL) => Promise<RouteResponse>;

export interface MetricsServerOptions {
  /** What /proxyMode answers; kube-proxy prints its mode. */
  readonly proxyMode?: string;
  /** More paths beside kube-proxy's, by exact path. */
  readonly routes?: ReadonlyMap<string, RouteHandler>;
}

/** Serves /metrics, /proxyMode and /healthz on --metrics-bind-address; undefined when "". */
export async function startMetricsServer(
  bindAddress: string,
  metrics: ProxyMetrics,
  opts: MetricsServerOptions = {},
): Promise<RunningServer | undefined> {
  const mode = opts.proxyMode ?? 'ipvs';
  return start('metrics-bind-address', bindAddress, (req, res) => {
    const path = pathOf(req);
    switch (path) {
      case '/metrics':
        metrics.metrics().then(
          (text) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(text),
          (e: unknown) => res.writeHead(500, textHeaders()).end(`error gathering metrics: ${errorMessage(e)}\n`),
        );
        return;
      case '/proxyMode':
        res.writeHead(200, textHeaders()).end(mode);
        return;
      case '/healthz':
      case '/healthz/ping':
        // k8s.io/apiserver's healthz with only the ping check, as kube-proxy installs it.
        res.writeHead(200, textHeaders());
        res.end(path === '/healthz' && hasQuery(req, 'verbose') ? '[+]ping ok\nhealthz check passed\n' : 'ok');
        return;
      default: {
        const route = opts.routes?.get(path);
        if (!route) return notFound(res);
        route(new URL(req.url ?? '/', 'http://localhost')).then(
          (r) => res.writeHead(r.status, r.headers).end(r.body),
          (e: unknown) => res.writeHead(500, textHeaders()).end(`${path}: ${errorMessage(e)}\n`),
        );
      }
    }
  });
}

async function start(
  flag: string,
  bindAddress: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<RunningServer | undefined> {
  const target = parseBindAddress(flag, bindAddress);
  if (!target) return undefined;
  const server: Server = createServer(handler);
  let port: number;
  try {
    port = await listen(server, target);
  } catch (e) {
    throw new BindError(flag, bindAddress, errnoCode(e), e);
  }
  const bound = server.address();
  return {
    address: hostPort(typeof bound === 'object' && bound !== null ? bound.address : (target.host ?? '::'), port),
    port,
    close: () => closeServer(server),
  };
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function hasQuery(req: IncomingMessage, key: string): boolean {
  return new URL(req.url ?? '/', 'http://x').searchParams.has(key);
}

function textHeaders(): Record<string, string> {
  return { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' };
}

// Go's ServeMux answer for an unknown path.
function notFound(res: ServerResponse): void {
  res.writeHead(404, textHeaders()).end('404 page not found\n');
}

function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') return e.code;
  return undefined;
}

function describe(code: string | undefined, cause: unknown): string {
  switch (code) {
    case 'EADDRINUSE':
      return 'address already in use';
    case 'EACCES':
      return 'permission denied';
    case 'EADDRNOTAVAIL':
      return 'address not available on this host';
    default:
      return errorMessage(cause);
  }
}

function advice(flag: string, code: string | undefined): string {
  const change = `choose another address with --${flag}, or set --${flag}="" to disable this server`;
  switch (code) {
    case 'EADDRINUSE':
      return `another process (perhaps kube-proxy) holds the port; stop it or ${change}`;
    case 'EACCES':
      return `ports below 1024 need root or CAP_NET_BIND_SERVICE; grant it or ${change}`;
    case 'EADDRNOTAVAIL':
      return `the IP is not assigned to any interface here; use a local IP (or 0.0.0.0) or ${change}`;
    default:
      return change;
  }
}
