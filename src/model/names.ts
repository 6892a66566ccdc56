// Every chain, set, device and comment name kube-ipvs programs, in one place. The strings are
// kube-proxy's (IPVS mode) byte for byte: cleanup and adoption of a node previously run by
// kube-proxy match rules by these exact names and comments.
import type { IpFamily } from './types.js';

/** The dummy device every ClusterIP/ExternalIP/LB VIP is bound to, as a host route. */
export const DUMMY_DEVICE = 'kube-ipvs0';

/** Chains we own, per table. iptables-restore rewrites each of them in full every sync. */
export const Chain = {
  /** nat: entry point from PREROUTING and OUTPUT; matches the service ipsets. */
  SERVICES: 'KUBE-SERVICES',
  /** nat: masquerades marked packets and hairpin traffic. */
  POSTROUTING: 'KUBE-POSTROUTING',
  /** nat and filter: NodePort marking (nat) and health-check port accept (filter). */
  NODE_PORT: 'KUBE-NODE-PORT',
  /** nat: load-balancer VIPs, marked for masquerade unless eTP=Local. */
  LOAD_BALANCER: 'KUBE-LOAD-BALANCER',
  /** nat: sets the masquerade mark bit. */
  MARK_MASQ: 'KUBE-MARK-MASQ',
  /** filter: accepts forwarded service traffic even under a FORWARD DROP policy. */
  FORWARD: 'KUBE-FORWARD',
  /** filter: sends LB VIPs with source ranges to the source-range firewall. */
  PROXY_FIREWALL: 'KUBE-PROXY-FIREWALL',
  /** filter: allows only the listed source ranges, drops the rest. */
  SOURCE_RANGES_FIREWALL: 'KUBE-SOURCE-RANGES-FIREWALL',
  /** filter: rejects new connections to VIPs on ports that are not services (k/k #72236). */
  IPVS_FILTER: 'KUBE-IPVS-FILTER',
  /** filter: blocks node-originated access to source-range-restricted LBs (k/k #119656). */
  IPVS_OUT_FILTER: 'KUBE-IPVS-OUT-FILTER',
} as const;
export type ChainName = (typeof Chain)[keyof typeof Chain];

export type TableName = 'nat' | 'filter';

/** Our chains per table, in kube-proxy's declaration order. */
export const OWNED_CHAINS: Readonly<Record<TableName, readonly ChainName[]>> = {
  nat: [Chain.SERVICES, Chain.POSTROUTING, Chain.NODE_PORT, Chain.LOAD_BALANCER, Chain.MARK_MASQ],
  filter: [
    Chain.FORWARD,
    Chain.NODE_PORT,
    Chain.PROXY_FIREWALL,
    Chain.SOURCE_RANGES_FIREWALL,
    Chain.IPVS_FILTER,
    Chain.IPVS_OUT_FILTER,
  ],
};

/** A jump from a built-in chain into one of ours; cleanup deletes it by exactly this spec. */
export interface JumpRule {
  readonly table: TableName;
  readonly from: string;
  readonly to: ChainName;
  readonly comment: string;
}

/** kube-proxy's jump list, in the order it ensures them (each is inserted at position 1). */
export const JUMP_RULES: readonly JumpRule[] = [
  { table: 'nat', from: 'OUTPUT', to: Chain.SERVICES, comment: 'kubernetes service portals' },
  { table: 'nat', from: 'PREROUTING', to: Chain.SERVICES, comment: 'kubernetes service portals' },
  { table: 'nat', from: 'POSTROUTING', to: Chain.POSTROUTING, comment: 'kubernetes postrouting rules' },
  { table: 'filter', from: 'FORWARD', to: Chain.FORWARD, comment: 'kubernetes forwarding rules' },
  { table: 'filter', from: 'INPUT', to: Chain.NODE_PORT, comment: 'kubernetes health check rules' },
  { table: 'filter', from: 'INPUT', to: Chain.PROXY_FIREWALL, comment: 'kube-proxy firewall rules' },
  { table: 'filter', from: 'FORWARD', to: Chain.PROXY_FIREWALL, comment: 'kube-proxy firewall rules' },
  { table: 'filter', from: 'INPUT', to: Chain.IPVS_FILTER, comment: 'kubernetes ipvs access filter' },
  { table: 'filter', from: 'OUTPUT', to: Chain.IPVS_OUT_FILTER, comment: 'kubernetes ipvs access filter' },
];

