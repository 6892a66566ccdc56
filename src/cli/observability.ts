// The daemon's observability, wired to the sync loop: /healthz and /livez (kube-proxy's rules),
// /metrics and /proxyMode, health-check node ports for externalTrafficPolicy: Local services,
// and Events when one cannot bind. Bind failures of the healthz/metrics servers are logged and
// retried, as kube-proxy does, rather than stopping the proxy.
import type { EventSink } from '../cluster/api/events.js';
import type { ClusterTracker } from '../cluster/tracker.js';
import type { ProxyConfig } from '../config/types.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { IpFamily, ServiceKey } from '../model/types.js';
import { vsKey } from '../model/kernel.js';
import type { RunningServer } from '../observe/http-servers.js';
import { startHealthzServer, startMetricsServer } from '../observe/http-servers.js';
import type { Logger } from '../observe/log.js';
import type { ServiceStat } from '../observe/metrics.js';
import { ProxyMetrics } from '../observe/metrics.js';
import { ProxyHealth } from '../observe/proxy-health.js';
import { ServiceHealthServers } from '../observe/service-health.js';
import { realClock } from '../model/clock.js';
import type { SyncOutcome } from '../sync/proxier.js';
import type { DaemonObserver } from './daemon.js';
import type { Clock } from '../model/clock.js';
import type { Draining } from '../sync/ipvs-reconciler.js';
import type { DesiredState } from '../plan/desired.js';
import type { RouteHandler } from '../observe/http-servers.js';
import type { SourceStatus } from '../observe/status-document.js';
import { SyncHistory } from '../observe/sync-history.js';
import { statusRoutes } from './status-routes.js';
import { errorMessage } from '../model/error-text.js';

const BIND_RETRY_MS = 5000;

/** A health or metrics server could not bind and --bind-address-hard-fail is set. */
export class BindHardFail extends Error {
  override readonly name = 'BindHardFail';
}

export interface ObservabilityInput {
  readonly config: ProxyConfig;
  readonly log: Logger;
  readonly dataplane: Dataplane;
  readonly tracker: ClusterTracker;
  readonly events: EventSink;
  /** Whether this node may take traffic, asked on every /healthz (nodeEligibility over the source's Node). */
  readonly nodeEligible: () => boolean;
  /** Which service port owns a virtual server, for per-service IPVS counters. */
  readonly ownerOf: (vsKeyText: string) => string | undefined;
  /** --service-metrics: the per-service IPVS counters on /metrics (default true). */
  readonly serviceMetrics?: boolean;
  /** What /status, /diff and /ui need beyond the metrics; without it they answer 404. */
  readonly status?: StatusHooks;
}

/** The proxier's and the source's parts of /status. */
export interface StatusHooks {
  readonly draining: () => readonly Draining[];
  readonly drainTimeoutMs: number;
  /** The proxier's clock (drain records are stamped with it). */
  readonly clock: Clock;
  readonly source: () => SourceStatus;
}

export interface Observability extends DaemonObserver {
  synced(outcome: SyncOutcome): void;
  readonly healthzAddress: string | undefined;
  readonly metricsAddress: string | undefined;
}

/** "ns/name:port/PROTO" → its parts (the port name may be empty). */
export function parseServicePortKey(key: string): { namespace: string; service: string; port: string; protocol: string } | undefined {
  const m = /^([^/]+)\/([^/:]+)(?::([^/]*))?\/([A-Z]+)$/.exec(key);
  if (!m) return undefined;
  return { namespace: m[1] as string, service: m[2] as string, port: m[3] ?? '', protocol: m[4] as string };
}

/** kube-proxy's count for health checks: distinct ready local endpoints over all ports. */
export function localReadyEndpoints(tracker: ClusterTracker, services: Iterable<ServiceKey>, nodeName: string): Map<string, number> {
  const endpoints = tracker.current().endpoints;
  const out = new Map<string, number>();
  for (const key of services) {
    const seen = new Set<string>();
    for (const list of endpoints.get(key)?.byPort.values() ?? []) {
      for (const ep of list) if (ep.ready && ep.nodeName === nodeName) seen.add(`${ep.ip}:${ep.port}`);
    }
    out.set(key, seen.size);
  }
  return out;
}

/** Starts a server, and when its address is taken retries in the background until it binds. */
class RetryingServer {
  server: RunningServer | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly what: string,
    private readonly start: () => Promise<RunningServer | undefined>,
    private readonly log: Logger,
    private readonly hardFail: boolean,
  ) {}

  async open(): Promise<void> {
    try {
      this.server = await this.start();
    } catch (e) {
      if (this.hardFail) throw new BindHardFail(`${this.what} server failed: ${errorMessage(e)}`);
      this.log.error(errorMessage(e), { retryIn: `${BIND_RETRY_MS / 1000}s` });
      this.timer = setTimeout(() => void this.retry(), BIND_RETRY_MS);
    }
  }

  private async retry(): Promise<void> {
    try {
      const s = await this.start();
      if (this.closed) return void (await s?.close());
      this.server = s;
      this.log.info(`${this.what} server listening`, { address: s?.address });
    } catch {
      if (!this.closed) this.timer = setTimeout(() => void this.retry(), BIND_RETRY_MS);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.server?.close();
  }
}

