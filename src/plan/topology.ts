// Which endpoints a service port sends traffic to, as kube-proxy's CategorizeEndpoints decides:
// ready endpoints (filtered by topology hints for this node or zone) with a fallback to
// serving-and-terminating ones, and the same again restricted to this node for Local policies.
import type { Endpoint } from '../model/types.js';

export interface PortPolicy {
  readonly internalPolicyLocal: boolean;
  readonly externalPolicyLocal: boolean;
  /** Node port, LB VIP or external IP of the family being planned. */
  readonly externallyAccessible: boolean;
}

export interface CategorizedEndpoints {
  /** Undefined when the port does not use cluster endpoints at all. */
  readonly cluster: readonly Endpoint[] | undefined;
  /** Undefined when the port does not use local endpoints at all. */
  readonly local: readonly Endpoint[] | undefined;
  /** Some usable (ready, or serving and terminating) endpoint exists anywhere. */
  readonly hasAny: boolean;
}

export interface TopologyOptions {
  readonly nodeName: string;
  readonly zone: string | undefined;
  /** The PreferSameTrafficDistribution feature: honour node hints. */
  readonly preferSameNode: boolean;
}

type TopologyMode = '' | 'node' | 'zone';

function topologyMode(endpoints: readonly Endpoint[], o: TopologyOptions): TopologyMode {
  let allNodeHints = true;
  let nodeMatch = false;
  let allZoneHints = true;
  let zoneMatch = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    if (ep.nodeHints.length === 0) allNodeHints = false;
    else if (ep.nodeHints.includes(o.nodeName)) nodeMatch = true;
    if (ep.zoneHints.length === 0) allZoneHints = false;
    else if (o.zone !== undefined && ep.zoneHints.includes(o.zone)) zoneMatch = true;
  }
  if (o.preferSameNode && allNodeHints && nodeMatch) return 'node';
  if (allZoneHints && zoneMatch) return 'zone';
  return '';
}

function inTopology(ep: Endpoint, mode: TopologyMode, o: TopologyOptions): boolean {
  if (mode === 'node') return ep.nodeHints.includes(o.nodeName);
  if (mode === 'zone') return o.zone !== undefined && ep.zoneHints.includes(o.zone);
  return true;
}

export function categorizeEndpoints(endpoints: readonly Endpoint[], policy: PortPolicy, o: TopologyOptions): CategorizedEndpoints {
  const usesCluster = !policy.internalPolicyLocal || policy.externallyAccessible;
  const usesLocal = policy.internalPolicyLocal || (policy.externalPolicyLocal && policy.externallyAccessible);
  let cluster: Endpoint[] | undefined;
  let hasAny = false;
  if (usesCluster) {
    const mode = topologyMode(endpoints, o);
    cluster = endpoints.filter((ep) => ep.ready && inTopology(ep, mode, o));
    if (cluster.length === 0) cluster = endpoints.filter((ep) => ep.serving && ep.terminating);
    if (cluster.length > 0) hasAny = true;
  }
  if (!usesLocal) return { cluster, local: undefined, hasAny };
  let localReady = false;
  let localTerminating = false;
  for (const ep of endpoints) {
    const isLocal = ep.nodeName === o.nodeName;
    if (ep.ready) {
      hasAny = true;
      if (isLocal) localReady = true;
    } else if (ep.serving && ep.terminating) {
      hasAny = true;
      if (isLocal) localTerminating = true;
    }
  }
  let local: Endpoint[] = [];
  if (localReady) local = endpoints.filter((ep) => ep.nodeName === o.nodeName && ep.ready);
  else if (localTerminating) local = endpoints.filter((ep) => ep.nodeName === o.nodeName && ep.serving && ep.terminating);
  return { cluster, local, hasAny };
}
