// NodeInfo for the planner from the Node object (labels, podCIDRs, addresses) and the addresses
// the node really has (given with --node-ip, or read from its interfaces by the dataplane).
import type { V1Node } from '@kubernetes/client-node';
import { canonicalCidr, canonicalIp, ipFamilyOf, isLinkLocal, isLoopback, parseIp } from '../model/ip.js';
import type { IpFamily, NodeInfo } from '../model/types.js';
import { IP_FAMILIES } from '../model/types.js';
import { arrayOf, isRecord, stringMap } from './shape.js';

/**
 * A Node with only its well-formed fields, of the types the v1 schema gives them (a manifest's Node
 * is not validated): name, labels, deletionTimestamp, podCIDR(s), taints and addresses. Wrong-typed
 * fields and list items read as absent.
 */
export function nodeView(raw: unknown): V1Node {
  const r = isRecord(raw) ? raw : {};
  const md = isRecord(r.metadata) ? r.metadata : {};
  const spec = isRecord(r.spec) ? r.spec : {};
  const status = isRecord(r.status) ? r.status : {};
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const deletion = str(md.deletionTimestamp);
  const podCIDR = str(spec.podCIDR);
  return {
    metadata: {
      ...(str(md.name) !== undefined ? { name: str(md.name) } : {}),
      labels: stringMap(md.labels),
      ...(deletion ? { deletionTimestamp: deletion as unknown as Date } : {}),
    },
    spec: {
      ...(podCIDR !== undefined ? { podCIDR } : {}),
      podCIDRs: arrayOf(spec.podCIDRs).filter((c): c is string => typeof c === 'string'),
      taints: arrayOf(spec.taints).flatMap((t) => (isRecord(t) && typeof t.key === 'string' && typeof t.effect === 'string' ? [{ key: t.key, effect: t.effect, ...(typeof t.value === 'string' ? { value: t.value } : {}) }] : [])),
    },
    status: {
      addresses: arrayOf(status.addresses).flatMap((a) => (isRecord(a) && typeof a.type === 'string' && typeof a.address === 'string' ? [{ type: a.type, address: a.address }] : [])),
    },
  };
}

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

/**
 * kube-proxy's raw node IPs (`pkg/util/node/node.go` GetNodeHostIPs, v1.36.3): the first
 * InternalIP, else ExternalIP, and after it the first address of the other family, if any.
 */
export function nodeHostIPs(node: V1Node | undefined): string[] {
  const all = nodeStatusAddresses(node);
  const first = all[0];
  if (first === undefined) return [];
  const other = all.find((a) => ipFamilyOf(a) !== ipFamilyOf(first));
  return other === undefined ? [first] : [first, other];
}

const LOOPBACK: Readonly<Record<IpFamily, string>> = { IPv4: '127.0.0.1', IPv6: '::1' };

export interface NodeInfoInput {
  readonly name: string;
  readonly node: V1Node | undefined;
  /** Every address on the node's interfaces except kube-ipvs0 (NodePort addresses come from these). */
  readonly addresses: readonly string[];
  /**
   * The families this host can proxy (kube-proxy: iptables works for the family, and for IPv6 the
   * kernel has it enabled). The node's addresses do not matter.
   */
  readonly families: readonly IpFamily[];
  /**
   * Node IPs to use instead of the Node object's (`plan --node-ip`, or the interfaces' addresses in
   * manifest mode without a Node); the first usable address of each family counts. kube-proxy has
   * no such input: it reads only the Node.
   */
  readonly nodeIPs?: readonly string[];
  /** Overrides the node IP of its family and makes that family primary (kube-proxy's --bind-address). */
  readonly bindAddress?: string;
  readonly kernelVersion?: string;
}

/**
 * The node as kube-proxy sees it (`cmd/kube-proxy/app/server.go` detectNodeIPs, v1.36.3): the first
 * node IP decides the primary family (IPv4 when there is none), a non-wildcard --bind-address
 * overrides the primary family and its IP, and a family without a node IP gets the loopback address.
 */
export function buildNodeInfo(input: NodeInfoInput): NodeInfo {
  const raw = input.nodeIPs !== undefined ? firstOfEachFamily(input.nodeIPs) : nodeHostIPs(input.node);
  let primaryFamily: IpFamily = 'IPv4';
  const primaryIPs: Record<IpFamily, string> = { ...LOOPBACK };
  const first = raw[0];
  if (first !== undefined) {
    primaryFamily = ipFamilyOf(first) ?? 'IPv4';
    for (const ip of raw) {
      const f = ipFamilyOf(ip);
      if (f) primaryIPs[f] = ip;
    }
  }
  const bind = input.bindAddress ? canonicalIp(input.bindAddress) : undefined;
  if (bind && bind !== '0.0.0.0' && bind !== '::') {
    primaryFamily = ipFamilyOf(bind) ?? primaryFamily;
    primaryIPs[primaryFamily] = bind;
  }
  return {
    name: input.name,
    labels: input.node?.metadata?.labels ?? {},
    addresses: input.addresses,
    primaryFamily,
    primaryIPs,
    families: IP_FAMILIES.filter((f) => input.families.includes(f)),
    kernelVersion: input.kernelVersion,
  };
}

/** The first usable address of each family, in order: as GetNodeHostIPs picks from a Node. */
function firstOfEachFamily(addresses: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of addresses) {
    const p = parseIp(a);
    // Loopback and link-local addresses never serve as the node's IP.
    if (!p || isLoopback(p) || isLinkLocal(p) || out.some((o) => ipFamilyOf(o) === p.family)) continue;
    out.push(canonicalIp(a) ?? a);
  }
  return out;
}
