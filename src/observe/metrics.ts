// The /metrics registry: kube-proxy's metrics (pkg/proxy/metrics/metrics.go: names, help, buckets
// and labels as registered for ipvs mode), our own error counters, per-service IPVS counters read
// from the kernel at scrape time, and the Node.js process metrics.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerProcessMetrics } from './process-metrics.js';
import type { IpFamily } from '../model/types.js';

/** One IPVS virtual server's kernel counters, labelled with the service port it belongs to. */
export interface ServiceStat {
  readonly namespace: string;
  readonly service: string;
  /** The service port's name ("" for a single unnamed port). */
  readonly port: string;
  readonly protocol: string;
  /** The virtual server, e.g. "10.96.0.10:53" or "[fd00::a]:53". */
  readonly address: string;
  readonly connections: number;
  readonly packetsIn: number;
  readonly packetsOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export type ServiceStatsSource = () => Promise<readonly ServiceStat[]>;

export interface ProxyMetricsOptions {
  /** The families the daemon proxies; a call without a family records for each of them. */
  readonly families: readonly IpFamily[];
  /** Wall time in epoch ms, for the *_timestamp_seconds gauges when no time is passed. */
  readonly wallClock?: () => number;
  /** The process_* metrics of kube-proxy's Go process collector, and the heap size; on by default. */
  readonly defaultMetrics?: boolean;
  /** A stats source that fails is reported here; the scrape then omits the per-service series. */
  readonly onStatsError?: (error: unknown) => void;
  /**
   * Scrapes within this long of a kernel read of the per-service counters reuse it (default
   * STATS_MAX_AGE_MS): the read is a dump of every virtual server, so scraped every second on a big
   * node it would cost more than the proxying. 0 reads on every scrape.
   */
  readonly statsMaxAgeMs?: number;
  /** Monotonic time in ms for the counters' age (default performance.now). */
  readonly now?: () => number;
  /**
   * The kube_ipvs_service_* families (default true). False leaves them out of every scrape, HELP
   * and TYPE included: five series per virtual server are most of a big node's scrape.
   */
  readonly serviceCounters?: boolean;
}

export const STATS_MAX_AGE_MS = 10_000;

/** Counts /healthz and /livez answers (kubeproxy_proxy_healthz_total / _livez_total). */
export interface ProbeCounter {
  countProbe(probe: 'healthz' | 'livez', code: number): void;
}

// component-base prefixes the help of every ALPHA metric; dashboards show it, so we keep it.
const alpha = (help: string): string => `[ALPHA] ${help}`;

/** prometheus.ExponentialBuckets(0.001, 2, 15): 1ms … 16.384s. */
export const SYNC_DURATION_BUCKETS: readonly number[] = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i);

const linear = (start: number, width: number, count: number): number[] =>
  Array.from({ length: count }, (_, i) => start + width * i);

/** metrics.MergeBuckets(...) for network programming latency; MergeBuckets starts with a 0 bucket. */
export const NETWORK_PROGRAMMING_BUCKETS: readonly number[] = [
  0,
  ...linear(0.25, 0.25, 2),
  ...linear(1, 1, 59),
  ...linear(60, 5, 12),
  ...linear(120, 30, 7),
];

/** The per-service counter families: name, help, and each series' extra label and value. */
const SERVICE_COUNTERS: ReadonlyArray<{ readonly name: string; readonly help: string; readonly series: (s: ServiceStat) => ReadonlyArray<readonly [string, number]> }> = [
  { name: 'kube_ipvs_service_connections_total', help: 'Connections IPVS scheduled to the service port since the virtual server was created', series: (s) => [['', s.connections]] },
  {
    name: 'kube_ipvs_service_packets_total',
    help: 'Packets through the service port since the virtual server was created',
    series: (s) => [
      ['direction="in"', s.packetsIn],
      ['direction="out"', s.packetsOut],
    ],
  },
  {
    name: 'kube_ipvs_service_bytes_total',
    help: 'Bytes through the service port since the virtual server was created',
    series: (s) => [
      ['direction="in"', s.bytesIn],
      ['direction="out"', s.bytesOut],
    ],
  },
];

