// Domain vocabulary shared by every stage: the Kubernetes side (service ports, endpoints) after
// validation, and the kernel side (virtual servers, real servers, ipsets, rules).

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

export type IpFamily = 'IPv4' | 'IPv6';
export const IP_FAMILIES: readonly IpFamily[] = ['IPv4', 'IPv6'];

/** Identity of one port of one Service: kube-proxy's ServicePortName plus the protocol. */
export interface ServicePortName {
  readonly namespace: string;
  readonly name: string;
  /** The port's name; empty for a single unnamed port. */
  readonly port: string;
  readonly protocol: Protocol;
}

/** "ns/name" of a Service. */
export type ServiceKey = string;

export function serviceKey(namespace: string, name: string): ServiceKey {
  return `${namespace}/${name}`;
}

/** "ns/name:port/PROTO": unique per service port, used to join Services with EndpointSlices. */
export function servicePortKey(spn: ServicePortName): string {
  return `${spn.namespace}/${spn.name}${spn.port ? `:${spn.port}` : ''}/${spn.protocol}`;
}

/** One port of a validated Service, with everything the planner needs, both families together. */
export interface ServicePort {
  readonly name: ServicePortName;
  readonly key: string;
  readonly port: number;
  readonly protocol: Protocol;
  /** 0 when the service has no node port. */
  readonly nodePort: number;
  /** 0 unless the service is a LoadBalancer with externalTrafficPolicy Local. */
  readonly healthCheckNodePort: number;
  /** Canonical ClusterIPs, at most one per family. */
  readonly clusterIPs: readonly string[];
  /** Canonical external IPs, any family. */
  readonly externalIPs: readonly string[];
  /** Canonical LB ingress IPs in VIP mode (ipMode Proxy and hostname-only ingress are skipped). */
  readonly loadBalancerVIPs: readonly string[];
  /** Canonical CIDRs, trimmed; empty when unrestricted. */
  readonly loadBalancerSourceRanges: readonly string[];
  /** Persistence timeout in seconds for sessionAffinity ClientIP; 0 when there is no affinity. */
  readonly stickyMaxAgeSeconds: number;
  readonly externalPolicyLocal: boolean;
  readonly internalPolicyLocal: boolean;
  /** IPVS scheduler from the kube-ipvs.io/scheduler annotation; undefined means the global one. */
  readonly scheduler: string | undefined;
  /** IPVS service flags from kube-ipvs.io/scheduler-flags (SCHED1..3 bits). */
  readonly schedulerFlags: number;
}

/** A validated Service: its ports, or nothing when kube-proxy would not proxy it. */
export interface ServiceInfo {
  readonly key: ServiceKey;
  readonly namespace: string;
  readonly name: string;
  readonly ports: readonly ServicePort[];
}

/** One endpoint of one service port, as kube-proxy's endpoint tracker builds it. */
export interface Endpoint {
  readonly ip: string;
  readonly port: number;
  readonly family: IpFamily;
  readonly nodeName: string | undefined;
  readonly zone: string | undefined;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  /** Zone names from hints.forZones; empty when the endpoint has no zone hints. */
  readonly zoneHints: readonly string[];
  /** Node names from hints.forNodes; empty when the endpoint has no node hints. */
  readonly nodeHints: readonly string[];
}

/** "IP:port" (IPv6 in brackets): kube-proxy's endpoint identity and IPVS real-server identity. */
export function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Endpoints of every port of one Service, by service port key. */
export interface ServiceEndpoints {
  readonly key: ServiceKey;
  readonly byPort: ReadonlyMap<string, readonly Endpoint[]>;
}

/** What the planner knows of the node it runs on. */
export interface NodeInfo {
  /** The node name: endpoints with this nodeName are local. */
  readonly name: string;
  /** The node's labels (topology zone). */
  readonly labels: Readonly<Record<string, string>>;
  /**
   * Every address on every interface except kube-ipvs0, canonical, including loopback; NodePort
   * virtual servers and the "bind or not" rule for external IPs come from this.
   */
  readonly addresses: readonly string[];
  /** The family of the first node IP (or of --bind-address); IPv4 when the node has no IP. */
  readonly primaryFamily: IpFamily;
  /**
   * kube-proxy's node IP per family (source-range node access, --nodeport-addresses primary): from
   * the Node object, loopback for a family it has no address of.
   */
  readonly primaryIPs: Readonly<Record<IpFamily, string>>;
  /** The families this host can proxy, whatever addresses the node has (as kube-proxy decides). */
  readonly families: readonly IpFamily[];
  /** Kernel release, e.g. "6.1.0"; decides conn_reuse_mode. Undefined when unknown. */
  readonly kernelVersion: string | undefined;
}
