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
import { createLogger } from '../observe/log.js';
import type { ProxyConfig } from '../config/types.js';
import type { SyncReport } from '../sync/report.js';
import { UsageError } from './errors.js';

// Modules are imported where they are used (see main.ts): the cluster source's before the rest, so
// that its first lists go out while the daemon's other modules load.
export const RUN_FLAGS: readonly FlagSpec[] = [
  { name: 'manifests', kind: 'repeatable', valueName: 'path', help: 'YAML/JSON file or directory of Services, EndpointSlices and Nodes (repeatable); without it, the Kubernetes API (--kubeconfig, --master or the pod service account).' },
  { name: 'once', kind: 'bool', help: 'Sync once and exit: 0 when every operation succeeded, 1 listing the failed ones.' },
  { name: 'drain-timeout', kind: 'string', default: '15m', valueName: 'duration', help: 'Longest time a removed TCP real server drains at weight 0 before it is deleted anyway.' },
];

export const RUN_USAGE = 'Usage: kube-ipvs run [--manifests PATH... | --kubeconfig FILE | --master URL] [--once] [--cleanup] [--log-format json] [kube-proxy flags]';

/** How long start-up waits for the API server's first lists before giving up. */
const INITIAL_LIST_TIMEOUT_MS = 60_000;

function printFailures(report: SyncReport, log: Logger): void {
  for (const f of report.failures) log.error('operation failed', { subsystem: f.subsystem, op: f.op, object: f.object, error: f.message });
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
    report.fail({ subsystem: 'ipvs', op: 'load', object: 'ip_vs', message: e instanceof Error ? e.message : String(e) });
  }
  try {
    await applySysctls(new RealSysctl(), planSysctls({ kernelVersion: kernel }, config, cpus().length), report);
    const t = planIpvsTimeouts(config);
    if (report.ok && (t.tcp > 0 || t.tcpFin > 0 || t.udp > 0)) {
      try {
        await ipvs.setTimeouts(t);
      } catch (e) {
        report.fail({ subsystem: 'ipvs', op: 'setTimeouts', object: `${t.tcp} ${t.tcpFin} ${t.udp}`, message: e instanceof Error ? e.message : String(e) });
      }
    }
  } finally {
    ipvs.close();
  }
  printFailures(report, log);
  log.info(report.ok ? 'init done' : 'init incomplete', { kernel, changes: report.summary() || 'none' });
  return report.ok ? 0 : 1;
}

