// The kernel objects one service port contributes to one address family: kube-proxy's per-service
// loop body (ipvs proxier syncProxyRules), as data. Pure: no I/O, no clock.
import type { ProxyConfig } from '../config/types.js';
import { bitmapPortEntry, ipPortEntry, ipPortIpEntry, ipPortNetEntry } from '../model/text/ipset.js';
import { cidrContains, parseCidr } from '../model/ip.js';
import type { ParsedIp } from '../model/ip.js';
import type { RealServer, VirtualServer, VirtualServerSpec } from '../model/kernel.js';
import { VsFlag } from '../model/kernel.js';
import { SetBase } from '../model/names.js';
import type { SetBaseName } from '../model/names.js';
import type { Endpoint, IpFamily, Protocol, ServicePort } from '../model/types.js';
import { outFilterRule } from './rules.js';
import type { TopologyOptions } from './topology.js';
import { categorizeEndpoints } from './topology.js';

/** What the planner knows of one family on this node, shared by every service port. */
export interface FamilyContext {
  readonly family: IpFamily;
  readonly topology: TopologyOptions;
  /** Node addresses of this family (not on kube-ipvs0, no loopback). */
  readonly nodeAddresses: ReadonlySet<string>;
  /** Where NodePort virtual servers go. */
  readonly nodePortIPs: readonly string[];
  /** The node IP that loadBalancerSourceRanges are checked against. */
  readonly primaryIP: ParsedIp | undefined;
  readonly config: Pick<ProxyConfig, 'ipvs' | 'allowServiceExternalIPs'>;
}

export interface OwnedVirtualServer {
  /** Service port key that asked for it (two ports may claim one VS; the planner arbitrates). */
  readonly owner: string;
  readonly spec: VirtualServerSpec;
}

export interface FamilyFragment {
  readonly virtualServers: readonly OwnedVirtualServer[];
  readonly setEntries: ReadonlyArray<readonly [SetBaseName, string]>;
  readonly boundAddresses: readonly string[];
  /** Canonical rule specs for KUBE-IPVS-OUT-FILTER. */
  readonly outFilterRules: readonly string[];
  /** Counted in sync_proxy_rules_no_local_endpoints_total. */
  readonly noLocalInternal: boolean;
  readonly noLocalExternal: boolean;
}

// Endpoints of a port are unique by IP:port already (the slice merge keys them so), and their order
// is deterministic (slices by name, endpoints in slice order); renderers sort for display.
function realServersOf(endpoints: readonly Endpoint[]): RealServer[] {
  return endpoints.map((ep) => ({ address: ep.ip, port: ep.port, weight: 1, forward: 'masq' }));
}

/** Model IPs are canonical text, so the family shows in the separator. */
function sameFamily(family: IpFamily) {
  const v6 = family === 'IPv6';
  return (ip: string): boolean => ip.includes(':') === v6;
}

/**
 * Plans one service port for one family. Returns undefined when the port has no ClusterIP of the
 * family: kube-proxy's per-family proxier ignores such a service entirely.
 */