export async function startObservability(o: ObservabilityInput): Promise<Observability> {
  const families: IpFamily[] = o.dataplane.iptables.map((b) => b.family);
  const health = new ProxyHealth({ clock: realClock, syncPeriodMs: o.config.ipvs.syncPeriodMs, families, nodeEligible: o.nodeEligible });
  const serviceCounters = o.serviceMetrics !== false;
  const metrics = new ProxyMetrics({ families, serviceCounters, onStatsError: (e) => o.log.warn('IPVS counters unavailable for this scrape', { error: errorMessage(e) }) });
  if (serviceCounters) metrics.setServiceStatsSource(async () => {
    const stats: ServiceStat[] = [];
    for (const vs of await o.dataplane.ipvs.listServices()) {
      if (vs.fwmark) continue;
      const owner = o.ownerOf(vsKey(vs));
      const parts = owner === undefined ? undefined : parseServicePortKey(owner);
      if (!parts) continue;
      const s = vs.stats;
      stats.push({ ...parts, address: vs.address, connections: s.conns, packetsIn: s.inpkts, packetsOut: s.outpkts, bytesIn: s.inbytes, bytesOut: s.outbytes });
    }
    return stats;
  });
  const serviceHealth = new ServiceHealthServers({
    proxyHealthy: () => health.isHealthy(),
    logger: o.log,
    onBindError: (service, port, error) => {
      const [namespace = '', name = ''] = service.split('/');
      o.events.warn({ namespace, name }, 'FailedToStartServiceHealthcheck', `node ${o.config.hostnameOverride} failed to start healthcheck on port ${port}: ${error.message}`);
    },
  });
  const history = new SyncHistory();
  let latestState: DesiredState | undefined;
  const routes: ReadonlyMap<string, RouteHandler> = o.status
    ? statusRoutes({
        config: o.config,
        dataplane: o.dataplane,
        tracker: o.tracker,
        history,
        families,
        state: () => latestState,
        ownerOf: o.ownerOf,
        draining: o.status.draining,
        drainTimeoutMs: o.status.drainTimeoutMs,
        clock: o.status.clock,
        healthy: () => health.isHealthy(),
        eligible: () => health.isNodeEligible(),
        source: o.status.source,
      })
    : new Map();
  const hardFail = o.config.bindAddressHardFail;
  const healthz = new RetryingServer('healthz', () => startHealthzServer(o.config.healthzBindAddress, health, { probes: metrics }), o.log, hardFail);
  const metricsServer = new RetryingServer('metrics', () => startMetricsServer(o.config.metricsBindAddress, metrics, { routes }), o.log, hardFail);
  const opened = await Promise.allSettled([healthz.open(), metricsServer.open()]);
  const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all([healthz.close(), metricsServer.close(), serviceHealth.close()]);
    throw failed.reason;
  }
  // kube-proxy marks every family updated when its sync loop starts.
  health.updated();

  return {
    healthzAddress: healthz.server?.address,
    metricsAddress: metricsServer.server?.address,
    queued(): void {
      health.queuedUpdate();
      metrics.queued(Date.now());
      metrics.setPending(o.tracker.pending);
    },
    syncThrew(): void {
      metrics.syncError('sync');
    },
    synced(r: SyncOutcome): void {
      metrics.observeSync({ durationS: r.durationMs / 1000, full: r.full, ok: r.ok, at: Date.now() });
      metrics.addChanges({ services: r.serviceChanges, endpoints: r.endpointChanges });
      metrics.setPending(o.tracker.pending);
      const bySubsystem = new Map<string, number>();
      for (const f of r.report.failures) bySubsystem.set(f.subsystem, (bySubsystem.get(f.subsystem) ?? 0) + 1);
      for (const [subsystem, n] of bySubsystem) metrics.syncError(subsystem, n);
      for (const fam of families) {
        if (r.report.failures.some((f) => f.subsystem === 'iptables' && f.op === 'restore' && f.object === fam)) metrics.iptablesRestoreFailed(fam);
      }
      for (const f of r.state.families) metrics.setNoLocalEndpoints({ ...f.noLocalEndpoints, family: f.family });
      for (const [subsystem, n] of r.report.drift) metrics.driftDetected(subsystem, n);
      if (r.report.drift.size > 0) o.log.warn('the kernel had changed behind kube-ipvs\'s back; repaired', Object.fromEntries(r.report.drift));
      latestState = r.state;
      history.record({ at: Date.now(), full: r.full, ok: r.ok, durationMs: r.durationMs, changedServices: r.changedServices, changes: r.report.summary(), failures: r.report.failures, drift: r.report.drift });
      if (!r.ok) return;
      health.updated();
      const now = Date.now();
      for (const t of r.triggerTimes.values()) if (now >= t) metrics.observeNetworkProgramming((now - t) / 1000);
      void serviceHealth.syncServices(r.state.healthCheckNodePorts, r.state.healthCheckAddresses).then(() => {
        serviceHealth.syncEndpoints(localReadyEndpoints(o.tracker, r.state.healthCheckNodePorts.keys(), o.config.hostnameOverride));
      });
    },
    async close(): Promise<void> {
      await Promise.all([healthz.close(), metricsServer.close(), serviceHealth.close()]);
    },
  };
}