/** A label value in the text format: backslash, double quote and line feed escaped. */
function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The per-service families in the Prometheus text format (HELP and TYPE even with no series). */
export function renderServiceCounters(stats: readonly ServiceStat[]): string {
  const base = stats.map((s) => `namespace="${labelValue(s.namespace)}",service="${labelValue(s.service)}",port="${labelValue(s.port)}",protocol="${labelValue(s.protocol)}",address="${labelValue(s.address)}"`);
  const out: string[] = [];
  for (const c of SERVICE_COUNTERS) {
    out.push(`# HELP ${c.name} ${c.help}`, `# TYPE ${c.name} counter`);
    // The kernel's counters only grow; the max guards the text against a negative from a bad read.
    stats.forEach((s, i) => {
      for (const [extra, v] of c.series(s)) out.push(`${c.name}{${base[i]}${extra ? `,${extra}` : ''}} ${Math.max(0, v)}`);
    });
  }
  return `${out.join('\n')}\n`;
}

export class ProxyMetrics implements ProbeCounter {
  readonly registry = new Registry();
  private readonly wallClock: () => number;
  private statsSource: ServiceStatsSource | undefined;
  // One kernel read at a time, shared by scrapes that overlap.
  private statsInFlight: Promise<readonly ServiceStat[] | undefined> | undefined;
  private statsCache: { readonly at: number; readonly stats: readonly ServiceStat[] } | undefined;
  /** The per-service families as last rendered, and the counters they were rendered from. */
  private serviceText: { readonly stats: readonly ServiceStat[] | undefined; readonly text: string } | undefined;

  private readonly syncDuration: Histogram<'ip_family'>;
  private readonly syncFullDuration: Histogram<'ip_family'>;
  private readonly syncPartialDuration: Histogram<'ip_family'>;
  private readonly lastTimestamp: Gauge<'ip_family'>;
  private readonly lastQueuedTimestamp: Gauge<'ip_family'>;
  private readonly networkProgramming: Histogram<'ip_family'>;
  private readonly endpointChangesPending: Gauge;
  private readonly endpointChangesTotal: Counter;
  private readonly serviceChangesPending: Gauge;
  private readonly serviceChangesTotal: Counter;
  private readonly restoreFailures: Counter<'ip_family'>;
  private readonly noLocalEndpoints: Gauge<'traffic_policy' | 'ip_family'>;
  private readonly healthzTotal: Counter<'code'>;
  private readonly livezTotal: Counter<'code'>;
  private readonly syncErrors: Counter<'subsystem'>;
  private readonly drift: Counter<'subsystem'>;

