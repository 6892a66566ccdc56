// The live kernel as operators' tools read it (`kube-ipvs diff`, `trace --live`, the daemon's
// /diff): IPVS with every real server, ipsets, each family's iptables, kube-ipvs0's addresses,
// the node's own addresses and the planned sysctls, read once through the dataplane backends
// (the same reads a full sync does; nothing is written). liveAsDesired turns the dumps into the
// shape the packet tracer walks.
import type { Dataplane } from '../dataplane/dataplane.js';
import type { ListedRealServer, ObservedVirtualServer } from '../dataplane/ipvs/backend.js';
import { allRealServers } from '../dataplane/ipvs/proc.js';
import type { IptablesTables } from '../model/text/iptables.js';
import { isBuiltinChain } from '../model/text/iptables.js';
import type { IpsetState, IptablesRule, IptablesTable, VirtualServer, VirtualServerSpec } from '../model/kernel.js';
import { vsKey } from '../model/kernel.js';
import { OWNED_CHAINS } from '../model/names.js';
import type { TableName } from '../model/names.js';
import type { IpFamily } from '../model/types.js';
import type { DesiredState, FamilyDesiredState } from '../plan/desired.js';
import { AddressReconciler } from './address-reconciler.js';

export interface LiveIptables {
  readonly family: IpFamily;
  readonly tables: IptablesTables;
}

export interface LiveKernel {
  /** Virtual servers other than firewall-mark ones (we own none of those). */
  readonly virtualServers: readonly ObservedVirtualServer[];
  /** Real servers with weights and connection counts, by vsKey. */
  readonly realServers: ReadonlyMap<string, readonly ListedRealServer[]>;
  /** Every set of the host, as `ipset save` prints it. */
  readonly ipsets: readonly IpsetState[];
  /** Each proxied family's tables, as iptables-save prints them. */
  readonly iptables: readonly LiveIptables[];
  /** Addresses on kube-ipvs0 (no loopback, no IPv6 link-local). */
  readonly bound: ReadonlySet<string>;
  /** The node's own addresses (every other link). */
  readonly nodeAddresses: readonly string[];
  /** The values of the asked sysctls (slash form), undefined when the key does not exist. */
  readonly sysctls: ReadonlyMap<string, string | undefined>;
}

/** Reads everything a diff or a live trace looks at; `sysctlKeys` are the planned settings' keys. */
export async function observeLive(dp: Dataplane, opts: { sysctlKeys?: readonly string[] } = {}): Promise<LiveKernel> {
  const virtualServers = (await dp.ipvs.listServices()).filter((v) => v.fwmark === undefined);
  let realServers: Map<string, ListedRealServer[]>;
  try {
    realServers = allRealServers(await dp.ipvs.listRealServerBlocks());
  } catch {
    // /proc/net/ip_vs unreadable: one dump per virtual server, as a full sync falls back to.
    realServers = new Map();
    for (const vs of virtualServers) realServers.set(vsKey(vs), await dp.ipvs.listRealServers(vs));
  }
  const ipsets = await dp.ipset.observe();
  const iptables: LiveIptables[] = [];
  for (const b of dp.iptables) iptables.push({ family: b.family, tables: await b.observe() });
  const addresses = await new AddressReconciler(dp.netif).observe();
  const sysctls = new Map<string, string | undefined>();
  for (const key of opts.sysctlKeys ?? []) sysctls.set(key, await dp.sysctl.read(key));
  return { virtualServers, realServers, ipsets, iptables, bound: addresses.bound, nodeAddresses: addresses.node, sysctls };
}

function toVirtualServer(o: ObservedVirtualServer): VirtualServer {
  return { family: o.family, protocol: o.protocol, address: o.address, port: o.port, scheduler: o.scheduler, flags: o.flags, timeout: o.timeout };
}

/** Our chains of one table with their rules, plus the rules of the built-in chains that enter them. */
export function liveTable(tables: IptablesTables, table: TableName): IptablesTable {
  const state = tables.get(table);
  const chains = OWNED_CHAINS[table].filter((c) => state?.chains.has(c));
  const rules: IptablesRule[] = [];
  const present = new Set<string>(chains);
  for (const r of state?.rules ?? []) {
    if (present.has(r.chain)) rules.push(r);
    else if (isBuiltinChain(table, r.chain)) {
      // Other programs' rules in the built-in chains are left out: the tracer models ours.
      const target = jumpTarget(r.spec);
      if (target !== undefined && present.has(target)) rules.push(r);
    }
  }
  return { table, chains, rules };
}

function jumpTarget(spec: string): string | undefined {
  return /(?:^|\s)-[jg] (\S+)/.exec(spec)?.[1];
}

/** How many rules of other programs the built-in chains hold (the tracer does not evaluate them). */
export function foreignRuleCount(tables: IptablesTables, table: TableName): number {
  const inBuiltins = (rules: readonly IptablesRule[]): number => rules.filter((r) => isBuiltinChain(table, r.chain)).length;
  return inBuiltins(tables.get(table)?.rules ?? []) - inBuiltins(liveTable(tables, table).rules);
}

export interface LiveStateOptions {
  /**
   * Leave out real servers at weight 0: IPVS's schedulers never pick them for a new connection
   * (they are draining), though established connections stay on them.
   */
  readonly skipWeightZero: boolean;
}

/**
 * The live kernel in the planner's shape, so the packet tracer can walk it: each proxied family's
 * virtual servers with their real servers, sets, our chains (with the jumps into them) and
 * kube-ipvs0's addresses. Sysctls and timeouts are not part of a trace.
 */
export function liveAsDesired(live: LiveKernel, o: LiveStateOptions): DesiredState {
  const families: FamilyDesiredState[] = live.iptables.map(({ family, tables }) => {
    const virtualServers = new Map<string, VirtualServerSpec>();
    for (const vs of live.virtualServers) {
      if (vs.family !== family) continue;
      const key = vsKey(vs);
      const rs = (live.realServers.get(key) ?? []).filter((r) => !o.skipWeightZero || r.weight > 0);
      virtualServers.set(key, { vs: toVirtualServer(vs), realServers: rs.map((r) => ({ address: r.address, port: r.port, weight: r.weight, forward: r.forward })) });
    }
    const bound = new Set([...live.bound].filter((a) => a.includes(':') === (family === 'IPv6')));
    return {
      family,
      virtualServers,
      // Rules name their sets; a lookup in a set of the other family never matches, as in the kernel.
      ipsets: live.ipsets,
      boundAddresses: bound,
      iptables: [liveTable(tables, 'nat'), liveTable(tables, 'filter')],
      // The live tables carry their jumps as rules already.
      jumps: [],
      noLocalEndpoints: { internal: 0, external: 0 },
    };
  });
  return { families, sysctls: [], ipvsTimeouts: { tcp: 0, tcpFin: 0, udp: 0 }, conflicts: [], healthCheckNodePorts: new Map(), unplannable: new Map(), healthCheckAddresses: [] };
}
