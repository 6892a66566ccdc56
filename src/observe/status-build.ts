// Builds the Services part of /status from what the daemon knows: the validated Service ports and
// endpoints, the pods of the raw EndpointSlices, the planned virtual servers and what the kernel
// holds for them (counts and rates), and the real servers being drained. Pure: the daemon reads
// the kernel, this joins it.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { ListedRealServer, ObservedVirtualServer } from '../dataplane/ipvs/backend.js';
import type { IpvsStats } from '../dataplane/ipvs/netlink-codec.js';
import { compareRealServers, schedulerFlagNames } from '../model/text/ipvs.js';
import { canonicalIp } from '../model/ip.js';
import type { VirtualServerSpec } from '../model/kernel.js';
import { rsKey, vsKey } from '../model/kernel.js';
import type { Endpoint, ServiceInfo, ServicePort } from '../model/types.js';
import type { RealServerStatus, ServicePortStatus, StatusFilter, TrafficStats, VirtualServerKind, VirtualServerStatus } from './status-document.js';
import { ZERO_TRAFFIC } from './status-document.js';

/** A real server as read from the kernel: with its counters from a netlink dump, without from /proc. */
export type KernelRealServer = ListedRealServer & { readonly stats?: IpvsStats };

export interface VirtualServerObservation {
  /** The planned virtual server. */
  readonly spec: VirtualServerSpec;
  /** What the kernel holds for it, if anything. */
  readonly kernel: ObservedVirtualServer | undefined;
  readonly kernelRealServers: readonly KernelRealServer[];
}

export interface DrainObservation {
  readonly vsKey: string;
  readonly rsKey: string;
  readonly forMs: number;
  readonly leftMs: number;
}

export interface PortObservation {
  readonly port: ServicePort;
  /** The Service's spec.type as received. */
  readonly serviceType: string;
  /** Every endpoint of the port, whatever its conditions. */
  readonly endpoints: readonly Endpoint[];
  /** Pod name by endpoint IP (EndpointSlice targetRef). */
  readonly pods: ReadonlyMap<string, string>;
  /** This node's name (an endpoint on it is local). */
  readonly nodeName: string;
  readonly virtualServers: readonly VirtualServerObservation[];
  readonly draining: readonly DrainObservation[];
  /** --ipvs-scheduler, for a port without a planned virtual server. */
  readonly defaultScheduler: string;
}

/** Pod names of a service's EndpointSlices by endpoint IP (targetRef of kind Pod, or of no kind). */
export function podsOf(slices: readonly V1EndpointSlice[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of slices) {
    for (const ep of Array.isArray(s.endpoints) ? s.endpoints : []) {
      const ref = ep?.targetRef;
      const raw = Array.isArray(ep?.addresses) ? ep.addresses[0] : undefined;
      const ip = typeof raw === 'string' ? canonicalIp(raw) : undefined;
      if (!ip || !ref?.name || (ref.kind !== undefined && ref.kind !== 'Pod')) continue;
      out.set(ip, ref.name);
    }
  }
  return out;
}

/** The service ports a filter selects, by service key then port key (the draining filter applies later). */
export function selectPorts(services: ReadonlyMap<string, ServiceInfo>, f: StatusFilter): ServicePort[] {
  const out: ServicePort[] = [];
  for (const key of [...services.keys()].sort()) {
    const info = services.get(key) as ServiceInfo;
    if (f.namespace !== undefined && info.namespace !== f.namespace) continue;
    if (f.service !== undefined && info.name !== f.service) continue;
    for (const sp of [...info.ports].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
      if (f.nodePort && sp.nodePort === 0) continue;
      out.push(sp);
    }
  }
  return out;
}

const KIND_ORDER: readonly VirtualServerKind[] = ['ClusterIP', 'ExternalIP', 'LoadBalancer', 'NodePort'];

export function virtualServerKind(sp: ServicePort, address: string, port: number): VirtualServerKind {
  if (port === sp.port) {
    if (sp.clusterIPs.includes(address)) return 'ClusterIP';
    if (sp.externalIPs.includes(address)) return 'ExternalIP';
    if (sp.loadBalancerVIPs.includes(address)) return 'LoadBalancer';
  }
  return 'NodePort';
}

function traffic(s: IpvsStats | undefined): TrafficStats {
  if (!s) return ZERO_TRAFFIC;
  return {
    connections: s.conns,
    packetsIn: s.inpkts,
    packetsOut: s.outpkts,
    bytesIn: s.inbytes,
    bytesOut: s.outbytes,
    connectionsPerSecond: s.cps,
    packetsInPerSecond: s.inpps,
    packetsOutPerSecond: s.outpps,
    bytesInPerSecond: s.inbps,
    bytesOutPerSecond: s.outbps,
  };
}

function addTraffic(a: TrafficStats, b: TrafficStats): TrafficStats {
  return {
    connections: a.connections + b.connections,
    packetsIn: a.packetsIn + b.packetsIn,
    packetsOut: a.packetsOut + b.packetsOut,
    bytesIn: a.bytesIn + b.bytesIn,
    bytesOut: a.bytesOut + b.bytesOut,
    connectionsPerSecond: a.connectionsPerSecond + b.connectionsPerSecond,
    packetsInPerSecond: a.packetsInPerSecond + b.packetsInPerSecond,
    packetsOutPerSecond: a.packetsOutPerSecond + b.packetsOutPerSecond,
    bytesInPerSecond: a.bytesInPerSecond + b.bytesInPerSecond,
    bytesOutPerSecond: a.bytesOutPerSecond + b.bytesOutPerSecond,
  };
}

