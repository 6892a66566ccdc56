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
import { canonicalIp, isLoopback, parseIp } from '../model/ip.js';
import type { IpFamily, NodeInfo } from '../model/types.js';
import { IP_FAMILIES } from '../model/types.js';
import type { DesiredState } from '../plan/desired.js';
import { planCluster } from '../plan/planner.js';
import type { OutputFormat } from '../plan/render.js';
import { OUTPUT_FORMATS, renderState } from '../plan/render.js';
import { UsageError } from './errors.js';
import { createLogger } from '../observe/log.js';
import { formatLoadWarning, runProcessFlags, type ProcessIo } from './process-flags.js';

export const MANIFEST_FLAGS: readonly FlagSpec[] = [
  { name: 'manifests', kind: 'repeatable', valueName: 'path', help: 'YAML/JSON file or directory of Services, EndpointSlices and Nodes (repeatable).' },
  { name: 'node-ip', kind: 'list', valueName: 'ips', help: "The addresses on the node's interfaces (comma-separated), where NodePorts listen. The node IPs come from the Node object in the manifests, as in run; without one, the first of each family here (the very first decides the primary family). Default: the Node object's InternalIP/ExternalIP." },
  { name: 'ip-families', kind: 'list', valueName: 'families', help: 'The IP families the host can proxy: kube-proxy proxies each family whose iptables works (and IPv6 when the kernel has it enabled), whatever addresses the node has. Default: IPv4,IPv6.' },
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
  /** The cluster the plan was made from (names for trace). */
  readonly tracker: ClusterTracker;
}

/**
 * Loads config and manifests and plans them; shared by `plan` and `trace`. Only `exit` when the
 * command ends before planning: --help (-1), --version or --write-config-to (their exit code).
 */
export function planFromArgs(argv: readonly string[], flags: readonly FlagSpec[], kernelRelease: string, io: ProcessIo): { exit: number } | (PlanInputs & { exit: undefined }) {
  const loaded = loadConfig(argv, { extraFlags: flags, hostname: hostname(), readFile: (p) => readFileSync(p, 'utf8') });
  const early = loaded.help ? -1 : runProcessFlags(loaded, io, createLogger(loaded.config.logging.format, io.err));
  if (early !== undefined) return { exit: early };
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
  const families = parseFamilies(loaded.extra.get('ip-families') as readonly string[]);
  const config: ProxyConfig = { ...loaded.config, detectLocal: { ...loaded.config.detectLocal, nodeCIDRs: nodePodCIDRs(nodeObj) } };
  const problems: Problem[] = [];
  const tracker = new ClusterTracker(nodeName, (p) => problems.push(p));
  for (const s of objects.services) tracker.upsertService(s);
  for (const s of objects.endpointSlices) tracker.upsertEndpointSlice(s);
  const { snapshot } = tracker.drain();
  const kernelVersion = (loaded.extra.get('kernel-version') as string | undefined) ?? kernelRelease;
  // As `run` does: the Node object's addresses are the node IPs; without a Node, the interfaces'.
  const node = buildNodeInfo({ name: nodeName, node: nodeObj, addresses, families, ...(nodeObj === undefined ? { nodeIPs: addresses } : {}), bindAddress: config.bindAddress, kernelVersion });
  const state = planCluster(snapshot, { node, config });
  return { config, node, extra: loaded.extra, state, problems, tracker, exit: undefined };
}

function parseFamilies(given: readonly string[]): IpFamily[] {
  if (given.length === 0) return [...IP_FAMILIES];
  return given.map((g) => {
    const f = IP_FAMILIES.find((x) => x.toLowerCase() === g.toLowerCase());
    if (!f) throw new UsageError(`invalid value ${JSON.stringify(g)} for --ip-families: expected IPv4, IPv6 or IPv4,IPv6`);
    return f;
  });
}

/** One line naming the planned families and node IPs, as kube-proxy logs its stack at start-up. */
export function describeFamilies(node: NodeInfo): string {
  const parts = node.families.map((f) => {
    const ip = node.primaryIPs[f];
    const parsed = parseIp(ip);
    const loop = parsed && isLoopback(parsed) ? ' (the node has no address of this family: loopback, as kube-proxy assumes)' : '';
    return `${f}${f === node.primaryFamily ? ' (primary)' : ''} with node IP ${ip}${loop}`;
  });
  const missing = IP_FAMILIES.filter((f) => !node.families.includes(f));
  const stack = node.families.length > 1 ? 'dual-stack' : 'single-stack';
  return `planning ${stack}: ${parts.join('; ')}${missing.length > 0 ? `; not ${missing.join(', ')}` : ''}`;
}

export function runPlan(argv: readonly string[], io: { out: (s: string) => void; err: (s: string) => void; kernelRelease: string }): number {
  const r = planFromArgs(argv, PLAN_FLAGS, io.kernelRelease, io);
  if (r.exit !== undefined) return r.exit;
  const format = r.extra.get('output') as string;
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`invalid value ${JSON.stringify(format)} for --output: expected one of ${OUTPUT_FORMATS.join(', ')}`);
  }
  io.err(`${describeFamilies(r.node)}\n`);
  if (!r.node.families.includes(r.node.primaryFamily)) io.err(`warning: the primary family ${r.node.primaryFamily} is not planned: kube-proxy refuses to start on such a host\n`);
  for (const p of r.problems) io.err(`warning: ${formatProblem(p)}\n`);
  for (const [service, why] of r.state.unplannable) io.err(`warning: service ${service} was not planned (please report this as a bug): ${why}\n`);
  for (const c of r.state.conflicts) io.err(`warning: virtual server ${c.vsKey} is wanted by ${[c.winner, ...c.losers].join(', ')}; ${c.winner} is used\n`);
  io.out(renderState(r.state, format as OutputFormat));
  return 0;
}
