// `kube-ipvs diff`: what the next sync would change on this node, as +/- lines in the tools' own
// syntax grouped by owning Service. With the daemon running it asks the daemon (/diff: the kernel
// against the daemon's plan); with --manifests, or --kubeconfig/--master, it plans here and reads
// the kernel itself (root). Exit status as diff(1): 0 no difference, 1 differences, 2 trouble.
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { KubeConfigError } from '../cluster/api/kubeconfig.js';
import { ManifestError } from '../cluster/manifests.js';
import { formatProblem } from '../cluster/problems.js';
import type { FlagSpec } from '../config/load.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { DataplaneError } from '../dataplane/errors.js';
import { openRealDataplane } from '../dataplane/real-dataplane.js';
import { createLogger } from '../observe/log.js';
import { OwnerIndex } from '../plan/owners.js';
import type { DriftReport } from '../sync/drift.js';
import { diffLive, renderDrift } from '../sync/drift.js';
import { observeLive } from '../sync/live.js';
import { daemonBaseUrl, DaemonUnreachable, getDaemonJson } from './daemon-client.js';
import { UsageError } from './errors.js';
import { ClusterListError, loadCluster, planOn } from './local-plan.js';
import type { DaemonDiff } from './node-status.js';

const OUTPUTS = ['text', 'json'] as const;

export const DIFF_USAGE = 'Usage: kube-ipvs diff [--manifests PATH... | --kubeconfig FILE | --master URL] [-o text|json] [--metrics-bind-address ADDRESS] [kube-proxy flags]';

export const DIFF_FLAGS: readonly FlagSpec[] = [
  { name: 'manifests', kind: 'repeatable', valueName: 'path', help: 'Plan from these Services, EndpointSlices and Nodes here instead of asking the running daemon (repeatable).' },
  { name: 'output', short: 'o', kind: 'string', default: 'text', valueName: 'format', help: `What to print: ${OUTPUTS.join(', ')}.` },
  { name: 'timeout', kind: 'string', default: '30s', valueName: 'duration', help: 'How long to wait for the daemon\'s answer.' },
];

export interface DiffIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  /** The node's dataplane (tests pass the in-memory one); the real one by default. */
  readonly openDataplane?: () => Promise<Dataplane & { close(): void }>;
}

export async function runDiff(argv: readonly string[], io: DiffIo): Promise<number> {
  try {
    return await diff(argv, io);
  } catch (e) {
    // Trouble is 2, as for diff(1): 1 must mean "differs" for cron jobs and probes.
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof ManifestError || e instanceof KubeConfigError || e instanceof DataplaneError || e instanceof DaemonUnreachable || e instanceof ClusterListError) {
      io.err(`kube-ipvs: diff: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

async function diff(argv: readonly string[], io: DiffIo): Promise<number> {
  const loaded = loadConfig(argv, { extraFlags: DIFF_FLAGS, hostname: hostname(), readFile: (p) => readFileSync(p, 'utf8') });
  if (loaded.help) return -1;
  if (loaded.positional.length > 0) throw new UsageError(`diff takes no arguments, got ${loaded.positional.join(' ')}`);
  const output = loaded.extra.get('output') as string;
  if (!(OUTPUTS as readonly string[]).includes(output)) throw new UsageError(`invalid value ${JSON.stringify(output)} for --output: expected one of ${OUTPUTS.join(', ')}`);
  const config = loaded.config;
  const manifests = loaded.extra.get('manifests') as readonly string[];
  const fromApi = manifests.length === 0 && (config.kubeconfig !== '' || config.master !== '');

  let report: DriftReport;
  let note = '';
  if (manifests.length > 0 || fromApi) {
    const log = createLogger(config.logging.format, (line) => io.err(line));
    // The cluster first: a forbidden list needs no root to be told.
    const cluster = await loadCluster({ config, manifests, log });
    const dp = await (io.openDataplane ?? openRealDataplane)();
    try {
      const state = await planOn(cluster, config, dp);
      // The objects are validated as they are planned.
      for (const p of cluster.problems) io.err(`warning: ${formatProblem(p)}\n`);
      const live = await observeLive(dp, { sysctlKeys: state.sysctls.map((s) => s.key) });
      report = diffLive(state, live, { owners: OwnerIndex.fromSnapshot(cluster.tracker.current()), excludeCIDRs: config.ipvs.excludeCIDRs });
    } finally {
      dp.close();
    }
  } else {
    const timeoutText = loaded.extra.get('timeout') as string;
    const timeoutMs = parseDuration(timeoutText);
    if (timeoutMs === undefined || timeoutMs <= 0) throw new UsageError(`invalid value ${JSON.stringify(timeoutText)} for --timeout: expected a duration such as 30s`);
    const base = daemonBaseUrl(config.metricsBindAddress);
    let d: DaemonDiff;
    try {
      d = await getDaemonJson<DaemonDiff>(base, '/diff', timeoutMs);
    } catch (e) {
      if (e instanceof DaemonUnreachable) throw new DaemonUnreachable(`${e.message} Without a daemon, give --manifests or --kubeconfig to plan here.`);
      throw e;
    }
    report = d;
    if (d.pending.services + d.pending.endpoints > 0) note = `note: ${d.pending.services} service and ${d.pending.endpoints} endpoint changes are waiting for the daemon's next sync and are not in this diff\n`;
  }
  if (output === 'json') io.out(`${JSON.stringify(report, null, 2)}\n`);
  else io.out(renderDrift(report));
  if (note) io.err(note);
  return report.differs ? 1 : 0;
}
