// Which Service a kernel object belongs to, for operators: `kube-ipvs diff` groups its lines by
// owning Service and `trace --live` names the Service of a virtual server. Built from the cluster
// snapshot (Services' addresses and ports, endpoints), not from the plan, so objects the plan no
// longer wants (stale virtual servers, set entries) still find their Service while it exists.
import type { ClusterSnapshot } from '../cluster/tracker.js';
import { canonicalIp } from '../model/ip.js';
import { SetBase } from '../model/names.js';
import type { Protocol, ServiceKey } from '../model/types.js';
import { hostPort } from '../model/types.js';

/** "ns/name" of the Service a service port key ("ns/name:port/PROTO") belongs to. */
export function serviceOfPortKey(portKey: string): ServiceKey {
  const slash = portKey.indexOf('/');
  const rest = portKey.slice(slash + 1);
  const end = rest.search(/[:/]/);
  return `${portKey.slice(0, slash)}/${end < 0 ? rest : rest.slice(0, end)}`;
}

function add(index: Map<string, string[]>, key: string, owner: string): void {
  const list = index.get(key);
  if (!list) index.set(key, [owner]);
  else if (!list.includes(owner)) list.push(owner);
}

const PROTOCOL_OF: Readonly<Record<string, Protocol>> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' };

/** Owners are service port keys ("ns/name:port/PROTO"); lookups answer them sorted. */
export class OwnerIndex {
  /** "VIP:port/PROTO" (ClusterIP, external IP, LB VIP) → service ports. */
  private readonly vips = new Map<string, string[]>();
  /** "nodePort/PROTO" → service ports. */
  private readonly nodePorts = new Map<string, string[]>();
  /** "port" → service ports with that health-check node port. */
  private readonly healthChecks = new Map<string, string[]>();
  /** "IP:port/PROTO" of an endpoint → service ports. */
  private readonly endpoints = new Map<string, string[]>();
  /** Service address (any port) → service ports. */
  private readonly addresses = new Map<string, string[]>();

  static fromSnapshot(snapshot: ClusterSnapshot): OwnerIndex {
    const index = new OwnerIndex();
    for (const info of snapshot.services.values()) {
      for (const sp of info.ports) {
        for (const ip of [...sp.clusterIPs, ...sp.externalIPs, ...sp.loadBalancerVIPs]) {
          add(index.vips, `${hostPort(ip, sp.port)}/${sp.protocol}`, sp.key);
          add(index.addresses, ip, sp.key);
        }
        if (sp.nodePort !== 0) add(index.nodePorts, `${sp.nodePort}/${sp.protocol}`, sp.key);
        if (sp.healthCheckNodePort !== 0) add(index.healthChecks, String(sp.healthCheckNodePort), sp.key);
      }
    }
    for (const eps of snapshot.endpoints.values()) {
      for (const [portKey, list] of eps.byPort) {
        const protocol = portKey.slice(portKey.lastIndexOf('/') + 1);
        for (const ep of list) add(index.endpoints, `${hostPort(ep.ip, ep.port)}/${protocol}`, portKey);
      }
    }
    return index;
  }

  /** The service ports of a virtual server "IP:port/PROTO": by VIP, else by node port. */
  ofVirtualServer(vsKeyText: string): string[] {
    const byVip = this.vips.get(vsKeyText);
    if (byVip) return [...byVip].sort();
    const m = /:(\d+)\/([A-Z]+)$/.exec(vsKeyText);
    return m ? [...(this.nodePorts.get(`${m[1]}/${m[2]}`) ?? [])].sort() : [];
  }

  /** The service ports whose endpoint "IP:port" (protocol given) this is. */
  ofEndpoint(endpoint: string, protocol: Protocol): string[] {
    return [...(this.endpoints.get(`${endpoint}/${protocol}`) ?? [])].sort();
  }

  /** The service ports with this address (ClusterIP, external IP or LB VIP, any port). */
  ofAddress(ip: string): string[] {
    return [...(this.addresses.get(canonicalIp(ip) ?? ip) ?? [])].sort();
  }

  /** The service ports a set entry stands for, from the entry's own fields and the set's purpose. */
  ofSetEntry(setName: string, entry: string): string[] {
    // IPv6 sets are named KUBE-6-…: compare by the IPv4 base name.
    const base = setName.replace(/^KUBE-6-/, 'KUBE-');
    const parts = entry.split(',');
    if (parts.length === 1) {
      const value = parts[0] as string;
      if (base.startsWith(SetBase.HEALTH_CHECK_NODE_PORT)) return [...(this.healthChecks.get(value) ?? [])].sort();
      if (base.startsWith(SetBase.NODE_PORT_TCP) || base.startsWith(SetBase.NODE_PORT_LOCAL_TCP)) return this.ofNodePort(value, 'TCP');
      if (base.startsWith(SetBase.NODE_PORT_UDP) || base.startsWith(SetBase.NODE_PORT_LOCAL_UDP)) return this.ofNodePort(value, 'UDP');
      return this.ofAddress(value);
    }
    const ip = parts[0] as string;
    const m = /^([a-z]+):(\d+)$/.exec(parts[1] ?? '');
    const protocol = m ? PROTOCOL_OF[m[1] as string] : undefined;
    if (!m || !protocol) return [];
    const port = Number(m[2]);
    const at = hostPort(canonicalIp(ip) ?? ip, port);
    if (base === SetBase.LOOP_BACK) return this.ofEndpoint(at, protocol);
    return this.ofVirtualServer(`${at}/${protocol}`);
  }

  private ofNodePort(port: string, protocol: Protocol): string[] {
    return [...(this.nodePorts.get(`${port}/${protocol}`) ?? [])].sort();
  }
}
