// `kube-ipvs run`: programs the node's kernel from manifests and keeps it in sync as they change.
// With --once it syncs once and exits (0 on success; 1 listing the failed operations); with
// --cleanup (or the historical --cleanup-ipvs) it removes everything kube-ipvs owns instead.
import { cpus, hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import type { FlagSpec } from '../config/load.js';
import { loadConfig } from '../config/load.js';
import type { ClusterTracker } from '../cluster/tracker.js';
import type { EventSink } from '../cluster/api/events.js';
import type { V1Node } from '@kubernetes/client-node';
import type { DaemonSource } from './daemon.js';
import { parseDuration } from '../config/duration.js';
import type { Logger } from '../observe/log.js';
import { processLogger } from '../observe/log.js';
import { Redactor } from '../observe/redact.js';
import type { SourceStatus } from '../observe/status-document.js';
import type { Observability } from './observability.js';
import type { Proxier } from '../sync/proxier.js';
import type { ProxyConfig } from '../config/types.js';
import type { SyncReport } from '../sync/report.js';
import { UsageError } from './errors.js';
import { rateLimiterFor, type RateLimiter } from '../cluster/api/rate-limiter.js';
import { logLoadWarnings, runProcessFlags } from './process-flags.js';
import { versionLine } from '../version.js';
import { errorMessage } from '../model/error-text.js';
import { startFirstServicesPass, type ListingSource } from './first-services.js';

// Modules are imported where they are used (see main.ts): the cluster source's before the rest, so
// that its first lists go out while the daemon's other modules load.
export const RUN_FLAGS: readonly FlagSpec[] = [
  { name: 'manifests', kind: 'repeatable', valueName: 'path', help: 'YAML/JSON file or directory of Services, EndpointSlices and Nodes (repeatable); without it, the Kubernetes API (--kubeconfig, --master or the pod service account).' },
  { name: 'once', kind: 'bool', help: 'Sync once and exit: 0 when every operation succeeded, 1 listing the failed ones.' },
  { name: 'drain-timeout', kind: 'string', default: '15m', valueName: 'duration', help: 'Longest time a removed TCP real server drains at weight 0 before it is deleted anyway.' },
  {
    name: 'service-metrics',
    kind: 'bool',
    // A bool flag without a default reads as false when absent: these counters are on unless turned off.
    default: true,
    help: 'Per-Service IPVS counters (kube_ipvs_service_*_total) on /metrics: five series per virtual server, about 1 MB of text per 1,000 Services at each scrape. --service-metrics=false leaves them out.',
  },
];

export const RUN_USAGE = 'Usage: kube-ipvs run [--manifests PATH... | --kubeconfig FILE | --master URL] [--once] [--cleanup] [--logging-format json] [kube-proxy flags]';

/** How long start-up waits for the API server's first lists before giving up. */
const INITIAL_LIST_TIMEOUT_MS = 60_000;

function printFailures(report: SyncReport, log: Logger): void {
  for (const f of report.failures) log.error('operation failed', { subsystem: f.subsystem, op: f.op, object: f.object, error: f.message, stack: f.stack });
}

/** One sync as `run` does it: the proxier's sync, then metrics and health, and one log line (plus one per failed operation). */
export function reportingSync(proxier: Proxier, log: Logger, observability: Observability | undefined): (full: boolean) => Promise<boolean> {
  // Services the planner left out, as last logged: each is named once per new reason.
  let unplannable: ReadonlyMap<string, string> = new Map();
  return async (full) => {
    const r = await proxier.sync({ full });
    observability?.synced(r);
    for (const [service, error] of r.state.unplannable) {
      if (unplannable.get(service) !== error) log.error('service not programmed: kube-ipvs could not plan it (please report this as a bug)', { service, error });
    }
    unplannable = new Map(r.state.unplannable);
    const vs = r.state.families.reduce((n, f) => n + f.virtualServers.size, 0);
    (r.ok ? log.info : log.error)(r.ok ? 'synced' : 'sync failed', {
      full: r.full,
      ms: Math.round(r.durationMs),
      changedServices: r.changedServices,
      firstServicesMs: r.firstServicesMs,
      families: r.state.families.map((f) => f.family).join(','),
      virtualServers: vs,
      changes: r.report.summary() || 'none',
      failures: r.report.failures.length || undefined,
    });
    printFailures(r.report, log);
    return r.ok;
  };
}

export async function runCleanup(log: Logger, excludeCIDRs: readonly string[]): Promise<number> {
  const [{ openCleanupDataplane }, { cleanupDataplane }] = await Promise.all([import('../dataplane/real-dataplane.js'), import('../sync/cleanup.js')]);
  const dp = await openCleanupDataplane();
  // Without ip_vs there are no virtual servers, but rules, sets and kube-ipvs0 may be left over.
  if (!dp.ipvsAvailable) log.warn('IPVS unavailable; cleaning iptables, ipsets and kube-ipvs0 only');
  try {
    const report = await cleanupDataplane(dp, excludeCIDRs);
    printFailures(report, log);
    log.info(report.ok ? 'cleanup done' : 'cleanup incomplete', { removed: report.summary() || 'nothing' });
    return report.ok ? 0 : 1;
  } finally {
    dp.close();
  }
}

/**
 * --init-only: the steps that need full root privileges (kernel settings, IPVS timeouts), then
 * exit, as kube-proxy does for an init container.
 */
async function runInitOnly(log: Logger, config: ProxyConfig): Promise<number> {
  const [{ kernelRelease }, { RealIpvs }, { RealSysctl }, { applySysctls }, { planIpvsTimeouts, planSysctls }, { SyncReport }] = await Promise.all([
    import('../dataplane/netif/real.js'),
    import('../dataplane/ipvs/real.js'),
    import('../dataplane/sysctl/real.js'),
    import('../sync/sysctl-reconciler.js'),
    import('../plan/sysctl.js'),
    import('../sync/report.js'),
  ]);
  const report = new SyncReport();
  const kernel = await kernelRelease();
  const ipvs = new RealIpvs();
  try {
    // Loads ip_vs first: its net.ipv4.vs.* settings do not exist before.
    await ipvs.client.getInfo();
  } catch (e) {
    report.fail({ subsystem: 'ipvs', op: 'load', object: 'ip_vs', message: errorMessage(e) });
  }
  try {
    await applySysctls(new RealSysctl(), planSysctls({ kernelVersion: kernel }, config, cpus().length), report);
    const t = planIpvsTimeouts(config);
    if (report.ok && (t.tcp > 0 || t.tcpFin > 0 || t.udp > 0)) {
      try {
        await ipvs.setTimeouts(t);
      } catch (e) {
        report.fail({ subsystem: 'ipvs', op: 'setTimeouts', object: `${t.tcp} ${t.tcpFin} ${t.udp}`, message: errorMessage(e) });
      }
    }
  } finally {
    ipvs.close();
  }
  printFailures(report, log);
  log.info(report.ok ? 'init done' : 'init incomplete', { kernel, changes: report.summary() || 'none' });
  return report.ok ? 0 : 1;
}

export async function runRun(argv: readonly string[], io: { out: (s: string) => void; err: (s: string) => void }): Promise<number> {
  const loaded = loadConfig(argv, { extraFlags: RUN_FLAGS, hostname: hostname(), readFile: (p) => readFileSync(p, 'utf8') });
  if (loaded.help) {
    io.out(`${RUN_USAGE}\n`);
    return -1;
  }
  const config = loaded.config;
  // Known once a kubeconfig is loaded: its credentials are masked in every line from then on.
  const redactor = new Redactor();
  const log = processLogger(config.logging, redactor.redact);
  logLoadWarnings(loaded, log);
  const early = runProcessFlags(loaded, io, log);
  if (early !== undefined) return early;
  if (config.cleanup) return runCleanup(log, config.ipvs.excludeCIDRs);
  if (config.initOnly) return runInitOnly(log, config);

  const drainText = loaded.extra.get('drain-timeout') as string;
  const drainMs = parseDuration(drainText);
  if (drainMs === undefined) throw new UsageError(`invalid value ${JSON.stringify(drainText)} for --drain-timeout: expected a duration such as 15m or 90s`);
  const paths = loaded.extra.get('manifests') as readonly string[];
  const once = loaded.extra.get('once') === true;

  const [{ ClusterTracker }, { formatProblem }] = await Promise.all([import('../cluster/tracker.js'), import('../cluster/problems.js')]);
  const tracker = new ClusterTracker(config.hostnameOverride, (p) => log.warn(formatProblem(p)));
  // The rest of the daemon loads, the dataplane opens (ip_vs loaded, iptables builds probed) and
  // the modules the first sync needs load, while the API source's first lists are out: none of it
  // writes to the kernel's proxy state.
  let prepared: { readonly syncModules: ReturnType<typeof importSyncModules>; readonly dataplane: Promise<OpenedDataplane> } | undefined;
  const prepare = (): NonNullable<typeof prepared> => {
    if (prepared === undefined) {
      const syncModules = importSyncModules();
      const dataplane = syncModules.then(([{ openRealDataplane }, { kernelRelease }]) => openDataplane(openRealDataplane, kernelRelease));
      // Not awaited: the first sync's own requests find the modules loaded, or wait for them in
      // the kernel as they would have anyway.
      void dataplane.then(({ dp }) => import('./module-preload.js').then(({ preloadKernelModules }) => preloadKernelModules(config, dp, log))).catch(() => undefined);
      // Awaited below only when the source opened; never an unhandled rejection meanwhile.
      dataplane.catch(() => undefined);
      prepared = { syncModules, dataplane };
    }
    return prepared;
  };
  // The source's Node, once there is a source (the proxier reads it at each sync).
  let nodeOf: () => V1Node | undefined = () => undefined;
  let proxierMade: Promise<Proxier> | undefined;
  const proxierOnce = (): Promise<Proxier> => {
    const { syncModules, dataplane } = prepare();
    proxierMade ??= Promise.all([syncModules, dataplane]).then(
      ([[, , { Proxier }, { realClock }], { dp, randomFully, kernelVersion }]) =>
        new Proxier({
          config,
          dataplane: dp,
          tracker,
          clock: realClock,
          nodeObject: () => nodeOf(),
          nodeIPsFromInterfaces: paths.length > 0,
          kernelVersion,
          cpuCount: cpus().length,
          randomFully,
          drainTimeoutMs: drainMs,
        }),
    );
    return proxierMade;
  };
  // From the API: the first-services pass runs as soon as those Services are listed on their own
  // and the dataplane is open, while the whole lists are still out. Those lists go out once the
  // dataplane is open (or failed to open): returned for the source to wait on. Any sooner, and a
  // cluster whose lists decode faster than the dataplane opens (1,000 Services under emulation)
  // has them in first, and the first sync makes the pass instead of it running ahead.
  let firstPass: { settle(): Promise<void> } = { settle: async () => undefined };
  const whileListing = (api: ListingSource): Promise<unknown> => {
    const { dataplane } = prepare();
    nodeOf = () => api.node();
    firstPass = startFirstServicesPass(api, proxierOnce, config.hostnameOverride, log);
    return dataplane;
  };
  const limiter = rateLimiterFor(config.clientConnection.qps, config.clientConnection.burst);
  // Manifests: while they are read and parsed.
  if (paths.length > 0) prepare();
  const opened = paths.length > 0 ? await openManifestSource(paths, config.hostnameOverride, tracker, log) : await openApiSource(config, tracker, log, limiter, redactor, whileListing);
  if (!opened) {
    await firstPass.settle();
    void prepared?.dataplane.then((d) => d.dp.close(), () => undefined);
    return 1;
  }
  nodeOf = opened.node;
  const { syncModules, dataplane } = prepare();
  const [, , , { realClock }, { runDaemon }, { applyOomScoreAdj }] = await syncModules;
  const { dp } = await dataplane.catch((e: unknown) => {
    opened.source.close();
    throw e;
  });
  // The pass's writes end before the first sync's begin; a pass still listing is dropped.
  await firstPass.settle();
  const proxier = await proxierOnce();
  const status = { draining: () => proxier.drainingServers(), drainTimeoutMs: drainMs, clock: realClock, source: opened.status };
  let observability: Observability | undefined;
  if (!once) {
    const { BindHardFail, startObservability } = await import('./observability.js');
    try {
      observability = await startObservability({
        config,
        log,
        dataplane: dp,
        tracker,
        events: opened.events,
        nodeEligible: opened.nodeEligible,
        ownerOf: (k) => proxier.virtualServerOwner(k),
        serviceMetrics: loaded.extra.get('service-metrics') !== false,
        status,
      });
    } catch (e) {
      opened.source.close();
      dp.close();
      if (!(e instanceof BindHardFail)) throw e;
      // --bind-address-hard-fail: kube-proxy exits when its health or metrics server cannot bind.
      log.error(e.message, { hint: 'free the address or change --healthz-bind-address/--metrics-bind-address; without --bind-address-hard-fail kube-ipvs retries every 5 s' });
      return 1;
    }
  }
  const syncOnce = reportingSync(proxier, log, observability);

  log.info('kube-ipvs starting', {
    // As kube-proxy's "Version info" line at start.
    version: versionLine(),
    node: config.hostnameOverride,
    ipFamiliesAvailable: dp.iptables.map((b) => b.family).join(','),
    ipFamiliesSkipped: dp.familiesSkipped.length > 0 ? dp.familiesSkipped.join('; ') : undefined,
    iptables: dp.iptablesVariant,
    ipset: dp.ipsetVariant,
    scheduler: config.ipvs.scheduler,
    syncPeriod: `${config.ipvs.syncPeriodMs / 1000}s`,
    minSyncPeriod: `${config.ipvs.minSyncPeriodMs / 1000}s`,
    ...opened.summary,
    healthz: observability?.healthzAddress,
    metrics: observability?.metricsAddress,
    mode: once ? 'once' : 'daemon',
  });

  if (!once) {
    // As kube-proxy's ProxyServer.Run; the kernel refuses lowering it without CAP_SYS_RESOURCE.
    await applyOomScoreAdj(config.oomScoreAdj).catch((e: unknown) =>
      log.warn('cannot set the OOM score adjustment; the daemon keeps the one it has', { oomScoreAdj: config.oomScoreAdj, error: errorMessage(e) }),
    );
  }

  if (once) {
    opened.source.close();
    try {
      return (await syncOnce(true)) ? 0 : 1;
    } finally {
      dp.close();
    }
  }
  return runDaemon({ log, source: opened.source, sync: syncOnce, nextSyncBy: () => proxier.nextDrainCheckAt(), config, ...(observability ? { observer: observability } : {}), close: () => dp.close() });
}

interface OpenedSource {
  readonly source: DaemonSource;
  readonly node: () => V1Node | undefined;
  /** /healthz's node eligibility, read afresh on each probe. */
  readonly nodeEligible: () => boolean;
  readonly events: EventSink;
  readonly summary: Readonly<Record<string, string | number>>;
  /** Where objects come from and whether that works right now (/status). */
  readonly status: () => SourceStatus;
}

/** Without an API server, failures a user must fix go to the log only. */
function logEvents(log: Logger): EventSink {
  return { warn: (t, reason, message) => log.warn(message, { service: `${t.namespace}/${t.name}`, reason }) };
}

async function openManifestSource(paths: readonly string[], nodeName: string, tracker: ClusterTracker, log: Logger): Promise<OpenedSource | undefined> {
  const [{ ManifestSource }, { nodeEligibility }] = await Promise.all([import('../cluster/manifest-source.js'), import('../observe/proxy-health.js')]);
  const manifests = new ManifestSource(paths, tracker);
  const first = manifests.reload();
  if (!first.ok) {
    log.error('cannot read the manifests', { error: first.error });
    return undefined;
  }
  let unreadable: string | undefined;
  const reloadAndLog = (why: string): boolean => {
    const r = manifests.reload();
    unreadable = r.ok ? undefined : r.error;
    if (!r.ok) log.error('manifests not reloaded; keeping the previous objects', { why, error: r.error });
    else if (r.changed > 0) log.info('manifests changed', { why, objects: r.changed, services: r.services, endpointSlices: r.endpointSlices });
    return r.ok && r.changed > 0;
  };
  return {
    source: {
      start: (onChange) =>
        manifests.watch(() => {
          if (reloadAndLog('file change')) onChange();
        }),
      // A periodic resync also re-reads the files in case a watch event was missed.
      beforeResync: () => void reloadAndLog('resync'),
      hangup: () => void reloadAndLog('SIGHUP'),
      close: () => manifests.close(),
    },
    node: () => manifests.node(nodeName),
    nodeEligible: nodeEligibility(() => manifests.node(nodeName), { required: false }),
    status: () => ({ kind: 'manifests', target: paths.join(','), connected: unreadable === undefined, failing: unreadable === undefined ? [] : [unreadable] }),
    events: logEvents(log),
    summary: { source: 'manifests', manifests: paths.join(','), services: first.services, endpointSlices: first.endpointSlices },
  };
}

type SyncModules = Awaited<ReturnType<typeof importSyncModules>>;

interface OpenedDataplane {
  readonly dp: Awaited<ReturnType<SyncModules[0]['openRealDataplane']>>;
  readonly randomFully: boolean;
  readonly kernelVersion: string;
}

/** The kernel's dataplane with what the planner needs to know of the host; closed again if a probe fails. */
async function openDataplane(open: SyncModules[0]['openRealDataplane'], kernelRelease: SyncModules[1]['kernelRelease']): Promise<OpenedDataplane> {
  const dp = await open();
  try {
    const randomFully = await Promise.all(dp.iptables.map((b) => b.supportsRandomFully())).then((r) => r.every(Boolean));
    return { dp, randomFully, kernelVersion: await kernelRelease() };
  } catch (e) {
    dp.close();
    throw e;
  }
}

function importSyncModules() {
  return Promise.all([import('../dataplane/real-dataplane.js'), import('../dataplane/netif/real.js'), import('../sync/proxier.js'), import('../model/clock.js'), import('./daemon.js'), import('../dataplane/oom.js')]);
}

/** `whileListing` runs as the source starts; the whole lists go out once what it returns settles. */
async function openApiSource(config: ProxyConfig, tracker: ClusterTracker, log: Logger, limiter: RateLimiter, redactor: Redactor, whileListing: (api: ListingSource) => Promise<unknown>): Promise<OpenedSource | undefined> {
  const [{ loadKubeConfig, credentialsOf, displayServer }, { ApiSource }, { nodeEligibility }] = await Promise.all([
    import('../cluster/api/kubeconfig.js'),
    import('../cluster/api-source.js'),
    import('../observe/proxy-health.js'),
  ]);
  const connection = loadKubeConfig({ kubeconfig: config.kubeconfig, master: config.master });
  redactor.add(...credentialsOf(connection));
  let notify: () => void = () => undefined;
  const api = new ApiSource({ connection, tracker, nodeName: config.hostnameOverride, log, onChange: () => notify(), limiter });
  api.start(whileListing(api));
  try {
    await api.waitForInitialSync(INITIAL_LIST_TIMEOUT_MS);
  } catch (e) {
    log.error(errorMessage(e));
    api.close();
    return undefined;
  }
  if (!api.node()) log.warn('this node has no Node object; topology hints and NodeCIDR detection are off until it appears', { node: config.hostnameOverride });
  const pending = tracker.pending;
  const [{ EventRecorder }, { RestClient }] = await Promise.all([import('../cluster/api/events.js'), import('../cluster/api/rest.js')]);
  return {
    source: {
      start: (onChange) => {
        notify = onChange;
      },
      beforeResync: () => undefined,
      hangup: () => undefined,
      close: () => api.close(),
    },
    node: () => api.node(),
    nodeEligible: nodeEligibility(() => api.node(), { required: true }),
    status: () => {
      const failing = api.failingResources();
      return { kind: 'api', target: displayServer(connection), connected: failing.length === 0, failing };
    },
    events: new EventRecorder(new RestClient(connection, limiter), config.hostnameOverride, log),
    summary: { source: 'api', server: displayServer(connection), services: pending.services, endpointSlices: pending.endpoints },
  };
}
