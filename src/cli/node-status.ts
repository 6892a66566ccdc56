// What the daemon answers on /status and /diff: it joins the cluster tracker, the latest plan, the
// proxier's drain records and the sync history with a read of the kernel (IPVS counts and rates
// for the selected service ports; everything for a diff). Reads only.
import type { ClusterTracker } from '../cluster/tracker.js';
import type { ProxyConfig } from '../config/types.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { ObservedVirtualServer } from '../dataplane/ipvs/backend.js';
import type { VirtualServerSpec } from '../model/kernel.js';
import { rsKey, vsKey } from '../model/kernel.js';
import type { IpFamily } from '../model/types.js';
import type { DesiredState } from '../plan/desired.js';
import { OwnerIndex } from '../plan/owners.js';
import { onlyDraining, podsOf, selectPorts, servicePortStatus } from '../observe/status-build.js';
import type { DrainObservation } from '../observe/status-build.js';
import type { SourceStatus, StatusDocument, StatusFilter } from '../observe/status-document.js';
import { STATUS_API_VERSION, STATUS_PER_VS_LIMIT } from '../observe/status-document.js';
import type { SyncHistory } from '../observe/sync-history.js';
import type { Clock } from '../model/clock.js';
import type { DriftReport } from '../sync/drift.js';
import { diffLive } from '../sync/drift.js';
import type { Draining } from '../sync/ipvs-reconciler.js';
import { observeLive } from '../sync/live.js';

export interface NodeStatusInput {
  readonly config: ProxyConfig;
  readonly dataplane: Dataplane;
  readonly tracker: ClusterTracker;
  readonly history: SyncHistory;
  readonly families: readonly IpFamily[];
  /** The plan of the latest sync (undefined before the first). */
  readonly state: () => DesiredState | undefined;
  readonly ownerOf: (vsKeyText: string) => string | undefined;
  readonly draining: () => readonly Draining[];
  readonly drainTimeoutMs: number;
  /** The proxier's clock (drain records are stamped with it). */
  readonly clock: Clock;
  readonly healthy: () => boolean;
  readonly eligible: () => boolean;
  readonly source: () => SourceStatus;
  /** Wall time, epoch ms. */
  readonly now?: () => number;
}

/** The /diff answer: the drift report and the changes the daemon has not planned yet. */
export interface DaemonDiff extends DriftReport {
  readonly pending: { readonly services: number; readonly endpoints: number };
  /** RFC 3339 time of the sync whose plan was compared. */
  readonly plannedAt?: string;
}

