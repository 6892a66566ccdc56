// The node addresses a family's NodePort virtual servers listen on, and the set used to decide
// whether an external/LB IP is already local (then it is not bound to kube-ipvs0).
import type { ProxyConfig } from '../config/types.js';
import { cidrContains, hostPrefix, isLinkLocal, isLoopback, parseCidr, parseIp } from '../model/ip.js';
import type { ParsedCidr } from '../model/ip.js';
import type { IpFamily, NodeInfo } from '../model/types.js';

/** Node addresses of a family except loopback and IPv6 link-local (kube-proxy's isValidForSet). */
export function nodeAddressSet(node: NodeInfo, family: IpFamily): Set<string> {
  const out = new Set<string>();
  for (const a of node.addresses) {
    const ip = parseIp(a);
    if (!ip || ip.family !== family || isLoopback(ip)) continue;
    if (family === 'IPv6' && isLinkLocal(ip)) continue;
    out.add(a);
  }
  return out;
}

/**
 * The addresses NodePort virtual servers are created on, per --nodeport-addresses
 * (`pkg/proxy/util/nodeport_addresses.go` and `pkg/proxy/ipvs/proxier.go`, v1.36.3): every node
 * address of the family when no CIDR of the family is given (or a zero CIDR is), else the
 * addresses inside the CIDRs. "primary" stands for the node IPs as host CIDRs, leaving out a
 * loopback node IP, so a family without a node IP listens on all its addresses. Loopback is never
 * used (no localhost NodePorts in IPVS mode). Sorted, so the plan is deterministic.
 */
export function nodePortIPs(node: NodeInfo, config: Pick<ProxyConfig, 'nodePortAddresses'>, family: IpFamily): string[] {
  const all = nodeAddressSet(node, family);
  const cidrs: ParsedCidr[] = nodePortCidrs(node, config.nodePortAddresses).filter((c) => c.family === family);
  const matchAll = cidrs.length === 0 || cidrs.some((c) => c.prefix === 0);
  const picked = matchAll
    ? [...all]
    : node.addresses.filter((a) => {
        const ip = parseIp(a);
        return ip !== undefined && ip.family === family && !isLoopback(ip) && cidrs.some((c) => cidrContains(c, ip));
      });
  return [...new Set(picked)].sort(compareIpText);
}

/**
 * Where health-check node ports listen (`pkg/proxy/healthcheck/service_health.go` with
 * `NodePortAddresses.GetNodeIPs`, v1.36.3): per family, the family's wildcard address when
 * --nodeport-addresses matches all of the family, else every node address inside its CIDRs
 * (loopback included, as GetNodeIPs keeps it; kube-ipvs0's VIPs are not node addresses, so they
 * never count). A family whose CIDRs match no address listens nowhere, as kube-proxy's does.
 */
export function healthCheckAddresses(node: NodeInfo, config: Pick<ProxyConfig, 'nodePortAddresses'>): string[] {
  const out: string[] = [];
  const cidrs = nodePortCidrs(node, config.nodePortAddresses);
  for (const family of node.families) {
    const mine = cidrs.filter((c) => c.family === family);
    if (mine.length === 0 || mine.some((c) => c.prefix === 0)) {
      out.push(family === 'IPv4' ? '0.0.0.0' : '::');
      continue;
    }
    const picked = node.addresses.filter((a) => {
      const ip = parseIp(a);
      return ip !== undefined && ip.family === family && mine.some((c) => cidrContains(c, ip));
    });
    out.push(...[...new Set(picked)].sort(compareIpText));
  }
  return out;
}

/** --nodeport-addresses as CIDRs, with "primary" resolved as kube-proxy's server.go does. */
function nodePortCidrs(node: NodeInfo, spec: readonly string[]): ParsedCidr[] {
  const texts =
    spec.length === 1 && spec[0] === 'primary'
      ? Object.values(node.primaryIPs).flatMap((ip) => {
          const p = parseIp(ip);
          return p && !isLoopback(p) ? [`${ip}/${hostPrefix(p.family)}`] : [];
        })
      : spec;
  return texts.map((s) => parseCidr(s)).filter((c): c is ParsedCidr => c !== undefined);
}

export function compareIpText(a: string, b: string): number {
  const pa = parseIp(a);
  const pb = parseIp(b);
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  if (pa.bytes.length !== pb.bytes.length) return pa.bytes.length - pb.bytes.length;
  for (let i = 0; i < pa.bytes.length; i++) {
    const d = (pa.bytes[i] ?? 0) - (pb.bytes[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
