// The incremental planner: keeps one fragment per service and family, and aggregates of what all
// fragments want, so a change re-plans only the services that changed. planCluster() is the pure
// whole-cluster entry point; both give identical states (a property test checks it).
import type { ProxyConfig } from '../config/types.js';
import type { ClusterSnapshot } from '../cluster/tracker.js';
import type { IptablesTable, IpsetSpec, IpsetState, VirtualServerSpec } from '../model/kernel.js';
import { vsKey } from '../model/kernel.js';
import { parseIp } from '../model/ip.js';
import type { SetBaseName } from '../model/names.js';
import { Label, SET_INFO } from '../model/names.js';
import type { Endpoint, IpFamily, NodeInfo, ServiceKey } from '../model/types.js';
import type { DesiredState, FamilyDesiredState, VirtualServerConflict } from './desired.js';
import { ipsetSpec } from './desired.js';
import type { FamilyContext, FamilyFragment, OwnedVirtualServer } from './fragment.js';
import { planServicePort } from './fragment.js';
import { healthCheckAddresses, nodeAddressSet, nodePortIPs } from './node-ips.js';
import { CountedSet } from './refcount.js';
import { buildRules, jumpRulesInChainOrder } from './rules.js';
import { planIpvsTimeouts, planSysctls } from './sysctl.js';
import { errorMessage } from '../model/error-text.js';

export interface PlannerOptions {
  readonly node: NodeInfo;
  readonly config: ProxyConfig;
  /** MASQUERADE --random-fully support of the iptables binary (default true). */
  readonly randomFully?: boolean;
  /** CPU count for nf_conntrack_max (default 1). */
  readonly cpuCount?: number;
  /** Honour node hints (the PreferSameTrafficDistribution feature; default true). */
  readonly preferSameNode?: boolean;
}

/** What an update changed, so the sync touches only that. */
export interface PlanDelta {
  /** vsKeys per family whose spec (or existence) changed. */
  readonly virtualServers: ReadonlyMap<IpFamily, ReadonlySet<string>>;
  /** Kernel set names whose entries changed, each with the entries whose presence may differ. */
  readonly ipsets: ReadonlyMap<string, ReadonlySet<string>>;
  readonly addressesChanged: boolean;
  /** The iptables rules may differ (a set went empty/non-empty, out-filter rules changed). */
  readonly rulesChanged: boolean;
}

const EMPTY_ENDPOINTS: readonly Endpoint[] = [];

class FamilyAggregate {
  /** Who wants each virtual server; nearly always one owner, so a small array beats a Map. */
  readonly claims = new Map<string, OwnedVirtualServer[]>();
  readonly virtualServers = new Map<string, VirtualServerSpec>();
  readonly sets = new Map<SetBaseName, CountedSet>(SET_INFO.map((s) => [s.base, new CountedSet()]));
  readonly bound = new CountedSet();
  readonly outFilter = new CountedSet();
  readonly noLocalInternal = new CountedSet();
  readonly noLocalExternal = new CountedSet();
  /** vsKeys claimed by more than one service port. */
  readonly conflicted = new Set<string>();
  private readonly specs: ReadonlyMap<SetBaseName, IpsetSpec>;
  // Change tracking since the last take(). A re-planned service is first removed, then added
  // back: only what differs from before the first touch counts, or every endpoint change would
  // look like an address and rule change (and cost a full bind/unbind pass and a rules check).
  changedVs = new Set<string>();
  /** Per set, each touched entry and whether it was present before the first touch. */
  private entryBefore = new Map<SetBaseName, Map<string, boolean>>();
  /** Per set, whether it was empty before the first touch (its rules depend on that). */
  private emptyBefore = new Map<SetBaseName, boolean>();
  private boundBefore = new Map<string, boolean>();
  private boundEmptyBefore: boolean | undefined;
  private outFilterBefore = new Map<string, boolean>();

