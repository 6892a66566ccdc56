// `kube-ipvs plan`: the desired kernel state for a cluster described by manifests, printed in the
// real tools' syntax. No kernel access at all: it runs anywhere.
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import type { FlagSpec } from '../config/load.js';
import { loadConfig } from '../config/load.js';
import type { ProxyConfig } from '../config/types.js';
import { loadManifests } from '../cluster/manifests.js';
import { buildNodeInfo, nodePodCIDRs, nodeStatusAddresses } from '../cluster/node.js';
import type { Problem } from '../cluster/problems.js';
import { formatProblem } from '../cluster/problems.js';
import { ClusterTracker } from '../cluster/tracker.js';
import { canonicalIp } from '../model/ip.js';
import type { NodeInfo } from '../model/types.js';
import type { DesiredState } from '../plan/desired.js';
import { planCluster } from '../plan/planner.js';
import type { OutputFormat } from '../plan/render.js';
import { OUTPUT_FORMATS, renderState } from '../plan/render.js';
import { UsageError } from './errors.js';
import { createLogger } from '../observe/log.js';
import { formatLoadWarning, runProcessFlags, type ProcessIo } from './process-flags.js';

export const MANIFEST_FLAGS: readonly FlagSpec[] = [
  { name: 'manifests', kind: 'repeatable', valueName: 'path', help: 'YAML/JSON file or directory of Services, EndpointSlices and Nodes (repeatable).' },
  { name: 'node-ip', kind: 'list', valueName: 'ips', help: "The node's addresses (comma-separated); the first of each family is primary. Default: the Node object's InternalIP/ExternalIP." },
  { name: 'kernel-version', kind: 'string', valueName: 'release', help: 'Kernel release to plan sysctls for (e.g. 5.4.0); default: this machine\'s.' },
];

export const PLAN_FLAGS: readonly FlagSpec[] = [
  ...MANIFEST_FLAGS,
  { name: 'output', short: 'o', kind: 'string', default: 'all', valueName: 'format', help: `What to print: ${OUTPUT_FORMATS.join(', ')}.` },
];

export interface PlanInputs {
  readonly config: ProxyConfig;
  readonly node: NodeInfo;
  readonly extra: ReadonlyMap<string, unknown>;
  readonly state: DesiredState;
  readonly problems: readonly Problem[];
}

/**
 * Loads config and manifests and plans them; shared by `plan` and `trace`. `exit` is set when the
 * command ends before planning: --help (-1), --version or --write-config-to (their exit code).
 */
export function planFromArgs(argv: readonly string[], flags: readonly FlagSpec[], kernelRelease: string, io: ProcessIo): PlanInputs & { exit: number | undefined } {
  const loaded = loadConfig(argv, { extraFlags: flags, hostname: hostname(), readFile: (p) => readFileSync(p, 'utf8') });
  const early = loaded.help ? -1 : runProcessFlags(loaded, io, createLogger(loaded.config.logging.format, io.err));
  if (early !== undefined) return { config: loaded.config, node: undefined as unknown as NodeInfo, extra: loaded.extra, state: undefined as unknown as DesiredState, problems: [], exit: early };
  for (const w of loaded.warnings) io.err(`warning: ${formatLoadWarning(w)}\n`);
  const paths = loaded.extra.get('manifests') as readonly string[];
  if (paths.length === 0) throw new UsageError('--manifests is required: give a file or directory of Services and EndpointSlices');
  const objects = loadManifests(paths);
  const nodeName = loaded.config.hostnameOverride;
  const nodeObj = objects.nodes.find((n) => n.metadata?.name === nodeName);
  const given = (loaded.extra.get('node-ip') as readonly string[]).map((s) => {
    const ip = canonicalIp(s);
    if (!ip) throw new UsageError(`invalid value ${JSON.stringify(s)} for --node-ip: expected IP addresses such as 192.168.0.10,fd00::10`);
    return ip;
  });
  const addresses = given.length > 0 ? given : nodeStatusAddresses(nodeObj);
  if (addresses.length === 0) {
    throw new UsageError(`no address for node ${JSON.stringify(nodeName)}: pass --node-ip, or add a Node named ${nodeName} with status.addresses to the manifests`);
  }
  const config: ProxyConfig = { ...loaded.config, detectLocal: { ...loaded.config.detectLocal, nodeCIDRs: nodePodCIDRs(nodeObj) } };
  const problems: Problem[] = [];
  const tracker = new ClusterTracker(nodeName, (p) => problems.push(p));
  for (const s of objects.services) tracker.upsertService(s);
  for (const s of objects.endpointSlices) tracker.upsertEndpointSlice(s);
  const { snapshot } = tracker.drain();
  const kernelVersion = (loaded.extra.get('kernel-version') as string | undefined) ?? kernelRelease;
  const node = buildNodeInfo({ name: nodeName, node: nodeObj, addresses, bindAddress: config.bindAddress, kernelVersion });
  const state = planCluster(snapshot, { node, config });
  return { config, node, extra: loaded.extra, state, problems, exit: undefined };
}

export function runPlan(argv: readonly string[], io: { out: (s: string) => void; err: (s: string) => void; kernelRelease: string }): number {
  const r = planFromArgs(argv, PLAN_FLAGS, io.kernelRelease, io);
  if (r.exit !== undefined) return r.exit;
  const format = r.extra.get('output') as string;
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`invalid value ${JSON.stringify(format)} for --output: expected one of ${OUTPUT_FORMATS.join(', ')}`);
  }
  for (const p of r.problems) io.err(`warning: ${formatProblem(p)}\n`);
  for (const c of r.state.conflicts) io.err(`warning: virtual server ${c.vsKey} is wanted by ${[c.winner, ...c.losers].join(', ')}; ${c.winner} is used\n`);
  io.out(renderState(r.state, format as OutputFormat));
  return 0;
}