  constructor(private readonly options: ProxyMetricsOptions) {
    this.wallClock = options.wallClock ?? Date.now;
    const registers = [this.registry];
    const family = ['ip_family'] as const;

    this.syncDuration = new Histogram({
      name: 'kubeproxy_sync_proxy_rules_duration_seconds',
      help: alpha('SyncProxyRules latency in seconds'),
      buckets: [...SYNC_DURATION_BUCKETS],
      labelNames: family,
      registers,
    });
    // kube-proxy registers these two for iptables/nftables only; our sync has both kinds, so we keep them.
    this.syncFullDuration = new Histogram({
      name: 'kubeproxy_sync_full_proxy_rules_duration_seconds',
      help: alpha('SyncProxyRules latency in seconds for full resyncs'),
      buckets: [...SYNC_DURATION_BUCKETS],
      labelNames: family,
      registers,
    });
    this.syncPartialDuration = new Histogram({
      name: 'kubeproxy_sync_partial_proxy_rules_duration_seconds',
      help: alpha('SyncProxyRules latency in seconds for partial resyncs'),
      buckets: [...SYNC_DURATION_BUCKETS],
      labelNames: family,
      registers,
    });
    this.lastTimestamp = new Gauge({
      name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
      help: alpha('The last time proxy rules were successfully synced'),
      labelNames: family,
      registers,
    });
    this.lastQueuedTimestamp = new Gauge({
      name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
      help: alpha('The last time a sync of proxy rules was queued'),
      labelNames: family,
      registers,
    });
    this.networkProgramming = new Histogram({
      name: 'kubeproxy_network_programming_duration_seconds',
      help: alpha('In Cluster Network Programming Latency in seconds'),
      buckets: [...NETWORK_PROGRAMMING_BUCKETS],
      labelNames: family,
      registers,
    });
    this.endpointChangesPending = new Gauge({
      name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending',
      help: alpha('Pending proxy rules Endpoint changes'),
      registers,
    });
    this.endpointChangesTotal = new Counter({
      name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total',
      help: alpha('Cumulative proxy rules Endpoint changes'),
      registers,
    });
    this.serviceChangesPending = new Gauge({
      name: 'kubeproxy_sync_proxy_rules_service_changes_pending',
      help: alpha('Pending proxy rules Service changes'),
      registers,
    });
    this.serviceChangesTotal = new Counter({
      name: 'kubeproxy_sync_proxy_rules_service_changes_total',
      help: alpha('Cumulative proxy rules Service changes'),
      registers,
    });
    this.restoreFailures = new Counter({
      name: 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
      help: alpha('Cumulative proxy iptables restore failures'),
      labelNames: family,
      registers,
    });
    this.noLocalEndpoints = new Gauge({
      name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
      help: alpha('Number of services with a Local traffic policy and no endpoints'),
      labelNames: ['traffic_policy', 'ip_family'] as const,
      registers,
    });
    this.healthzTotal = new Counter({
      name: 'kubeproxy_proxy_healthz_total',
      help: alpha('Cumulative proxy healthz HTTP status'),
      labelNames: ['code'] as const,
      registers,
    });
    this.livezTotal = new Counter({
      name: 'kubeproxy_proxy_livez_total',
      help: alpha('Cumulative proxy livez HTTP status'),
      labelNames: ['code'] as const,
      registers,
    });
    this.syncErrors = new Counter({
      name: 'kube_ipvs_sync_errors_total',
      help: 'Failed dataplane operations during syncs, by subsystem (sync: an unexpected exception, logged with its stack)',
      labelNames: ['subsystem'] as const,
      registers,
    });
    this.drift = new Counter({
      name: 'kube_ipvs_drift_detected_total',
      help: 'Kernel objects a full resync found changed behind kube-ipvs\'s back (and repaired), by subsystem',
      labelNames: ['subsystem'] as const,
      registers,
    });
    // Present from the start so rate() and increase() work before the first failure.
    for (const f of options.families) this.restoreFailures.inc({ ip_family: f }, 0);
    for (const subsystem of ['ipvs', 'ipset', 'iptables', 'netif']) this.drift.inc({ subsystem }, 0);
    for (const subsystem of ['ipvs', 'ipset', 'iptables', 'netif', 'sysctl', 'conntrack']) this.syncErrors.inc({ subsystem }, 0);
    // A 503 series born at 1 shows no increase() to Prometheus: start both answers at 0.
    for (const code of ['200', '503']) {
      this.healthzTotal.inc({ code }, 0);
      this.livezTotal.inc({ code }, 0);
    }

    // Not prom-client's default collectors: their event-loop histogram sampled every 10 ms woke an
    // idle daemon 100 times a second, and a scrape of them cost more than kube-proxy's metrics.
    if (options.defaultMetrics !== false) registerProcessMetrics(this.registry);
  }

  /** Where the per-service IPVS counters come from; called once per scrape. */
  setServiceStatsSource(source: ServiceStatsSource | undefined): void {
    this.statsSource = source;
  }

  /**
   * One sync finished. The duration is always recorded (kube-proxy defers it); the
   * last-synced timestamp only when `ok` (default true), as kube-proxy sets it after a good sync.
   * `at` is epoch ms, default now.
   */
  observeSync(s: { durationS: number; full: boolean; at?: number; ok?: boolean; family?: IpFamily }): void {
    for (const f of this.familiesOf(s.family)) {
      const labels = { ip_family: f };
      this.syncDuration.observe(labels, s.durationS);
      (s.full ? this.syncFullDuration : this.syncPartialDuration).observe(labels, s.durationS);
      if (s.ok !== false) this.lastTimestamp.set(labels, (s.at ?? this.wallClock()) / 1000);
    }
  }

