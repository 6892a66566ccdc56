// The JSON document the daemon serves at /status on its metrics address (docs/status.md):
// this node's Services with their virtual servers and real servers as the kernel holds them,
// and the daemon's own state (syncs, pending changes, failures, conflicts, the cluster source).
// `kube-ipvs status` and the /ui page read it; field names are part of the interface.
import type { IpFamily } from '../model/types.js';

export const STATUS_API_VERSION = 'status.kube-ipvs.io/v1alpha1';

export interface StatusDocument {
  readonly apiVersion: typeof STATUS_API_VERSION;
  readonly kind: 'NodeStatus';
  /** RFC 3339, when the document was made. */
  readonly generatedAt: string;
  readonly node: NodeStatus;
  readonly source: SourceStatus;
  readonly proxy: ProxyStatus;
  readonly sync: SyncStatus;
  /** Objects (or fields) skipped because they are invalid, as of the last sync. */
  readonly problems: readonly ObjectProblem[];
  /** Operations the last sync could not do. */
  readonly failures: readonly OperationFailure[];
  /** Virtual servers two service ports want; the first by name gets it. */
  readonly conflicts: readonly ConflictStatus[];
  /** Counts over the whole node, whatever the filter. */
  readonly totals: StatusTotals;
  readonly filter: StatusFilter;
  /**
   * Whether real servers carry their own counters and rates. Reading them costs a kernel dump
   * per virtual server, so above STATUS_PER_VS_LIMIT selected virtual servers they are read all
   * at once without counters (connections and weights still shown): filter to see them.
   */
  readonly realServerStats: boolean;
  readonly services: readonly ServicePortStatus[];
}

/** The most virtual servers whose real servers /status dumps one by one (with their counters). */
export const STATUS_PER_VS_LIMIT = 200;

export interface NodeStatus {
  readonly name: string;
  /** The families this node proxies. */
  readonly families: readonly IpFamily[];
  /** False while the node is being deleted (then /healthz fails). */
  readonly eligible: boolean;
}

export interface SourceStatus {
  /** Where Services and EndpointSlices come from. */
  readonly kind: 'manifests' | 'api';
  /** The manifest paths, or the API server's URL. */
  readonly target: string;
  /** False while some list or watch is failing (the last objects are kept meanwhile). */
  readonly connected: boolean;
  /** The resources whose list or watch fails right now. */
  readonly failing: readonly string[];
}

export interface ProxyStatus {
  /** kube-proxy's proxy health (/healthz without the node's eligibility). */
  readonly healthy: boolean;
  readonly syncPeriodSeconds: number;
  readonly minSyncPeriodSeconds: number;
}

export interface SyncRecord {
  /** RFC 3339, when the sync ended. */
  readonly at: string;
  readonly full: boolean;
  readonly ok: boolean;
  readonly durationSeconds: number;
  readonly changedServices: number;
  /** The writes, e.g. "ipset.add=2 ipvs.addDest=1" (empty when none). */
  readonly changes: string;
  readonly failures: number;
  /** Objects the sync found changed behind kube-ipvs's back (full syncs only), and repaired. */
  readonly drift: number;
}

export type SubsystemCounts = Readonly<Partial<Record<string, number>>>;

export interface SyncStatus {
  readonly last?: SyncRecord;
  readonly lastSuccessAt?: string;
  readonly lastFullAt?: string;
  /** Services whose Service or endpoints changed and are not synced yet (kube-proxy's *_changes_pending). */
  readonly pending: { readonly services: number; readonly endpoints: number };
  /** The latest syncs, oldest first. */
  readonly history: readonly SyncRecord[];
  readonly drift: {
    /** When a sync last found drift. */
    readonly lastAt?: string;
    /** What it found, by subsystem. */
    readonly last: SubsystemCounts;
    /** Since the daemon started, by subsystem. */
    readonly total: SubsystemCounts;
  };
}

export interface ObjectProblem {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly field: string;
  readonly reason: string;
  /** "skipped": the whole object; "ignored-field": planned without the field. */
  readonly effect: 'skipped' | 'ignored-field';
}

export interface OperationFailure {
  readonly subsystem: string;
  readonly operation: string;
  readonly object: string;
  readonly error: string;
}

export interface ConflictStatus {
  readonly virtualServer: string;
  readonly family: IpFamily;
  readonly winner: string;
  readonly losers: readonly string[];
}

export interface StatusTotals {
  readonly servicePorts: number;
  readonly virtualServers: number;
  readonly realServers: number;
  readonly draining: number;
}