  constructor(readonly ctx: FamilyContext) {
    this.specs = new Map(SET_INFO.map((s) => [s.base, ipsetSpec(s.base, ctx.family)]));
  }

  apply(svc: ServiceKey, frags: readonly FamilyFragment[], sign: 1 | -1): void {
    for (const frag of frags) {
      for (const { owner, spec } of frag.virtualServers) this.claim(vsKey(spec.vs), owner, spec, sign);
      for (const [base, entry] of frag.setEntries) {
        const set = this.sets.get(base) as CountedSet;
        this.noteEntry(base, entry, set);
        countIn(set, entry, sign);
      }
      for (const a of frag.boundAddresses) {
        this.boundEmptyBefore ??= this.bound.size === 0;
        if (!this.boundBefore.has(a)) this.boundBefore.set(a, this.bound.has(a));
        countIn(this.bound, a, sign);
      }
      for (const r of frag.outFilterRules) {
        if (!this.outFilterBefore.has(r)) this.outFilterBefore.set(r, this.outFilter.has(r));
        countIn(this.outFilter, r, sign);
      }
      if (frag.noLocalInternal) countIn(this.noLocalInternal, svc, sign);
      if (frag.noLocalExternal) countIn(this.noLocalExternal, svc, sign);
    }
  }

  private noteEntry(base: SetBaseName, entry: string, set: CountedSet): void {
    if (!this.emptyBefore.has(base)) this.emptyBefore.set(base, set.size === 0);
    let m = this.entryBefore.get(base);
    if (!m) this.entryBefore.set(base, (m = new Map()));
    if (!m.has(entry)) m.set(entry, set.has(entry));
  }

  /** What really changed since the last take(), and a fresh start for the next. */
  take(): { vs: Set<string>; entries: Map<SetBaseName, Set<string>>; addressesChanged: boolean; rulesChanged: boolean } {
    const entries = new Map<SetBaseName, Set<string>>();
    let rulesChanged = false;
    for (const [base, touched] of this.entryBefore) {
      const set = this.sets.get(base) as CountedSet;
      const changed = new Set<string>();
      for (const [entry, was] of touched) if (set.has(entry) !== was) changed.add(entry);
      if (changed.size > 0) entries.set(base, changed);
      if (this.emptyBefore.get(base) !== (set.size === 0)) rulesChanged = true;
    }
    const bound = new Set<string>();
    for (const [a, was] of this.boundBefore) if (this.bound.has(a) !== was) bound.add(a);
    if (bound.size > 0) entries.set('KUBE-IPVS-IPS', bound);
    // KUBE-IPVS-IPS gates rules too when it turns empty or non-empty.
    if (this.boundEmptyBefore !== undefined && this.boundEmptyBefore !== (this.bound.size === 0)) rulesChanged = true;
    for (const [r, was] of this.outFilterBefore) if (this.outFilter.has(r) !== was) rulesChanged = true;
    const vs = this.changedVs;
    this.changedVs = new Set();
    this.entryBefore = new Map();
    this.emptyBefore = new Map();
    this.boundBefore = new Map();
    this.boundEmptyBefore = undefined;
    this.outFilterBefore = new Map();
    return { vs, entries, addressesChanged: bound.size > 0, rulesChanged };
  }

  private claim(key: string, owner: string, spec: VirtualServerSpec, sign: 1 | -1): void {
    let owners = this.claims.get(key);
    if (sign > 0) {
      if (!owners) this.claims.set(key, (owners = []));
      const i = owners.findIndex((o) => o.owner === owner);
      if (i >= 0) owners[i] = { owner, spec };
      else owners.push({ owner, spec });
    } else if (owners) {
      const i = owners.findIndex((o) => o.owner === owner);
      if (i >= 0) owners.splice(i, 1);
      if (owners.length === 0) this.claims.delete(key);
    }
    if (owners && owners.length > 1) this.conflicted.add(key);
    else this.conflicted.delete(key);
    const winner = owners && owners.length > 0 ? firstByOwner(owners).spec : undefined;
    const prev = this.virtualServers.get(key);
    if (winner) this.virtualServers.set(key, winner);
    else this.virtualServers.delete(key);
    if (prev !== winner) this.changedVs.add(key);
  }

