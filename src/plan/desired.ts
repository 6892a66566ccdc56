// The planner's output: everything the kernel should hold, per address family, plus node-wide
// settings. Reconcilers diff it against what they observe; renderers print it.
import type { IpsetSpec, IpsetState, IptablesTable, VirtualServerSpec } from '../model/kernel.js';
import { ipsetFamily } from '../model/kernel.js';
import type { JumpRule, SetBaseName } from '../model/names.js';
import { ipsetName, SET_INFO } from '../model/names.js';
import type { IpFamily, ServiceKey } from '../model/types.js';
import type { IpvsTimeouts, SysctlSetting } from './sysctl.js';

export interface FamilyDesiredState {
  readonly family: IpFamily;
  /** By vsKey ("IP:port/PROTO"). */
  readonly virtualServers: ReadonlyMap<string, VirtualServerSpec>;
  /** Every set kube-proxy creates for the family, empty ones included, in kube-proxy's order. */
  readonly ipsets: readonly IpsetState[];
  /** Addresses to hold on kube-ipvs0 (plain IPs; bound as /32 or /128). */
  readonly boundAddresses: ReadonlySet<string>;
  /** Our nat and filter chains with their rules, canonical. */
  readonly iptables: readonly IptablesTable[];
  /** Jumps from built-in chains, in the order a fresh install leaves them. */
  readonly jumps: readonly JumpRule[];
  /** Services with a Local policy and endpoints elsewhere but none here (metric). */
  readonly noLocalEndpoints: { readonly internal: number; readonly external: number };
}

/** Two service ports that want the same virtual server; the first (by key) wins. */
export interface VirtualServerConflict {
  readonly vsKey: string;
  readonly family: IpFamily;
  readonly winner: string;
  readonly losers: readonly string[];
}

export interface DesiredState {
  readonly families: readonly FamilyDesiredState[];
  readonly sysctls: readonly SysctlSetting[];
  readonly ipvsTimeouts: IpvsTimeouts;
  readonly conflicts: readonly VirtualServerConflict[];
  /** Health-check node ports wanted (eTP=Local LoadBalancers), by service. */
  readonly healthCheckNodePorts: ReadonlyMap<ServiceKey, number>;
  /** Services left out because they could not be planned, with the reason (a bug to report). */
  readonly unplannable: ReadonlyMap<ServiceKey, string>;
  /** Where those ports listen: wildcard or node addresses per --nodeport-addresses. */
  readonly healthCheckAddresses: readonly string[];
}

export const IPSET_HASH_SIZE = 1024;
export const IPSET_MAX_ELEM = 65536;

export function ipsetSpec(base: SetBaseName, family: IpFamily): IpsetSpec {
  const info = SET_INFO.find((s) => s.base === base);
  if (!info) throw new Error(`unknown set ${base}`);
  return {
    name: ipsetName(base, family),
    type: info.type,
    family: ipsetFamily(family),
    hashSize: IPSET_HASH_SIZE,
    maxElem: IPSET_MAX_ELEM,
    range: '0-65535',
  };
}
