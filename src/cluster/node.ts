// NodeInfo for the planner from the Node object (labels, podCIDRs, addresses) and the addresses
// the node really has (given with --node-ip, or read from its interfaces by the dataplane).
import type { V1Node } from '@kubernetes/client-node';
import { canonicalCidr, canonicalIp, ipFamilyOf, isLinkLocal, isLoopback, parseIp } from '../model/ip.js';
import type { IpFamily, NodeInfo } from '../model/types.js';
import { IP_FAMILIES } from '../model/types.js';

/** InternalIP then ExternalIP addresses from Node.status, canonical. */
export function nodeStatusAddresses(node: V1Node | undefined): string[] {
  const out: string[] = [];
  for (const type of ['InternalIP', 'ExternalIP']) {
    for (const a of node?.status?.addresses ?? []) {
      if (a?.type !== type || typeof a.address !== 'string') continue;
      const ip = canonicalIp(a.address);
      if (ip && !out.includes(ip)) out.push(ip);
    }
  }
  return out;
}

/** Node.spec.podCIDRs (or podCIDR), canonical, for the NodeCIDR local-traffic detector. */
export function nodePodCIDRs(node: V1Node | undefined): string[] {
  const raw = node?.spec?.podCIDRs?.length ? node.spec.podCIDRs : node?.spec?.podCIDR ? [node.spec.podCIDR] : [];
  return raw.map((c) => canonicalCidr(c)).filter((c): c is string => c !== undefined);
}

export interface NodeInfoInput {
  readonly name: string;
  readonly node: V1Node | undefined;
  /** Every address on the node's interfaces except kube-ipvs0; the first of each family is primary. */
  readonly addresses: readonly string[];
  /** Overrides the primary IP of its family (kube-proxy's --bind-address). */
  readonly bindAddress?: string;
  readonly kernelVersion?: string;
}

export function buildNodeInfo(input: NodeInfoInput): NodeInfo {
  const primaryIPs: Partial<Record<IpFamily, string>> = {};
  for (const a of input.addresses) {
    const p = parseIp(a);
    // Loopback and link-local addresses never serve as the node's IP (no NodePort, no family).
    if (!p || isLoopback(p) || isLinkLocal(p) || primaryIPs[p.family]) continue;
    primaryIPs[p.family] = a;
  }
  const bind = input.bindAddress ? canonicalIp(input.bindAddress) : undefined;
  if (bind && bind !== '0.0.0.0' && bind !== '::') primaryIPs[ipFamilyOf(bind) as IpFamily] = bind;
  const families = IP_FAMILIES.filter((f) => primaryIPs[f] !== undefined);
  return {
    name: input.name,
    labels: input.node?.metadata?.labels ?? {},
    addresses: input.addresses,
    primaryIPs,
    families,
    kernelVersion: input.kernelVersion,
  };
}