export type IpsetType = 'hash:ip' | 'hash:ip,port' | 'hash:ip,port,ip' | 'hash:ip,port,net' | 'bitmap:port';

/** The IPv4 names of kube-proxy's sets. IPv6 names derive from these through ipsetName(). */
export const SetBase = {
  LOOP_BACK: 'KUBE-LOOP-BACK',
  CLUSTER_IP: 'KUBE-CLUSTER-IP',
  EXTERNAL_IP: 'KUBE-EXTERNAL-IP',
  EXTERNAL_IP_LOCAL: 'KUBE-EXTERNAL-IP-LOCAL',
  LOAD_BALANCER: 'KUBE-LOAD-BALANCER',
  LOAD_BALANCER_FW: 'KUBE-LOAD-BALANCER-FW',
  LOAD_BALANCER_LOCAL: 'KUBE-LOAD-BALANCER-LOCAL',
  LOAD_BALANCER_SOURCE_IP: 'KUBE-LOAD-BALANCER-SOURCE-IP',
  LOAD_BALANCER_SOURCE_CIDR: 'KUBE-LOAD-BALANCER-SOURCE-CIDR',
  NODE_PORT_TCP: 'KUBE-NODE-PORT-TCP',
  NODE_PORT_LOCAL_TCP: 'KUBE-NODE-PORT-LOCAL-TCP',
  NODE_PORT_UDP: 'KUBE-NODE-PORT-UDP',
  NODE_PORT_LOCAL_UDP: 'KUBE-NODE-PORT-LOCAL-UDP',
  NODE_PORT_SCTP: 'KUBE-NODE-PORT-SCTP-HASH',
  NODE_PORT_LOCAL_SCTP: 'KUBE-NODE-PORT-LOCAL-SCTP-HASH',
  HEALTH_CHECK_NODE_PORT: 'KUBE-HEALTH-CHECK-NODE-PORT',
  IPVS_IPS: 'KUBE-IPVS-IPS',
} as const;
export type SetBaseName = (typeof SetBase)[keyof typeof SetBase];

export interface SetInfo {
  readonly base: SetBaseName;
  readonly type: IpsetType;
  /** The comment on the iptables rule that matches this set (kube-proxy's exact text). */
  readonly comment: string;
}