  /** A sync was requested (kube-proxy: on every change, and when the loop starts). `at` is epoch ms. */
  queued(at?: number, family?: IpFamily): void {
    for (const f of this.familiesOf(family)) this.lastQueuedTimestamp.set({ ip_family: f }, (at ?? this.wallClock()) / 1000);
  }

  /** Time from an EndpointSlice's trigger time to its rules being in place. */
  observeNetworkProgramming(seconds: number, family?: IpFamily): void {
    for (const f of this.familiesOf(family)) this.networkProgramming.observe({ ip_family: f }, seconds);
  }

  /** Changes seen by the trackers and not yet synced. */
  setPending(p: { services: number; endpoints: number }): void {
    this.serviceChangesPending.set(p.services);
    this.endpointChangesPending.set(p.endpoints);
  }

  /** Changes seen by the trackers (cumulative). */
  addChanges(c: { services: number; endpoints: number }): void {
    if (c.services > 0) this.serviceChangesTotal.inc(c.services);
    if (c.endpoints > 0) this.endpointChangesTotal.inc(c.endpoints);
  }

  iptablesRestoreFailed(family?: IpFamily): void {
    for (const f of this.familiesOf(family)) this.restoreFailures.inc({ ip_family: f });
  }

  /** A failed dataplane operation; `subsystem` is e.g. ipvs, ipset, iptables, netif, sysctl, conntrack, or sync for an exception. */
  syncError(subsystem: string, count = 1): void {
    this.syncErrors.inc({ subsystem }, count);
  }

  /** Objects a full sync found changed behind our back, in one subsystem. */
  driftDetected(subsystem: string, count: number): void {
    if (count > 0) this.drift.inc({ subsystem }, count);
  }

  /** Services with a Local traffic policy and no local endpoints, per policy, set after each sync. */
  setNoLocalEndpoints(n: { internal: number; external: number; family?: IpFamily }): void {
    for (const f of this.familiesOf(n.family)) {
      this.noLocalEndpoints.set({ traffic_policy: 'internal', ip_family: f }, n.internal);
      this.noLocalEndpoints.set({ traffic_policy: 'external', ip_family: f }, n.external);
    }
  }

  countProbe(probe: 'healthz' | 'livez', code: number): void {
    (probe === 'healthz' ? this.healthzTotal : this.livezTotal).inc({ code: String(code) });
  }

  /** The exposition text for /metrics: the registry's metrics, then the per-service counters. */
  async metrics(): Promise<string> {
    const [registered, perService] = await Promise.all([this.registry.metrics(), this.serviceMetrics()]);
    return registered + perService;
  }

  /**
   * The per-service counter families, written here rather than through the registry: on a big
   * node they are most of a scrape (five series per virtual server), and the text is rendered
   * once per kernel read of the counters, not once per scrape.
   */
  private async serviceMetrics(): Promise<string> {
    if (this.options.serviceCounters === false) return '';
    const stats = await this.fetchStats();
    const last = this.serviceText;
    if (last && last.stats === stats) return last.text;
    const text = renderServiceCounters(stats ?? []);
    this.serviceText = { stats, text };
    return text;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private familiesOf(family: IpFamily | undefined): readonly IpFamily[] {
    return family === undefined ? this.options.families : [family];
  }

  private fetchStats(): Promise<readonly ServiceStat[] | undefined> {
    const source = this.statsSource;
    if (!source) return Promise.resolve(undefined);
    const now = this.options.now ?? (() => performance.now());
    const cached = this.statsCache;
    if (cached && now() - cached.at < (this.options.statsMaxAgeMs ?? STATS_MAX_AGE_MS)) return Promise.resolve(cached.stats);
    this.statsInFlight ??= source()
      .then((stats) => {
        this.statsCache = { at: now(), stats };
        return stats;
      })
      .catch((e: unknown) => {
        this.options.onStatsError?.(e);
        return undefined;
      })
      .finally(() => {
        this.statsInFlight = undefined;
      });
    return this.statsInFlight;
  }
}