export async function runRun(argv: readonly string[], io: { out: (s: string) => void }): Promise<number> {
  const loaded = loadConfig(argv, { extraFlags: RUN_FLAGS, hostname: hostname(), readFile: (p) => readFileSync(p, 'utf8') });
  if (loaded.help) {
    io.out(`${RUN_USAGE}\n`);
    return -1;
  }
  const config = loaded.config;
  const log = createLogger(config.logFormat);
  for (const f of loaded.ignoredFlags) log.warn('flag ignored because --config is given', { flag: f });
  if (config.cleanup) return runCleanup(log, config.ipvs.excludeCIDRs);
  if (config.initOnly) return runInitOnly(log, config);

  const drainText = loaded.extra.get('drain-timeout') as string;
  const drainMs = parseDuration(drainText);
  if (drainMs === undefined) throw new UsageError(`invalid value ${JSON.stringify(drainText)} for --drain-timeout: expected a duration such as 15m or 90s`);
  const paths = loaded.extra.get('manifests') as readonly string[];
  const once = loaded.extra.get('once') === true;

  const [{ ClusterTracker }, { formatProblem }] = await Promise.all([import('../cluster/tracker.js'), import('../cluster/problems.js')]);
  const tracker = new ClusterTracker(config.hostnameOverride, (p) => log.warn(formatProblem(p)));
  // The rest of the daemon loads while the API source's first lists are out.
  let syncModules: ReturnType<typeof importSyncModules> | undefined;
  const loadSyncModules = (): void => {
    syncModules ??= importSyncModules();
    // Awaited below only when the source opened; never an unhandled rejection meanwhile.
    syncModules.catch(() => undefined);
  };
  const opened = paths.length > 0 ? await openManifestSource(paths, config.hostnameOverride, tracker, log) : await openApiSource(config, tracker, log, loadSyncModules);
  if (!opened) return 1;
  loadSyncModules();
  const [{ openRealDataplane }, { kernelRelease }, { Proxier }, { realClock }, { runDaemon }] = await (syncModules as ReturnType<typeof importSyncModules>);

  const dp = await openRealDataplane().catch((e: unknown) => {
    opened.source.close();
    throw e;
  });
  const randomFully = await Promise.all(dp.iptables.map((b) => b.supportsRandomFully())).then((r) => r.every(Boolean));
  const proxier = new Proxier({
    config,
    dataplane: dp,
    tracker,
    clock: realClock,
    nodeObject: opened.node,
    nodeIPsFromInterfaces: paths.length > 0,
    kernelVersion: await kernelRelease(),
    cpuCount: cpus().length,
    randomFully,
    drainTimeoutMs: drainMs,
  });
  const startObservability = once ? undefined : (await import('./observability.js')).startObservability;
  const observability = !startObservability ? undefined : await startObservability({ config, log, dataplane: dp, tracker, events: opened.events, node: opened.node, ownerOf: (k) => proxier.virtualServerOwner(k) }).catch((e: unknown) => {
    opened.source.close();
    dp.close();
    throw e;
  });
  const syncOnce = async (full: boolean): Promise<boolean> => {
    const r = await proxier.sync({ full });
    observability?.synced(r);
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

  log.info('kube-ipvs starting', {
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
  readonly events: EventSink;
  readonly summary: Readonly<Record<string, string | number>>;
}

/** Without an API server, failures a user must fix go to the log only. */
function logEvents(log: Logger): EventSink {
  return { warn: (t, reason, message) => log.warn(message, { service: `${t.namespace}/${t.name}`, reason }) };
}

async function openManifestSource(paths: readonly string[], nodeName: string, tracker: ClusterTracker, log: Logger): Promise<OpenedSource | undefined> {
  const { ManifestSource } = await import('../cluster/manifest-source.js');
  const manifests = new ManifestSource(paths, tracker);
  const first = manifests.reload();
  if (!first.ok) {
    log.error('cannot read the manifests', { error: first.error });
    return undefined;
  }
  const reloadAndLog = (why: string): boolean => {
    const r = manifests.reload();
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
    events: logEvents(log),
    summary: { source: 'manifests', manifests: paths.join(','), services: first.services, endpointSlices: first.endpointSlices },
  };
}

function importSyncModules() {
  return Promise.all([import('../dataplane/real-dataplane.js'), import('../dataplane/netif/real.js'), import('../sync/proxier.js'), import('../sync/clock.js'), import('./daemon.js')]);
}

/** `whileListing` runs once the first lists are out. */
async function openApiSource(config: ProxyConfig, tracker: ClusterTracker, log: Logger, whileListing: () => void): Promise<OpenedSource | undefined> {
  const [{ loadKubeConfig, serverOf }, { ApiSource }] = await Promise.all([import('../cluster/api/kubeconfig.js'), import('../cluster/api-source.js')]);
  const connection = loadKubeConfig({ kubeconfig: config.kubeconfig, master: config.master });
  let notify: () => void = () => undefined;
  const api = new ApiSource({ connection, tracker, nodeName: config.hostnameOverride, log, onChange: () => notify() });
  api.start();
  whileListing();
  try {
    await api.waitForInitialSync(INITIAL_LIST_TIMEOUT_MS);
  } catch (e) {
    log.error(e instanceof Error ? e.message : String(e));
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
    events: new EventRecorder(new RestClient(connection), config.hostnameOverride, log),
    summary: { source: 'api', server: serverOf(connection), services: pending.services, endpointSlices: pending.endpoints },
  };
}
