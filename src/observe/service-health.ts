// Health-check node ports for externalTrafficPolicy: Local services (kube-proxy's
// pkg/proxy/healthcheck/service_health.go): one HTTP listener per service's healthCheckNodePort,
// answering 200 while the node has a ready local endpoint and the proxy is healthy, else 503, so
// a cloud load balancer only sends traffic to nodes that can serve it locally.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from './log.js';
import { closeServer, listen } from './listen.js';
import { hostPort } from '../model/types.js';

export interface ServiceHealthOptions {
  /** The proxy's own health, without node eligibility (ProxyHealth.isHealthy). */
  readonly proxyHealthy: () => boolean;
  /**
   * Where every port listens until syncServices says otherwise: node IPs matching
   * --nodeport-addresses, or "0.0.0.0" / "::" for a whole family. Absent listens on every
   * address of both families with one socket; empty listens nowhere (kube-proxy's behaviour when
   * no node IP matches).
   */
  readonly addresses?: readonly string[];
  /** A port that could not be opened; it is retried on the next syncServices. */
  readonly onBindError?: (service: string, port: number, error: Error) => void;
  readonly logger?: Logger;
}

/** The body, in kube-proxy's field order. */
export interface ServiceHealthBody {
  readonly service: { readonly namespace: string; readonly name: string };
  readonly localEndpoints: number;
  readonly serviceProxyHealthy: boolean;
}

interface Instance {
  /** The requested port (0 picks a free one, for tests). */
  readonly port: number;
  readonly servers: Server[];
  boundPort: number;
  endpoints: number;
}

export class ServiceHealthServers {
  private readonly services = new Map<string, Instance>();
  // syncServices opens sockets asynchronously; serialising calls keeps the map consistent.
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /** The addresses every open port listens on (undefined: all, with one dual-stack socket). */
  private addresses: readonly string[] | undefined;

  constructor(private readonly options: ServiceHealthOptions) {
    this.addresses = options.addresses;
  }

  /**
   * Makes exactly these services listen ("ns/name" → healthCheckNodePort), on `addresses` when
   * given. Unchanged ones stay open; gone ones and ones whose port changed are closed; new ones
   * (and ones that failed to bind before) are opened; when the addresses change, all reopen. Bind
   * failures go to onBindError; this never rejects because of them.
   */
  syncServices(wanted: ReadonlyMap<string, number>, addresses?: readonly string[]): Promise<void> {
    const run = this.queue.then(() => this.doSyncServices(new Map(wanted), addresses));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Sets the ready local endpoint count per service ("ns/name" → count). Services not listed get
   * 0; counts for services without an open health check are dropped.
   */
  syncEndpoints(counts: ReadonlyMap<string, number>): void {
    for (const [name, inst] of this.services) inst.endpoints = counts.get(name) ?? 0;
  }

  /** Open health checks: "ns/name" → the port actually bound. */
  ports(): ReadonlyMap<string, number> {
    return new Map([...this.services].map(([name, inst]) => [name, inst.boundPort]));
  }

  /** The answer a probe of this service's port gets now (undefined when it has no open port). */
  answer(service: string): { status: 200 | 503; body: ServiceHealthBody } | undefined {
    const inst = this.services.get(service);
    if (!inst) return undefined;
    const healthy = this.options.proxyHealthy();
    const [namespace = '', name = ''] = splitName(service);
    return {
      status: inst.endpoints !== 0 && healthy ? 200 : 503,
      body: { service: { namespace, name }, localEndpoints: inst.endpoints, serviceProxyHealthy: healthy },
    };
  }

  /** Closes every health-check port; later syncServices calls do nothing. */
  close(): Promise<void> {
    const run = this.queue.then(async () => {
      this.closed = true;
      const all = [...this.services.values()];
      this.services.clear();
      await Promise.all(all.flatMap((i) => i.servers.map(closeServer)));
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async doSyncServices(wanted: Map<string, number>, addresses: readonly string[] | undefined): Promise<void> {
    if (this.closed) return;
    const moved = addresses !== undefined && !sameList(addresses, this.addresses);
    if (moved) {
      if (addresses.length > 0) this.options.logger?.info('Health check node ports listen on', { addresses: addresses.join(',') });
      else if (wanted.size > 0) this.options.logger?.warn('no node address matches --nodeport-addresses: health check node ports listen nowhere');
      this.addresses = addresses;
    }
    const closing: Array<Promise<void>> = [];
    for (const [name, inst] of this.services) {
      if (!moved && wanted.get(name) === inst.port) continue;
      this.options.logger?.info('Closing healthcheck', { service: name, port: inst.port });
      this.services.delete(name);
      closing.push(...inst.servers.map(closeServer));
    }
    // A port moving from one service to another must be free before it is opened again.
    await Promise.all(closing);
    await Promise.all(
      [...wanted].filter(([name]) => !this.services.has(name)).map(([name, port]) => this.open(name, port)),
    );
  }

  private async open(name: string, port: number): Promise<void> {
    const hosts = this.addresses ?? [undefined];
    const inst: Instance = { port, servers: [], boundPort: port, endpoints: 0 };
    try {
      for (const host of hosts) {
        const server = createServer((req, res) => this.handle(name, req, res));
        inst.servers.push(server);
        // Every address uses the bound port, so port 0 (tests) still means one port per service.
        // "::" is IPv6 only, as Go's tcp6 listener: "0.0.0.0" may hold the same port for IPv4.
        inst.boundPort = await listen(server, { host, port: inst.servers.length === 1 ? port : inst.boundPort, ipv6Only: host === '::' });
      }
    } catch (e) {
      // Close what did open, so a retry or another service can take the port.
      await Promise.all(inst.servers.map(closeServer));
      const error = e instanceof Error ? e : new Error(String(e));
      this.options.logger?.error('Failed to start healthcheck', { service: name, port, error: error.message });
      this.options.onBindError?.(name, port, error);
      return;
    }
    this.options.logger?.info('Opening healthcheck', {
      service: name,
      port: inst.boundPort,
      addresses: hosts.map((h) => (h === undefined ? '*' : hostPort(h, inst.boundPort))).join(',') || 'none',
    });
    this.services.set(name, inst);
  }

  private handle(name: string, _req: IncomingMessage, res: ServerResponse): void {
    const a = this.answer(name);
    if (!a) {
      // A request racing the port's close. kube-proxy logs and sends an empty 200 here; telling
      // the load balancer "unavailable" is the safer answer for a service we no longer serve.
      res.writeHead(503).end();
      return;
    }
    res.writeHead(a.status, {
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
      // Lets load balancers that support it weight nodes by their local endpoints.
      'X-Load-Balancing-Endpoint-Weight': String(a.body.localEndpoints),
    });
    // Tab-indented like kube-proxy's template, for byte-for-byte identical bodies.
    res.end(JSON.stringify(a.body, null, '\t'));
  }
}

function sameList(a: readonly string[], b: readonly string[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

function splitName(service: string): [string, string] {
  const i = service.indexOf('/');
  return i < 0 ? ['', service] : [service.slice(0, i), service.slice(i + 1)];
}