  ipsets(): IpsetState[] {
    return SET_INFO.map((s) => ({
      spec: this.specs.get(s.base) ?? ipsetSpec(s.base, this.ctx.family),
      entries: s.base === 'KUBE-IPVS-IPS' ? this.bound : (this.sets.get(s.base) as CountedSet),
    }));
  }
}

function countIn(set: CountedSet, member: string, sign: 1 | -1): void {
  if (sign > 0) set.add(member);
  else set.remove(member);
}

function firstByOwner(owners: readonly OwnedVirtualServer[]): OwnedVirtualServer {
  let min = owners[0] as OwnedVirtualServer;
  for (const o of owners) if (o.owner < min.owner) min = o;
  return min;
}

function familyContext(family: IpFamily, o: PlannerOptions): FamilyContext {
  const node = o.node;
  return {
    family,
    topology: { nodeName: node.name, zone: node.labels[Label.TOPOLOGY_ZONE], preferSameNode: o.preferSameNode ?? true },
    nodeAddresses: nodeAddressSet(node, family),
    nodePortIPs: nodePortIPs(node, o.config, family),
    primaryIP: node.primaryIPs[family] !== undefined ? parseIp(node.primaryIPs[family] as string) : undefined,
    config: o.config,
  };
}

export class Planner {
  private readonly families: Map<IpFamily, FamilyAggregate>;
  /** Each family's rules with the inputs they were built from: most syncs change none of them. */
  private readonly rulesMemo = new Map<IpFamily, { readonly inputs: string; readonly tables: IptablesTable[] }>();
  private readonly fragments = new Map<ServiceKey, Map<IpFamily, FamilyFragment[]>>();
  /** Services the planner could not plan, with why; each is left out until it changes. */
  private readonly unplannable = new Map<ServiceKey, string>();
  private readonly healthChecks = new Map<ServiceKey, number>();
  /** Depends on the node and config only, both fixed for a planner's life. */
  private readonly healthCheckListen: readonly string[];

  constructor(private readonly options: PlannerOptions) {
    this.families = new Map(options.node.families.map((f) => [f, new FamilyAggregate(familyContext(f, options))]));
    this.healthCheckListen = healthCheckAddresses(options.node, options.config);
  }

  /** Re-plans the given services from the snapshot (removed ones disappear). */
  update(snapshot: ClusterSnapshot, changed: Iterable<ServiceKey>): PlanDelta {
    for (const key of changed) this.replanService(snapshot, key);
    return this.takeDelta();
  }

  /** Plans every service of the snapshot, dropping services that are gone. */
  updateAll(snapshot: ClusterSnapshot): PlanDelta {
    const keys = new Set<ServiceKey>([...this.fragments.keys(), ...snapshot.services.keys()]);
    return this.update(snapshot, keys);
  }

  private replanService(snapshot: ClusterSnapshot, key: ServiceKey): void {
    const old = this.fragments.get(key);
    if (old) for (const [family, frags] of old) this.families.get(family)?.apply(key, frags, -1);
    this.fragments.delete(key);
    this.healthChecks.delete(key);
    this.unplannable.delete(key);
    const info = snapshot.services.get(key);
    if (!info) return;
    const endpoints = snapshot.endpoints.get(key);
    const next = new Map<IpFamily, FamilyFragment[]>();
    try {
      for (const [family, agg] of this.families) {
        const frags: FamilyFragment[] = [];
        for (const sp of info.ports) {
          const frag = planServicePort(sp, endpoints?.byPort.get(sp.key) ?? EMPTY_ENDPOINTS, agg.ctx);
          if (frag) frags.push(frag);
        }
        if (frags.length > 0) next.set(family, frags);
      }
    } catch (e) {
      // A service the planner cannot plan is left out and named; it never stops the others.
      this.unplannable.set(key, errorMessage(e));
      return;
    }
    for (const [family, frags] of next) this.families.get(family)?.apply(key, frags, 1);
    if (next.size > 0) this.fragments.set(key, next);
    const hc = info.ports.find((p) => p.healthCheckNodePort !== 0)?.healthCheckNodePort;
    if (hc !== undefined && next.size > 0) this.healthChecks.set(key, hc);
  }

