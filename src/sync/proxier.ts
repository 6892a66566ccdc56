// One sync of the whole dataplane, in kube-proxy's order: plan the changed services, then sets
// before the rules that use them, virtual servers before real servers, addresses bound after
// their virtual servers, the iptables restore, and only after it succeeded the deletions (stale
// addresses, stale virtual servers). A failure anywhere is recorded with its object, the rest still
// syncs, and the next sync is a full one that re-reads the kernel.
import type { V1Node } from '@kubernetes/client-node';
import type { ProxyConfig } from '../config/types.js';
import type { ClusterChanges, ClusterSnapshot, ClusterTracker } from '../cluster/tracker.js';
import { buildNodeInfo, nodePodCIDRs } from '../cluster/node.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { deepEqual } from '../model/equal.js';
import type { ParsedCidr } from '../model/ip.js';
import { parseCidr } from '../model/ip.js';
import type { IpFamily, NodeInfo, ServiceKey } from '../model/types.js';
import type { DesiredState } from '../plan/desired.js';
import type { PlanDelta } from '../plan/planner.js';
import { Planner } from '../plan/planner.js';
import { AddressReconciler } from './address-reconciler.js';
import type { Clock } from '../model/clock.js';
import { IpsetReconciler } from './ipset-reconciler.js';
import { IptablesReconciler } from './iptables-reconciler.js';
import { IpvsReconciler } from './ipvs-reconciler.js';
import type { VirtualServerLookup } from './ipvs-reconciler.js';
import { SyncReport, failureOf } from './report.js';
import { applySysctls } from './sysctl-reconciler.js';
import { errorMessage } from '../model/error-text.js';

export type { Dataplane } from '../dataplane/dataplane.js';

export interface ProxierOptions {
  readonly config: ProxyConfig;
  readonly dataplane: Dataplane;
  readonly tracker: ClusterTracker;
  readonly clock: Clock;
  /** This node's Node object, when known (labels, node IPs, podCIDRs for NodeCIDR). */
  readonly nodeObject?: () => V1Node | undefined;
  /**
   * With no Node object, take the node IPs from the interfaces (manifest mode); otherwise, as
   * kube-proxy, a node without a Node object has loopback node IPs.
   */
  readonly nodeIPsFromInterfaces?: boolean;
  readonly kernelVersion?: string;
  readonly cpuCount?: number;
  /** MASQUERADE --random-fully support (probe the iptables binary). */
  readonly randomFully?: boolean;
  /** Longest drain of a TCP real server at weight 0 (default 15 min). */
  readonly drainTimeoutMs?: number;
}

export interface SyncOutcome {
  readonly ok: boolean;
  readonly full: boolean;
  readonly report: SyncReport;
  readonly durationMs: number;
  /** Services whose changes this sync applied. */
  readonly changedServices: number;
  /** Service and endpoint objects whose changes this sync took in (kube-proxy's *_changes_total). */
  readonly serviceChanges: number;
  readonly endpointChanges: number;
  /** Per changed service, when the endpoint change that triggered it happened (ms epoch). */
  readonly triggerTimes: ReadonlyMap<string, number>;
  readonly state: DesiredState;
  /** When FIRST_SERVICES were programmed ahead of the rest: how long after the sync's start (ms). */
  readonly firstServicesMs?: number;
}

/**
 * What one apply covers: the whole kernel (with the plan update this sync made, if it updated the
 * plan rather than made it anew), or only what a plan update changed.
 */
type ApplyScope = { readonly full: true; readonly update: PlanDelta | undefined } | { readonly full: false; readonly delta: PlanDelta };

export const DEFAULT_DRAIN_TIMEOUT_MS = 15 * 60 * 1000;

/**
 * Services a node that holds none of our state yet gets before the rest of its first sync: the
 * API server's own, so that clients on the node reach it seconds after start instead of after the
 * whole cluster is programmed (kubernetes#133773: kube-proxy's IPVS mode leaves it unreachable for
 * a big cluster's whole first sync).
 */
export const FIRST_SERVICES: readonly ServiceKey[] = ['default/kubernetes'];

export class Proxier {
  private planner: Planner | undefined;
  private node: NodeInfo | undefined;
  private lastNodeObject: V1Node | undefined;
  private needFullSync = true;
  private firstSync = true;
  private bound = new Set<string>();
  private readonly ipsets: IpsetReconciler;
  private readonly ipvs: IpvsReconciler;
  private readonly addresses: AddressReconciler;
  private readonly iptables: IptablesReconciler[];