export async function nodeStatus(i: NodeStatusInput, filter: StatusFilter): Promise<StatusDocument> {
  const now = (i.now ?? Date.now)();
  const state = i.state();
  const snapshot = i.tracker.current();
  const ports = selectPorts(snapshot.services, filter);

  const byOwner = new Map<string, VirtualServerSpec[]>();
  let virtualServers = 0;
  let realServers = 0;
  for (const f of state?.families ?? []) {
    for (const [key, spec] of f.virtualServers) {
      virtualServers++;
      realServers += spec.realServers.length;
      const owner = i.ownerOf(key);
      if (owner === undefined) continue;
      const list = byOwner.get(owner);
      if (list) list.push(spec);
      else byOwner.set(owner, [spec]);
    }
  }
  const mono = i.clock.now();
  const drains = new Map<string, DrainObservation[]>();
  const allDraining = i.draining();
  for (const d of allDraining) {
    const key = vsKey(d.vs);
    const owner = i.ownerOf(key);
    if (owner === undefined) continue;
    const obs = { vsKey: key, rsKey: rsKey(d.rs), forMs: mono - d.since, leftMs: d.since + i.drainTimeoutMs - mono };
    const list = drains.get(owner);
    if (list) list.push(obs);
    else drains.set(owner, [obs]);
  }

  // One dump of the virtual servers (with their counters), then one per selected virtual server.
  const kernel = new Map<string, ObservedVirtualServer>();
  if (ports.some((p) => byOwner.has(p.key))) {
    for (const v of await i.dataplane.ipvs.listServices()) if (v.fwmark === undefined) kernel.set(vsKey(v), v);
  }
  // Per-virtual-server dumps carry each real server's counters; past the limit one read of
  // /proc/net/ip_vs gives weights and connections for all of them.
  const selected = ports.reduce((n, p) => n + (byOwner.get(p.key)?.length ?? 0), 0);
  const perVs = selected <= STATUS_PER_VS_LIMIT;
  const all = perVs || kernel.size === 0 ? undefined : await i.dataplane.ipvs.listRealServerBlocks();
  const services = [];
  for (const sp of ports) {
    const svcKey = `${sp.name.namespace}/${sp.name.name}`;
    const objects = i.tracker.objectsOf(svcKey);
    const vss = [];
    for (const spec of byOwner.get(sp.key) ?? []) {
      const key = vsKey(spec.vs);
      const k = kernel.get(key);
      const kernelRealServers = !k ? [] : all ? (all.get(key)?.servers() ?? []) : await i.dataplane.ipvs.listRealServers(k);
      vss.push({ spec, kernel: k, kernelRealServers });
    }
    services.push(
      servicePortStatus({
        port: sp,
        serviceType: objects.service?.spec?.type ?? 'ClusterIP',
        endpoints: snapshot.endpoints.get(svcKey)?.byPort.get(sp.key) ?? [],
        pods: podsOf(objects.slices),
        nodeName: i.config.hostnameOverride,
        virtualServers: vss,
        draining: drains.get(sp.key) ?? [],
        defaultScheduler: i.config.ipvs.scheduler,
      }),
    );
  }
  const source = i.source();
  return {
    apiVersion: STATUS_API_VERSION,
    kind: 'NodeStatus',
    generatedAt: new Date(now).toISOString(),
    node: { name: i.config.hostnameOverride, families: [...i.families], eligible: i.eligible() },
    source,
    proxy: { healthy: i.healthy(), syncPeriodSeconds: i.config.ipvs.syncPeriodMs / 1000, minSyncPeriodSeconds: i.config.ipvs.minSyncPeriodMs / 1000 },
    sync: i.history.status(i.tracker.pending),
    problems: [
      ...i.tracker.problems().map((p) => ({ kind: p.kind, namespace: p.namespace, name: p.name, field: p.field, reason: p.reason, effect: p.effect })),
      // A service the planner failed on is left out: shown like an invalid object, said to be a bug.
      ...[...(state?.unplannable ?? [])].map(([key, why]) => {
        const [namespace = '', name = ''] = key.split('/');
        return { kind: 'Service', namespace, name, field: '', reason: `could not be planned (a kube-ipvs bug; please report it): ${why}`, effect: 'skipped' as const };
      }),
    ],
    failures: i.history.failures(),
    conflicts: (state?.conflicts ?? []).map((c) => ({ virtualServer: c.vsKey, family: c.family, winner: c.winner, losers: c.losers })),
    totals: { servicePorts: [...snapshot.services.values()].reduce((n, s) => n + s.ports.length, 0), virtualServers, realServers, draining: allDraining.length },
    filter,
    realServerStats: perVs,
    services: filter.draining ? onlyDraining(services) : services,
  };
}

/** /diff: the kernel now against the latest plan. */
export async function nodeDiff(i: NodeStatusInput): Promise<DaemonDiff | undefined> {
  const state = i.state();
  if (!state) return undefined;
  const live = await observeLive(i.dataplane, { sysctlKeys: state.sysctls.map((s) => s.key) });
  const report = diffLive(state, live, { owners: OwnerIndex.fromSnapshot(i.tracker.current()), excludeCIDRs: i.config.ipvs.excludeCIDRs });
  const last = i.history.status(i.tracker.pending).last;
  return { ...report, pending: i.tracker.pending, ...(last ? { plannedAt: last.at } : {}) };
}