export interface StatusFilter {
  readonly namespace?: string;
  /** A Service name (in any namespace unless `namespace` is given). */
  readonly service?: string;
  /** Only service ports with a node port. */
  readonly nodePort: boolean;
  /** Only real servers that are draining (and the ports that have some). */
  readonly draining: boolean;
}

/** Cumulative kernel counters and the kernel's rate estimates (ipvsadm --stats / --rate). */
export interface TrafficStats {
  readonly connections: number;
  readonly packetsIn: number;
  readonly packetsOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly connectionsPerSecond: number;
  readonly packetsInPerSecond: number;
  readonly packetsOutPerSecond: number;
  readonly bytesInPerSecond: number;
  readonly bytesOutPerSecond: number;
}

export type VirtualServerKind = 'ClusterIP' | 'ExternalIP' | 'LoadBalancer' | 'NodePort';

export interface VirtualServerStatus {
  /** "IP:port/PROTO". */
  readonly key: string;
  readonly kind: VirtualServerKind;
  readonly address: string;
  readonly port: number;
  /** False when kube-ipvs wants it but the kernel lacks it. */
  readonly inKernel: boolean;
  /** Real servers the kernel holds for it. */
  readonly realServers: number;
  readonly stats: TrafficStats;
}

export interface RealServerStatus {
  /** "IP:port" (IPv6 in brackets). */
  readonly endpoint: string;
  readonly address: string;
  readonly port: number;
  /** The Pod of the EndpointSlice's targetRef. */
  readonly pod?: string;
  readonly node?: string;
  readonly zone?: string;
  /** On this node. */
  readonly local: boolean;
  /** EndpointSlice conditions; all false for a real server no endpoint stands for any more. */
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  /** Whether some virtual server of the port holds it in the kernel. */
  readonly inKernel: boolean;
  /** The kernel's weight (the ClusterIP's virtual server first); absent when not in the kernel. */
  readonly weight?: number;
  /** Summed over the port's virtual servers. */
  readonly activeConnections: number;
  readonly inactiveConnections: number;
  /** Set while it drains at weight 0: how long so far, and at most how long more. */
  readonly draining?: { readonly forSeconds: number; readonly leftSeconds: number };
  readonly stats: TrafficStats;
}

export interface ServicePortStatus {
  /** "ns/name:port/PROTO" (no ":port" for a single unnamed port). */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  /** The port's name ("" when unnamed). */
  readonly port: string;
  readonly protocol: string;
  /** The Service's spec.type. */
  readonly type: string;
  readonly scheduler: string;
  /** Scheduler flags by ipvsadm's names, e.g. ["mh-port"]. */
  readonly schedulerFlags: readonly string[];
  /** sessionAffinity ClientIP timeout; 0 without affinity. */
  readonly persistenceSeconds: number;
  readonly internalTrafficPolicy: 'Cluster' | 'Local';
  readonly externalTrafficPolicy: 'Cluster' | 'Local';
  readonly virtualServers: readonly VirtualServerStatus[];
  readonly realServers: readonly RealServerStatus[];
}

export const ZERO_TRAFFIC: TrafficStats = {
  connections: 0,
  packetsIn: 0,
  packetsOut: 0,
  bytesIn: 0,
  bytesOut: 0,
  connectionsPerSecond: 0,
  packetsInPerSecond: 0,
  packetsOutPerSecond: 0,
  bytesInPerSecond: 0,
  bytesOutPerSecond: 0,
};

/** The query string of /status for a filter (what `kube-ipvs status` sends). */
export function filterQuery(f: StatusFilter): string {
  const q = new URLSearchParams();
  if (f.namespace) q.set('namespace', f.namespace);
  if (f.service) q.set('service', f.service);
  if (f.nodePort) q.set('nodePort', 'true');
  if (f.draining) q.set('draining', 'true');
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The filter a /status query asks for; unknown parameters are refused so typos do not pass silently. */
export function parseFilterQuery(q: URLSearchParams): StatusFilter | { error: string } {
  for (const k of q.keys()) {
    if (!['namespace', 'service', 'nodePort', 'draining'].includes(k)) return { error: `unknown parameter ${JSON.stringify(k)}: use namespace, service, nodePort or draining` };
  }
  const flag = (k: string): boolean | undefined => {
    const v = q.get(k);
    if (v === null || v === 'false' || v === '0') return false;
    if (v === '' || v === 'true' || v === '1') return true;
    return undefined;
  };
  const nodePort = flag('nodePort');
  const draining = flag('draining');
  if (nodePort === undefined || draining === undefined) return { error: 'nodePort and draining take true or false' };
  const namespace = q.get('namespace') ?? undefined;
  const service = q.get('service') ?? undefined;
  return { ...(namespace ? { namespace } : {}), ...(service ? { service } : {}), nodePort, draining };
}
