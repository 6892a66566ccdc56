// Kernel objects kube-ipvs programs, as plain data. Identity strings are kube-proxy's.
import type { IpFamily, Protocol } from './types.js';
import { hostPort } from './types.js';

/** IPVS service flags (include/uapi/linux/ip_vs.h). */
export const VsFlag = {
  PERSISTENT: 0x0001,
  /** Set by the kernel on every hashed service; never part of a desired state. */
  HASHED: 0x0002,
  ONEPACKET: 0x0004,
  SCHED1: 0x0008,
  SCHED2: 0x0010,
  SCHED3: 0x0020,
} as const;

export type ForwardMethod = 'masq' | 'local' | 'tunnel' | 'route' | 'bypass';

export const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'mh', 'fo', 'ovf', 'twos'] as const;
export type Scheduler = (typeof SCHEDULERS)[number];

export function isScheduler(s: string): s is Scheduler {
  return (SCHEDULERS as readonly string[]).includes(s);
}

export interface VirtualServer {
  readonly family: IpFamily;
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
  readonly scheduler: string;
  /** Without VsFlag.HASHED. */
  readonly flags: number;
  /** Persistence timeout in seconds (0 when not persistent). */
  readonly timeout: number;
}

export interface RealServer {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly forward: ForwardMethod;
}

/** A virtual server with the real servers it should have. */
export interface VirtualServerSpec {
  readonly vs: VirtualServer;
  readonly realServers: readonly RealServer[];
}

/** "IP:port/PROTO" (IPv6 in brackets): kube-proxy's virtual-server identity. */
export function vsKey(vs: Pick<VirtualServer, 'address' | 'port' | 'protocol'>): string {
  return `${hostPort(vs.address, vs.port)}/${vs.protocol}`;
}

export function rsKey(rs: Pick<RealServer, 'address' | 'port'>): string {
  return hostPort(rs.address, rs.port);
}

/** Attributes kube-proxy compares to decide whether a virtual server must be updated. */
export function sameVirtualServer(a: VirtualServer, b: VirtualServer): boolean {
  return (
    a === b ||
    (a.address === b.address &&
    a.port === b.port &&
    a.protocol === b.protocol &&
    a.scheduler === b.scheduler &&
    a.flags === b.flags &&
    a.timeout === b.timeout)
  );
}

/** ipset's family token. */
export type IpsetFamily = 'inet' | 'inet6';

export function ipsetFamily(family: IpFamily): IpsetFamily {
  return family === 'IPv4' ? 'inet' : 'inet6';
}

/** A set's header: what `ipset create` takes and `ipset save` prints (less bucketsize/initval). */
export interface IpsetSpec {
  readonly name: string;
  readonly type: import('./names.js').IpsetType;
  /** Hash sets only. */
  readonly family: IpsetFamily;
  /** Hash sets only (kube-proxy: 1024). */
  readonly hashSize: number;
  /** Hash sets only (kube-proxy: 65536). */
  readonly maxElem: number;
  /** bitmap:port only (kube-proxy: "0-65535"). */
  readonly range: string;
}

/** A set with its entries, each in the exact text `ipset save` prints. */
export interface IpsetState {
  readonly spec: IpsetSpec;
  readonly entries: ReadonlySet<string>;
}

/** One rule of one of our chains: `-A <chain> <spec>` in iptables-save's canonical form. */
export interface IptablesRule {
  readonly chain: string;
  readonly spec: string;
}

/** Our part of one iptables table: the chains we own and all their rules, in order. */
export interface IptablesTable {
  readonly table: import('./names.js').TableName;
  readonly chains: readonly string[];
  readonly rules: readonly IptablesRule[];
}