  private takeDelta(): PlanDelta {
    const vs = new Map<IpFamily, ReadonlySet<string>>();
    const ipsets = new Map<string, ReadonlySet<string>>();
    let addressesChanged = false;
    let rulesChanged = false;
    for (const [family, agg] of this.families) {
      const d = agg.take();
      vs.set(family, d.vs);
      for (const [base, entries] of d.entries) ipsets.set(ipsetSpec(base, family).name, entries);
      addressesChanged ||= d.addressesChanged;
      rulesChanged ||= d.rulesChanged;
    }
    return { virtualServers: vs, ipsets, addressesChanged, rulesChanged };
  }

  /** The service port ("ns/name:port/PROTO") whose virtual server this is, for per-service metrics. */
  ownerOf(vsKeyText: string): string | undefined {
    for (const agg of this.families.values()) {
      const owners = agg.claims.get(vsKeyText);
      if (owners && owners.length > 0) return firstByOwner(owners).owner;
    }
    return undefined;
  }

  /** A view of the current desired state (live maps: read it before the next update). */
  state(): DesiredState {
    const o = this.options;
    const families: FamilyDesiredState[] = [];
    const conflicts: VirtualServerConflict[] = [];
    for (const [family, agg] of this.families) {
      const ipsets = agg.ipsets();
      const nonEmpty = (base: SetBaseName): boolean => (base === 'KUBE-IPVS-IPS' ? agg.bound.size : (agg.sets.get(base) as CountedSet).size) > 0;
      const outFilterRules = [...agg.outFilter].sort();
      const inputs = `${SET_INFO.map((s) => (nonEmpty(s.base) ? '1' : '0')).join('')}\n${outFilterRules.join('\n')}`;
      let memo = this.rulesMemo.get(family);
      if (memo?.inputs !== inputs) {
        memo = { inputs, tables: buildRules({ family, config: o.config, randomFully: o.randomFully ?? true, nonEmpty, outFilterRules }) };
        this.rulesMemo.set(family, memo);
      }
      families.push({
        family,
        virtualServers: agg.virtualServers,
        ipsets,
        boundAddresses: agg.bound,
        iptables: memo.tables,
        jumps: jumpRulesInChainOrder(),
        noLocalEndpoints: { internal: agg.noLocalInternal.size, external: agg.noLocalExternal.size },
      });
      for (const key of agg.conflicted) {
        const sorted = (agg.claims.get(key) ?? []).map((o) => o.owner).sort();
        conflicts.push({ vsKey: key, family, winner: sorted[0] as string, losers: sorted.slice(1) });
      }
    }
    // Sorted: the conflicted set's order depends on the order changes arrived in.
    conflicts.sort((a, b) => (a.family < b.family ? -1 : a.family > b.family ? 1 : a.vsKey < b.vsKey ? -1 : a.vsKey > b.vsKey ? 1 : 0));
    return {
      families,
      sysctls: planSysctls(o.node, o.config, o.cpuCount ?? 1),
      ipvsTimeouts: planIpvsTimeouts(o.config),
      conflicts,
      healthCheckNodePorts: this.healthChecks,
      unplannable: this.unplannable,
      healthCheckAddresses: this.healthCheckListen,
    };
  }
}

/** Pure whole-cluster plan: (snapshot, node, config) → desired state. */
export function planCluster(snapshot: ClusterSnapshot, options: PlannerOptions): DesiredState {
  const planner = new Planner(options);
  planner.updateAll(snapshot);
  return planner.state();
}