interface RealServerAcc {
  address: string;
  port: number;
  endpoint: Endpoint | undefined;
  weight: number | undefined;
  weightFromClusterIP: boolean;
  inKernel: boolean;
  active: number;
  inactive: number;
  stats: TrafficStats;
  draining: DrainObservation | undefined;
}

const seconds = (ms: number): number => Math.max(0, Math.round(ms / 100) / 10);

export function servicePortStatus(o: PortObservation): ServicePortStatus {
  const sp = o.port;
  const vss = [...o.virtualServers].sort((a, b) => {
    const ka = KIND_ORDER.indexOf(virtualServerKind(sp, a.spec.vs.address, a.spec.vs.port));
    const kb = KIND_ORDER.indexOf(virtualServerKind(sp, b.spec.vs.address, b.spec.vs.port));
    return ka - kb || (vsKey(a.spec.vs) < vsKey(b.spec.vs) ? -1 : 1);
  });
  const rs = new Map<string, RealServerAcc>();
  const acc = (address: string, port: number): RealServerAcc => {
    const k = rsKey({ address, port });
    let a = rs.get(k);
    if (!a) rs.set(k, (a = { address, port, endpoint: undefined, weight: undefined, weightFromClusterIP: false, inKernel: false, active: 0, inactive: 0, stats: ZERO_TRAFFIC, draining: undefined }));
    return a;
  };
  for (const ep of o.endpoints) acc(ep.ip, ep.port).endpoint = ep;
  const virtualServers: VirtualServerStatus[] = vss.map((v) => {
    const kind = virtualServerKind(sp, v.spec.vs.address, v.spec.vs.port);
    for (const k of v.kernelRealServers) {
      const a = acc(k.address, k.port);
      a.inKernel = true;
      // The ClusterIP's weight speaks for the port; external ones may be local-only.
      if (a.weight === undefined || (kind === 'ClusterIP' && !a.weightFromClusterIP)) {
        a.weight = k.weight;
        a.weightFromClusterIP = kind === 'ClusterIP';
      }
      a.active += k.activeConns;
      a.inactive += k.inactiveConns;
      a.stats = addTraffic(a.stats, traffic(k.stats));
    }
    return {
      key: vsKey(v.spec.vs),
      kind,
      address: v.spec.vs.address,
      port: v.spec.vs.port,
      inKernel: v.kernel !== undefined,
      realServers: v.kernelRealServers.length,
      stats: traffic(v.kernel?.stats),
    };
  });
  for (const d of o.draining) {
    const [address, port] = splitHostPort(d.rsKey);
    const a = acc(address, port);
    // Several virtual servers may drain it: the earliest deadline is what stands.
    if (!a.draining || d.leftMs < a.draining.leftMs) a.draining = d;
  }
  const realServers: RealServerStatus[] = [...rs.values()]
    .sort((a, b) => compareRealServers({ address: a.address, port: a.port, weight: 0, forward: 'masq' }, { address: b.address, port: b.port, weight: 0, forward: 'masq' }))
    .map((a) => {
      const ep = a.endpoint;
      const pod = o.pods.get(a.address);
      const node = ep?.nodeName;
      return {
        endpoint: rsKey(a),
        address: a.address,
        port: a.port,
        ...(pod !== undefined ? { pod } : {}),
        ...(node !== undefined ? { node } : {}),
        ...(ep?.zone !== undefined ? { zone: ep.zone } : {}),
        local: node !== undefined && node === o.nodeName,
        ready: ep?.ready ?? false,
        serving: ep?.serving ?? false,
        terminating: ep?.terminating ?? false,
        inKernel: a.inKernel,
        ...(a.weight !== undefined ? { weight: a.weight } : {}),
        activeConnections: a.active,
        inactiveConnections: a.inactive,
        ...(a.draining ? { draining: { forSeconds: seconds(a.draining.forMs), leftSeconds: seconds(a.draining.leftMs) } } : {}),
        stats: a.stats,
      };
    });
  const first = vss[0]?.spec.vs;
  const scheduler = first?.scheduler ?? sp.scheduler ?? o.defaultScheduler;
  return {
    key: sp.key,
    namespace: sp.name.namespace,
    name: sp.name.name,
    port: sp.name.port,
    protocol: sp.protocol,
    type: o.serviceType,
    scheduler,
    schedulerFlags: first ? schedulerFlagNames(scheduler, first.flags) : [],
    persistenceSeconds: sp.stickyMaxAgeSeconds,
    internalTrafficPolicy: sp.internalPolicyLocal ? 'Local' : 'Cluster',
    externalTrafficPolicy: sp.externalPolicyLocal ? 'Local' : 'Cluster',
    virtualServers,
    realServers,
  };
}

/** "IP:port" or "[IPv6]:port" → its parts. */
export function splitHostPort(text: string): [string, number] {
  const i = text.lastIndexOf(':');
  const host = text.slice(0, i);
  return [host.startsWith('[') ? host.slice(1, -1) : host, Number(text.slice(i + 1))];
}

/** The draining filter: only draining real servers, only ports that have some. */
export function onlyDraining(ports: readonly ServicePortStatus[]): ServicePortStatus[] {
  return ports.map((p) => ({ ...p, realServers: p.realServers.filter((r) => r.draining !== undefined) })).filter((p) => p.realServers.length > 0);
}