  constructor(private readonly options: ProxierOptions) {
    const dp = options.dataplane;
    this.ipsets = new IpsetReconciler(dp.ipset);
    this.addresses = new AddressReconciler(dp.netif);
    this.iptables = dp.iptables.map((b) => new IptablesReconciler(b));
    const excludeCIDRs = options.config.ipvs.excludeCIDRs.map((c) => parseCidr(c)).filter((c): c is ParsedCidr => c !== undefined);
    this.ipvs = new IpvsReconciler({
      backend: dp.ipvs,
      conntrack: dp.conntrack,
      families: this.families(),
      excludeCIDRs,
      clock: options.clock,
      drainTimeoutMs: options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    });
  }

  /** Real servers draining at weight 0 (status). */
  drainingServers() {
    return this.ipvs.drainingServers();
  }

  /** When a draining real server's connections are next due to be read: a sync should run then. */
  nextDrainCheckAt(): number | undefined {
    return this.ipvs.nextDrainCheckAt();
  }

  /** The service port that owns a virtual server ("ns/name:port/PROTO"), if any. */
  virtualServerOwner(vsKeyText: string): string | undefined {
    return this.planner?.ownerOf(vsKeyText);
  }

  /**
   * The plan the next sync would program, read without writing anything: takes in the tracker's
   * changes and the node's addresses as a full sync does (`kube-ipvs diff` without a daemon).
   */
  async preview(): Promise<DesiredState> {
    const changes = this.options.tracker.drain();
    const observed = await this.addresses.observe();
    const planner = this.replanIfNodeChanged(observed.node, changes.snapshot);
    if (!planner.fresh) planner.planner.update(changes.snapshot, changes.changed);
    return planner.planner.state();
  }

  async sync(opts: { full?: boolean } = {}): Promise<SyncOutcome> {
    const start = this.options.clock.now();
    let full = opts.full === true || this.needFullSync;
    const report = new SyncReport();
    // The FIRST_SERVICES drain of a first sync, then the whole hand-over (both drains merged).
    let first: ClusterChanges | undefined;
    let taken: ClusterChanges | undefined;
    let delta: PlanDelta | undefined;
    try {
      const observed = full ? await this.addresses.observe() : undefined;
      if (observed && !this.firstSync) report.noteDrift('netif', symmetricDifference(this.bound, observed.bound));
      if (observed) this.bound = new Set(observed.bound);
      // Nothing bound on kube-ipvs0 at our first sync: a node we have not programmed before. Only
      // FIRST_SERVICES are taken in before their pass: deriving a big cluster takes seconds.
      let firstServicesMs: number | undefined;
      if (this.firstSync && observed && observed.bound.size === 0) {
        first = this.options.tracker.drain(FIRST_SERVICES);
        if (await this.syncFirstServices(observed.node, first.snapshot, report)) firstServicesMs = this.options.clock.now() - start;
      }
      const changes = (taken = mergeChanges(first, this.options.tracker.drain()));
      const counts = countsOf(changes);
      const planner = this.replanIfNodeChanged(observed?.node, changes.snapshot);
      if (planner.fresh && !full) {
        // The node changed under a partial sync (labels): re-read the kernel as for a full one.
        full = true;
        this.bound = new Set((await this.addresses.observe()).bound);
      }
      delta = planner.fresh ? undefined : planner.planner.update(changes.snapshot, changes.changed);
      const state = planner.planner.state();
      await this.apply(state, !full && delta ? { full: false, delta } : { full: true, update: delta }, report);
      this.needFullSync = !report.ok;
      return { ok: report.ok, full, report, durationMs: this.options.clock.now() - start, changedServices: changes.changed.size, ...counts, state, ...(firstServicesMs !== undefined ? { firstServicesMs } : {}) };
    } catch (e) {
      // A backend that cannot even observe, or a bug (kept with its stack): record it and resync
      // fully next time, re-planning every service, since the changes drained above may never
      // have reached the planner (or only half of them).
      report.fail(failureOf(e));
      this.needFullSync = true;
      const state = this.planner?.state() ?? new Planner({ node: this.nodeOrDefault(), config: this.options.config }).state();
      this.planner = undefined;
      // Failed before taking in the pending changes: they are this sync's (the full sync that
      // follows re-plans every service); changes that came during the sync stay for the next.
      const changes = taken ?? mergeChanges(first, this.options.tracker.drain());
      return { ok: false, full, report, durationMs: this.options.clock.now() - start, changedServices: changes.changed.size, ...countsOf(changes), state };
    }
  }

