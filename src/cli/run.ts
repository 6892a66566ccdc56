// `kube-ipvs run`: programs the node's kernel from manifests and keeps it in sync as they change.
// With --once it syncs once and exits (0 on success; 1 listing the failed operations); with
// --cleanup (or the historical --cleanup-ipvs) it removes everything kube-ipvs owns instead.
import { cpus, hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import type { FlagSpec } from '../config/load.js';
import { loadConfig } from '../config/load.js';
import { ManifestSource } from '../cluster/manifest-source.js';
import { formatProblem } from '../cluster/problems.js';
import { ClusterTracker } from '../cluster/tracker.js';
import { parseDuration } from '../config/duration.js';
import { kernelRelease } from '../dataplane/netif/real.js';
import { openRealDataplane } from '../dataplane/real-dataplane.js';
import type { Logger } from '../observe/log.js';
import { createLogger } from '../observe/log.js';
import { cleanupDataplane } from '../sync/cleanup.js';
import { realClock } from '../sync/clock.js';
import { BoundedFrequencyRunner } from '../sync/runner.js';
import type { ProxyConfig } from '../config/types.js';
import { Proxier } from '../sync/proxier.js';
import { SyncReport } from '../sync/report.js';
import { applySysctls } from '../sync/sysctl-reconciler.js';
import { planIpvsTimeouts, planSysctls } from '../plan/sysctl.js';
import { RealSysctl } from '../dataplane/sysctl/real.js';
import { RealIpvs } from '../dataplane/ipvs/real.js';
import { UsageError } from './errors.js';

export const RUN_FLAGS: readonly FlagSpec[] = [
  { name: 'manifests', kind: 'repeatable', valueName: 'path', help: 'YAML/JSON file or directory of Services, EndpointSlices and Nodes (repeatable).' },
  { name: 'once', kind: 'bool', help: 'Sync once and exit: 0 when every operation succeeded, 1 listing the failed ones.' },
  { name: 'drain-timeout', kind: 'string', default: '15m', valueName: 'duration', help: 'Longest time a removed TCP real server drains at weight 0 before it is deleted anyway.' },
];

export const RUN_USAGE = 'Usage: kube-ipvs run --manifests PATH... [--once] [--cleanup] [--log-format json] [kube-proxy flags]';

function printFailures(report: SyncReport, log: Logger): void {
  for (const f of report.failures) log.error('operation failed', { subsystem: f.subsystem, op: f.op, object: f.object, error: f.message });
}

export async function runCleanup(log: Logger, excludeCIDRs: readonly string[]): Promise<number> {
  const dp = await openRealDataplane().catch((e: unknown) => {
    // Nothing of IPVS to clean when the module cannot even load (kube-proxy returns quietly too).
    log.warn('IPVS unavailable; cleaning iptables, ipsets and kube-ipvs0 only', { error: e instanceof Error ? e.message : String(e) });
    return undefined;
  });
  if (!dp) return 0;
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
  const report = new SyncReport();
  const kernel = await kernelRelease();
  await applySysctls(new RealSysctl(), planSysctls({ kernelVersion: kernel }, config, cpus().length), report);
  const t = planIpvsTimeouts(config);
  if (t.tcp > 0 || t.tcpFin > 0 || t.udp > 0) {
    const ipvs = new RealIpvs();
    try {
      await ipvs.setTimeouts(t);
    } catch (e) {
      report.fail({ subsystem: 'ipvs', op: 'setTimeouts', object: `${t.tcp} ${t.tcpFin} ${t.udp}`, message: e instanceof Error ? e.message : String(e) });
    } finally {
      ipvs.close();
    }
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
  if (paths.length === 0) throw new UsageError('--manifests is required: give a file or directory of Services and EndpointSlices (the Kubernetes API source is not available in this build)');
  const once = loaded.extra.get('once') === true;

  const tracker = new ClusterTracker(config.hostnameOverride, (p) => log.warn(formatProblem(p)));
  const source = new ManifestSource(paths, tracker);
  const first = source.reload();
  if (!first.ok) {
    log.error('cannot read the manifests', { error: first.error });
    return 1;
  }

  const dp = await openRealDataplane();
  const randomFully = await Promise.all(dp.iptables.map((b) => b.supportsRandomFully())).then((r) => r.every(Boolean));
  const proxier = new Proxier({
    config,
    dataplane: dp,
    tracker,
    clock: realClock,
    nodeObject: () => source.node(config.hostnameOverride),
    kernelVersion: await kernelRelease(),
    cpuCount: cpus().length,
    randomFully,
    drainTimeoutMs: drainMs,
  });
  const syncOnce = async (full: boolean): Promise<boolean> => {
    const r = await proxier.sync({ full });
    const vs = r.state.families.reduce((n, f) => n + f.virtualServers.size, 0);
    (r.ok ? log.info : log.error)(r.ok ? 'synced' : 'sync failed', {
      full: r.full,
      ms: Math.round(r.durationMs),
      changedServices: r.changedServices,
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
    iptables: dp.iptablesVariant,
    scheduler: config.ipvs.scheduler,
    syncPeriod: `${config.ipvs.syncPeriodMs / 1000}s`,
    minSyncPeriod: `${config.ipvs.minSyncPeriodMs / 1000}s`,
    manifests: paths.join(','),
    services: first.services,
    endpointSlices: first.endpointSlices,
    mode: once ? 'once' : 'daemon',
  });

  if (once) {
    try {
      return (await syncOnce(true)) ? 0 : 1;
    } finally {
      dp.close();
    }
  }
  return runDaemon({ log, source, proxier: syncOnce, config, close: () => dp.close() });
}

interface DaemonParts {
  readonly log: Logger;
  readonly source: ManifestSource;
  readonly proxier: (full: boolean) => Promise<boolean>;
  readonly config: ProxyConfig;
  readonly close: () => void;
}

/**
 * The long-running loop: the bounded-frequency runner syncs on changes (no closer than
 * --ipvs-min-sync-period) and fully every --ipvs-sync-period; files are watched, SIGHUP re-reads
 * them, SIGTERM/SIGINT stop after the sync in flight and leave the dataplane in place.
 */
function runDaemon(d: DaemonParts): Promise<number> {
  const runner = new BoundedFrequencyRunner({
    minIntervalMs: d.config.ipvs.minSyncPeriodMs,
    maxIntervalMs: d.config.ipvs.syncPeriodMs,
    // After a failure, retry soon but never faster than the minimum period allows.
    retryIntervalMs: Math.min(d.config.ipvs.syncPeriodMs, Math.max(d.config.ipvs.minSyncPeriodMs, 5000)),
    clock: realClock,
    run: async (reason) => {
      // The periodic run is the full resync that repairs anything changed behind our back; it
      // also re-reads the manifests in case a watch event was missed.
      if (reason === 'periodic') reloadAndLog('resync');
      return d.proxier(reason !== 'requested');
    },
  });
  const reloadAndLog = (why: string): boolean => {
    const r = d.source.reload();
    if (!r.ok) d.log.error('manifests not reloaded; keeping the previous objects', { why, error: r.error });
    else if (r.changed > 0) d.log.info('manifests changed', { why, objects: r.changed, services: r.services, endpointSlices: r.endpointSlices });
    return r.ok && r.changed > 0;
  };
  d.source.watch(() => {
    if (reloadAndLog('file change')) runner.request();
  });
  const onHup = (): void => {
    reloadAndLog('SIGHUP');
    runner.request();
  };
  process.on('SIGHUP', onHup);
  runner.start();
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      d.log.info('stopping; the dataplane stays in place (use kube-ipvs cleanup to remove it)', { signal });
      runner.stop();
      d.source.close();
      process.off('SIGHUP', onHup);
      void runner.settled().then(() => {
        d.close();
        resolve(0);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