/** kube-proxy's set list, in its order. */
export const SET_INFO: readonly SetInfo[] = [
  { base: SetBase.LOOP_BACK, type: 'hash:ip,port,ip', comment: 'Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose' },
  { base: SetBase.CLUSTER_IP, type: 'hash:ip,port', comment: 'Kubernetes service cluster ip + port for masquerade purpose' },
  { base: SetBase.EXTERNAL_IP, type: 'hash:ip,port', comment: 'Kubernetes service external ip + port for masquerade and filter purpose' },
  { base: SetBase.EXTERNAL_IP_LOCAL, type: 'hash:ip,port', comment: 'Kubernetes service external ip + port with externalTrafficPolicy=local' },
  { base: SetBase.LOAD_BALANCER, type: 'hash:ip,port', comment: 'Kubernetes service lb portal' },
  { base: SetBase.LOAD_BALANCER_FW, type: 'hash:ip,port', comment: 'Kubernetes service load balancer ip + port for load balancer with sourceRange' },
  { base: SetBase.LOAD_BALANCER_LOCAL, type: 'hash:ip,port', comment: 'Kubernetes service load balancer ip + port with externalTrafficPolicy=local' },
  { base: SetBase.LOAD_BALANCER_SOURCE_IP, type: 'hash:ip,port,ip', comment: 'Kubernetes service load balancer ip + port + source IP for packet filter purpose' },
  { base: SetBase.LOAD_BALANCER_SOURCE_CIDR, type: 'hash:ip,port,net', comment: 'Kubernetes service load balancer ip + port + source cidr for packet filter purpose' },
  { base: SetBase.NODE_PORT_TCP, type: 'bitmap:port', comment: 'Kubernetes nodeport TCP port for masquerade purpose' },
  { base: SetBase.NODE_PORT_LOCAL_TCP, type: 'bitmap:port', comment: 'Kubernetes nodeport TCP port with externalTrafficPolicy=local' },
  { base: SetBase.NODE_PORT_UDP, type: 'bitmap:port', comment: 'Kubernetes nodeport UDP port for masquerade purpose' },
  { base: SetBase.NODE_PORT_LOCAL_UDP, type: 'bitmap:port', comment: 'Kubernetes nodeport UDP port with externalTrafficPolicy=local' },
  { base: SetBase.NODE_PORT_SCTP, type: 'hash:ip,port', comment: "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'" },
  { base: SetBase.NODE_PORT_LOCAL_SCTP, type: 'hash:ip,port', comment: "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'" },
  { base: SetBase.HEALTH_CHECK_NODE_PORT, type: 'bitmap:port', comment: 'Kubernetes health check node port' },
  { base: SetBase.IPVS_IPS, type: 'hash:ip', comment: 'Addresses on the ipvs interface' },
];

const SET_INFO_BY_BASE = new Map(SET_INFO.map((s) => [s.base, s]));

export function setInfo(base: SetBaseName): SetInfo {
  const info = SET_INFO_BY_BASE.get(base);
  if (!info) throw new Error(`unknown ipset ${base}`);
  return info;
}

/** ipset's limit on set names (IPSET_MAXNAMELEN 32 including the NUL). */
export const IPSET_MAX_NAME_LENGTH = 31;

/**
 * The kernel name of a set for a family. IPv6 sets replace the first "KUBE-" with "KUBE-6-" and are
 * cut to 31 characters, exactly as kube-proxy does (two names are cut: KUBE-6-LOAD-BALANCER-SOURCE-CID
 * and KUBE-6-NODE-PORT-LOCAL-SCTP-HAS), so a node kube-proxy ran is adopted set for set.
 */
export function ipsetName(base: SetBaseName, family: IpFamily): string {
  if (family === 'IPv4') return base;
  return base.replace('KUBE-', 'KUBE-6-').slice(0, IPSET_MAX_NAME_LENGTH);
}

/** Comments of the fixed rules that are not ipset-fed. */
export const RuleComment = {
  FORWARD: 'kubernetes forwarding rules',
  FORWARD_CONNTRACK: 'kubernetes forwarding conntrack rule',
  MASQUERADE: 'kubernetes service traffic requiring SNAT',
} as const;

/** Service annotations kube-ipvs reads beyond kube-proxy's API. */
export const Annotation = {
  /** Per-service IPVS scheduler, overriding --ipvs-scheduler. */
  SCHEDULER: 'kube-ipvs.io/scheduler',
  /** Comma-separated scheduler flags: flag-1, flag-2, flag-3 (or sh-fallback, sh-port, mh-fallback, mh-port). */
  SCHEDULER_FLAGS: 'kube-ipvs.io/scheduler-flags',
} as const;

/** Labels kube-proxy honours on Services and EndpointSlices. */
export const Label = {
  SERVICE_PROXY_NAME: 'service.kubernetes.io/service-proxy-name',
  HEADLESS: 'service.kubernetes.io/headless',
  SERVICE_NAME: 'kubernetes.io/service-name',
  TOPOLOGY_ZONE: 'topology.kubernetes.io/zone',
} as const;