  private nodeOrDefault(): NodeInfo {
    return this.node ?? buildNodeInfo({ name: this.options.config.hostnameOverride, node: undefined, addresses: [], families: this.families() });
  }

  /** The families this host proxies: those whose iptables works (the dataplane found them). */
  private families(): IpFamily[] {
    return this.options.dataplane.iptables.map((b) => b.family);
  }

  private nodeInfo(nodeObj: V1Node | undefined, addresses: readonly string[]): NodeInfo {
    return buildNodeInfo({
      name: this.options.config.hostnameOverride,
      node: nodeObj,
      addresses,
      families: this.families(),
      ...(this.options.nodeIPsFromInterfaces && nodeObj === undefined ? { nodeIPs: addresses } : {}),
      bindAddress: this.options.config.bindAddress,
      ...(this.options.kernelVersion !== undefined ? { kernelVersion: this.options.kernelVersion } : {}),
    });
  }

  private newPlanner(node: NodeInfo, nodeObj: V1Node | undefined): Planner {
    const config: ProxyConfig = { ...this.options.config, detectLocal: { ...this.options.config.detectLocal, nodeCIDRs: nodePodCIDRs(nodeObj) } };
    return new Planner({ node, config, cpuCount: this.options.cpuCount ?? 1, randomFully: this.options.randomFully ?? true });
  }

  /** Builds the planner anew when the node (addresses, labels, families) changed. */
  private replanIfNodeChanged(nodeAddresses: readonly string[] | undefined, snapshot: Parameters<Planner['updateAll']>[0]): { planner: Planner; fresh: boolean } {
    const nodeObj = this.options.nodeObject?.();
    // Sources hand over a new Node object on every change: the same object and no fresh address
    // list (partial syncs) means nothing to compare.
    if (this.planner && nodeAddresses === undefined && nodeObj === this.lastNodeObject) return { planner: this.planner, fresh: false };
    this.lastNodeObject = nodeObj;
    const node = this.nodeInfo(nodeObj, nodeAddresses ?? this.node?.addresses ?? []);
    if (this.planner && this.node && deepEqual(node, this.node)) return { planner: this.planner, fresh: false };
    this.node = node;
    this.planner = this.newPlanner(node, nodeObj);
    this.planner.updateAll(snapshot);
    this.needFullSync = true;
    return { planner: this.planner, fresh: true };
  }

  /**
   * The first-services pass ahead of the first sync, from objects listed on their own while the
   * whole lists are still out (ApiSource.listFirstServices): on a node that holds nothing of ours,
   * the same pass the first sync would make (it then finds their addresses bound and skips it).
   * Undefined when there was nothing to do. Never concurrent with sync(): the caller awaits it first.
   */
  async programFirstServices(snapshot: ClusterSnapshot): Promise<SyncReport | undefined> {
    if (!this.firstSync) return undefined;
    const report = new SyncReport();
    try {
      const observed = await this.addresses.observe();
      if (observed.bound.size > 0) return undefined;
      if (!(await this.syncFirstServices(observed.node, snapshot, report))) return undefined;
    } catch (e) {
      report.fail(failureOf(e));
    }
    return report;
  }

  /**
   * FIRST_SERVICES on a node that holds nothing of ours: planned alone and applied as a partial
   * sync, which only adds (sets, rules, their virtual servers and addresses), so the full sync
   * that follows at once finds them in place. Its rules are those of a cluster of these services
   * alone; the full sync writes the whole cluster's.
   */
  private async syncFirstServices(nodeAddresses: readonly string[], snapshot: ClusterSnapshot, report: SyncReport): Promise<boolean> {
    const keys = FIRST_SERVICES.filter((k) => snapshot.services.has(k));
    if (keys.length === 0) return false;
    const nodeObj = this.options.nodeObject?.();
    const planner = this.newPlanner(this.nodeInfo(nodeObj, nodeAddresses), nodeObj);
    const delta = planner.update(snapshot, keys);
    const state = planner.state();
    if (!state.families.some((f) => f.virtualServers.size > 0)) return false;
    if (!(await this.addresses.ensureDevice(report))) return false;
    // Only the families these services are in: another family's rules would cost a restore for nothing.
    await this.apply(state, { full: false, delta }, report, new Set(state.families.filter((f) => f.virtualServers.size > 0).map((f) => f.family)));
    return true;
  }

