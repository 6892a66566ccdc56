// `kube-ipvs run`: programs the node's kernel from manifests. With --once it syncs once and exits
// (0 on success; 1 listing the failed operations); with --cleanup (or the historical
// --cleanup-ipvs) it removes everything kube-ipvs owns instead.
import { cpus, hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import type { FlagSpec } from '../config/load.js';
import { loadConfig } from '../config/load.js';
import { loadManifests } from '../cluster/manifests.js';
import { formatProblem } from '../cluster/problems.js';
import { ClusterTracker } from '../cluster/tracker.js';
import { parseDuration } from '../config/duration.js';
import { kernelRelease } from '../dataplane/netif/real.js';
import { openRealDataplane } from '../dataplane/real-dataplane.js';
import type { Logger } from '../observe/log.js';
import { createLogger } from '../observe/log.js';
import { cleanupDataplane } from '../sync/cleanup.js';
import { realClock } from '../sync/clock.js';
import { DEFAULT_DRAIN_TIMEOUT_MS, Proxier } from '../sync/proxier.js';
import type { SyncReport } from '../sync/report.js';
import { UsageError } from './errors.js';

export const RUN_FLAGS: readonly FlagSpec[] = [
  { name: 'manifests', kind: 'repeatable', valueName: 'path', help: 'YAML/JSON file or directory of Services, EndpointSlices and Nodes (repeatable).' },
  { name: 'once', kind: 'bool', help: 'Sync once and exit: 0 when every operation succeeded, 1 listing the failed ones.' },
  { name: 'drain-timeout', kind: 'string', default: '15m', valueName: 'duration', help: 'Longest time a removed TCP real server drains at weight 0 before it is deleted anyway.' },
];

export const RUN_USAGE = 'Usage: kube-ipvs run --manifests PATH... [--once] [--cleanup] [kube-proxy flags]';

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

  const drainText = loaded.extra.get('drain-timeout') as string;
  const drainMs = parseDuration(drainText);
  if (drainMs === undefined) throw new UsageError(`invalid value ${JSON.stringify(drainText)} for --drain-timeout: expected a duration such as 15m or 90s`);
  const paths = loaded.extra.get('manifests') as readonly string[];
  if (paths.length === 0) throw new UsageError('--manifests is required: give a file or directory of Services and EndpointSlices (the Kubernetes API source is not available in this build)');
  if (loaded.extra.get('once') !== true) throw new UsageError('only --once is available in this build: add --once to sync once and exit');

  const objects = loadManifests(paths);
  const tracker = new ClusterTracker(config.hostnameOverride, (p) => log.warn(formatProblem(p)));
  for (const s of objects.services) tracker.upsertService(s);
  for (const s of objects.endpointSlices) tracker.upsertEndpointSlice(s);
  const nodeObj = objects.nodes.find((n) => n.metadata?.name === config.hostnameOverride);

  const dp = await openRealDataplane();
  try {
    const randomFully = await Promise.all(dp.iptables.map((b) => b.supportsRandomFully())).then((r) => r.every(Boolean));
    const proxier = new Proxier({
      config,
      dataplane: dp,
      tracker,
      clock: realClock,
      nodeObject: () => nodeObj,
      kernelVersion: await kernelRelease(),
      cpuCount: cpus().length,
      randomFully,
      drainTimeoutMs: drainMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    });
    const r = await proxier.sync({ full: true });
    const vs = r.state.families.reduce((n, f) => n + f.virtualServers.size, 0);
    log.info(r.ok ? 'synced' : 'sync failed', {
      node: config.hostnameOverride,
      families: r.state.families.map((f) => f.family).join(','),
      services: tracker.allServiceKeys().length,
      virtualServers: vs,
      ms: Math.round(r.durationMs),
      changes: r.report.summary() || 'none',
      iptables: dp.iptablesVariant,
    });
    printFailures(r.report, log);
    return r.ok ? 0 : 1;
  } finally {
    dp.close();
  }
}