export function planServicePort(sp: ServicePort, allEndpoints: readonly Endpoint[], ctx: FamilyContext): FamilyFragment | undefined {
  const family = ctx.family;
  const ofFamily = sameFamily(family);
  const clusterIP = sp.clusterIPs.find(ofFamily);
  if (clusterIP === undefined) return undefined;
  const proto: Protocol = sp.protocol;
  // Most services are single-family: skip the copies when nothing would be filtered out.
  const endpoints = allEndpoints.every((ep) => ep.family === family) ? allEndpoints : allEndpoints.filter((ep) => ep.family === family);
  const externalIPs = sp.externalIPs.length === 0 ? sp.externalIPs : sp.externalIPs.filter(ofFamily);
  const lbVIPs = sp.loadBalancerVIPs.length === 0 ? sp.loadBalancerVIPs : sp.loadBalancerVIPs.filter(ofFamily);
  const sourceRanges = familySourceRanges(sp.loadBalancerSourceRanges, family);
  const externallyAccessible = sp.nodePort !== 0 || externalIPs.length > 0 || lbVIPs.length > 0;

  const cat = categorizeEndpoints(
    endpoints,
    { internalPolicyLocal: sp.internalPolicyLocal, externalPolicyLocal: sp.externalPolicyLocal, externallyAccessible },
    ctx.topology,
  );
  let noLocalInternal = false;
  let noLocalExternal = false;
  // kube-proxy's syncEndpoint: a Local policy with no local endpoint falls back to the cluster list
  // (k/k PR 97081) so pods on this node can still reach the service.
  const pick = (onlyLocal: boolean): readonly Endpoint[] => {
    if (!onlyLocal) return cat.cluster ?? [];
    if (cat.local && cat.local.length > 0) return cat.local;
    if (cat.hasAny && sp.internalPolicyLocal) noLocalInternal = true;
    if (cat.hasAny && sp.externalPolicyLocal) noLocalExternal = true;
    return cat.cluster ?? [];
  };
  const internalEps = pick(sp.internalPolicyLocal);
  const internalRS = realServersOf(internalEps);
  let externalRS: RealServer[] = [];
  if (externallyAccessible) {
    const externalEps = pick(sp.externalPolicyLocal);
    // Usually the same list: share one array between the ClusterIP and the external servers.
    externalRS = externalEps === internalEps ? internalRS : realServersOf(externalEps);
  }

  const scheduler = sp.scheduler ?? ctx.config.ipvs.scheduler;
  let flags = sp.schedulerFlags;
  // kube-proxy adds the source-port hash flag for mh; explicit annotation flags replace it.
  if (scheduler === 'mh' && sp.schedulerFlags === 0) flags |= VsFlag.SCHED2;
  if (sp.stickyMaxAgeSeconds > 0) flags |= VsFlag.PERSISTENT;
  const vsAt = (address: string, port: number): VirtualServer => ({
    family,
    protocol: proto,
    address,
    port,
    scheduler,
    flags,
    timeout: sp.stickyMaxAgeSeconds,
  });

  const virtualServers: OwnedVirtualServer[] = [];
  const setEntries: Array<readonly [SetBaseName, string]> = [];
  const boundAddresses: string[] = [];
  const outFilterRules: string[] = [];
  const addVs = (address: string, port: number, realServers: RealServer[]): void => {
    virtualServers.push({ owner: sp.key, spec: { vs: vsAt(address, port), realServers } });
  };

  // Hairpin: every local endpoint, whatever its readiness, may reach itself through the service.
  for (const ep of endpoints) {
    if (ep.nodeName === ctx.topology.nodeName) setEntries.push([SetBase.LOOP_BACK, ipPortIpEntry(ep.ip, proto, ep.port, ep.ip)]);
  }

  setEntries.push([SetBase.CLUSTER_IP, ipPortEntry(clusterIP, proto, sp.port)]);
  addVs(clusterIP, sp.port, internalRS);
  boundAddresses.push(clusterIP);

  // Feature gate AllowServiceExternalIPs=false: kube-proxy's ServicePort.ExternalIPs() is empty, so
  // nothing is programmed for them, though they still make the port externally accessible above.
  for (const ip of ctx.config.allowServiceExternalIPs ? externalIPs : []) {
    setEntries.push([sp.externalPolicyLocal ? SetBase.EXTERNAL_IP_LOCAL : SetBase.EXTERNAL_IP, ipPortEntry(ip, proto, sp.port)]);
    addVs(ip, sp.port, externalRS);
    // An address another interface already holds must not be bound again on kube-ipvs0.
    if (!ctx.nodeAddresses.has(ip)) boundAddresses.push(ip);
  }

  const primary = ctx.primaryIP;
  for (const vip of lbVIPs) {
    const entry = ipPortEntry(vip, proto, sp.port);
    setEntries.push([SetBase.LOAD_BALANCER, entry]);
    if (sp.externalPolicyLocal) setEntries.push([SetBase.LOAD_BALANCER_LOCAL, entry]);
    if (sourceRanges.length > 0) {
      setEntries.push([SetBase.LOAD_BALANCER_FW, entry]);
      let allowFromNode = false;
      for (const cidr of sourceRanges) {
        setEntries.push([SetBase.LOAD_BALANCER_SOURCE_CIDR, ipPortNetEntry(vip, proto, sp.port, cidr)]);
        const parsed = parseCidr(cidr);
        if (parsed && primary && cidrContains(parsed, primary)) allowFromNode = true;
      }
      if (allowFromNode) setEntries.push([SetBase.LOAD_BALANCER_SOURCE_IP, ipPortIpEntry(vip, proto, sp.port, vip)]);
      else outFilterRules.push(outFilterRule(vip, proto, sp.port, family));
    }
    addVs(vip, sp.port, externalRS);
    if (!ctx.nodeAddresses.has(vip)) boundAddresses.push(vip);
  }

  // With no usable node IP, kube-proxy skips the node ports and the health-check port alike.
  if (sp.nodePort !== 0 && ctx.nodePortIPs.length > 0) {
    const local = sp.externalPolicyLocal;
    if (proto === 'SCTP') {
      // A bitmap cannot carry the protocol, so SCTP node ports are ip,port entries per node IP.
      for (const ip of ctx.nodePortIPs) {
        const entry = ipPortEntry(ip, proto, sp.nodePort);
        setEntries.push([SetBase.NODE_PORT_SCTP, entry]);
        if (local) setEntries.push([SetBase.NODE_PORT_LOCAL_SCTP, entry]);
      }
    } else {
      const entry = bitmapPortEntry(sp.nodePort);
      setEntries.push([proto === 'TCP' ? SetBase.NODE_PORT_TCP : SetBase.NODE_PORT_UDP, entry]);
      if (local) setEntries.push([proto === 'TCP' ? SetBase.NODE_PORT_LOCAL_TCP : SetBase.NODE_PORT_LOCAL_UDP, entry]);
    }
    for (const ip of ctx.nodePortIPs) addVs(ip, sp.nodePort, externalRS);
  }
  if (sp.healthCheckNodePort !== 0 && (sp.nodePort === 0 || ctx.nodePortIPs.length > 0)) {
    setEntries.push([SetBase.HEALTH_CHECK_NODE_PORT, bitmapPortEntry(sp.healthCheckNodePort)]);
  }

  return { virtualServers, setEntries, boundAddresses, outFilterRules, noLocalInternal, noLocalExternal };
}

/**
 * The source ranges of one family; a zero-length prefix (0.0.0.0/0, ::/0) means "allow any", the
 * same as no ranges (pkg/proxy/serviceport.go at v1.36.3). The kernel refuses a /0 net in a
 * hash:ip,port,net set anyway.
 */
function familySourceRanges(all: readonly string[], family: IpFamily): readonly string[] {
  if (all.length === 0) return all;
  const ranges = all.filter((c) => parseCidr(c)?.family === family);
  return ranges.some((c) => parseCidr(c)?.prefix === 0) ? [] : ranges;
}