  private async apply(state: DesiredState, scope: ApplyScope, report: SyncReport, ruleFamilies?: ReadonlySet<IpFamily>): Promise<void> {
    const full = scope.full;
    if (this.firstSync) {
      await applySysctls(this.options.dataplane.sysctl, state.sysctls, report);
      const t = state.ipvsTimeouts;
      if (t.tcp > 0 || t.tcpFin > 0 || t.udp > 0) {
        try {
          await this.options.dataplane.ipvs.setTimeouts(t);
        } catch (e) {
          // kube-proxy only logs this too: services work with the kernel's timeouts.
          report.fail({ subsystem: 'ipvs', op: 'setTimeouts', object: `${t.tcp} ${t.tcpFin} ${t.udp}`, message: errorMessage(e) });
        }
      }
    }
    if (full && !(await this.addresses.ensureDevice(report))) return;

    const ipsets = state.families.flatMap((f) => f.ipsets);
    await this.ipsets.sync(ipsets, scope.full ? { full: true, ...(scope.update ? { changed: scope.update.ipsets } : {}) } : { full: false, sets: scope.delta.ipsets }, report);

    // A view over the families' live maps: a partial sync must not copy 15,000 entries.
    const maps = state.families.map((f) => f.virtualServers);
    const desiredVs: VirtualServerLookup = {
      get: (k) => {
        for (const m of maps) {
          const v = m.get(k);
          if (v) return v;
        }
        return undefined;
      },
      has: (k) => maps.some((m) => m.has(k)),
      keys: () => maps.flatMap((m) => [...m.keys()]).values(),
    };
    const changedVs = new Set<string>();
    if (!scope.full) for (const keys of scope.delta.virtualServers.values()) for (const k of keys) changedVs.add(k);
    const ipvsScope = full ? ({ full: true } as const) : ({ full: false, keys: changedVs } as const);
    // Built only when addresses may change: it holds every VIP of the cluster.
    const wantBound = scope.full || scope.delta.addressesChanged ? new Set(state.families.flatMap((f) => [...f.boundAddresses])) : new Set<string>();
    const ipvsAndAddresses = async (): Promise<void> => {
      await this.ipvs.apply(desiredVs, ipvsScope, report);
      if (scope.full || scope.delta.addressesChanged) {
        for (const a of await this.addresses.bind(wantBound, this.bound, report)) this.bound.add(a);
      }
    };
    const rules = async (): Promise<boolean> => {
      let ok = true;
      if (!scope.full && !scope.delta.rulesChanged) return ok;
      // One family after the other: iptables-nft's commits of both would race for the generation.
      for (const r of this.iptables) {
        const fam = state.families.find((f) => f.family === r.family);
        if (!fam || (ruleFamilies && !ruleFamilies.has(r.family))) continue;
        ok = (await r.sync(fam.iptables, report)) && ok;
      }
      return ok;
    };
    // The rules need only the sets (synced above), IPVS and the addresses need nothing of the rules:
    // iptables-restore runs as another process, on another CPU, while IPVS and addresses are
    // written over netlink. Both are settled before anything is removed or a failure is raised.
    const [written, ruled] = await Promise.allSettled([ipvsAndAddresses(), rules()]);
    if (written.status === 'rejected') throw written.reason;
    if (ruled.status === 'rejected') throw ruled.reason;
    const rulesOk = ruled.value;
    // As in kube-proxy: nothing is removed unless the rules that guard the new state are in.
    if (!rulesOk) return;
    if (scope.full || scope.delta.addressesChanged) {
      for (const a of await this.addresses.unbind(wantBound, this.bound, state.families.map((f) => f.family), report)) this.bound.delete(a);
    }
    await this.ipvs.prune(desiredVs, ipvsScope, report);
    this.firstSync = false;
  }
}

/** One hand-over made of two drains of the tracker (the second took in what the first left). */
function mergeChanges(first: ClusterChanges | undefined, rest: ClusterChanges): ClusterChanges {
  if (!first) return rest;
  return {
    snapshot: rest.snapshot,
    changed: new Set([...first.changed, ...rest.changed]),
    serviceChanges: first.serviceChanges + rest.serviceChanges,
    endpointChanges: first.endpointChanges + rest.endpointChanges,
    triggerTimes: new Map([...first.triggerTimes, ...rest.triggerTimes]),
  };
}

function countsOf(c: ClusterChanges): Pick<SyncOutcome, 'serviceChanges' | 'endpointChanges' | 'triggerTimes'> {
  return { serviceChanges: c.serviceChanges, endpointChanges: c.endpointChanges, triggerTimes: c.triggerTimes };
}

/** Members in exactly one of the two sets. */
function symmetricDifference(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  let n = 0;
  for (const x of a) if (!b.has(x)) n++;
  for (const x of b) if (!a.has(x)) n++;
  return n;
}
