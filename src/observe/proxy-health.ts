// kube-proxy's proxy health (pkg/proxy/healthcheck/proxy_health.go): a family is unhealthy once an
// update has been queued for longer than the health timeout (2 × sync period) without a successful
// sync since. /healthz also fails while the node is being deleted; /livez ignores the node. As
// kube-proxy's NodeEligible, the node is looked at when /healthz is asked, so a taint or a deletion
// shows at once rather than at the next sync.
import type { Clock } from '../model/clock.js';
import type { IpFamily } from '../model/types.js';
import { formatGoTime } from './go-time.js';

/** The Cluster Autoscaler's taint on a node it is about to delete. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

export interface ProxyHealthOptions {
  readonly clock: Clock;
  /** --ipvs-sync-period; the health timeout is twice this, as kube-proxy's server.go sets it. */
  readonly syncPeriodMs: number;
  /** The families the daemon proxies; a call without a family applies to each of them. */
  readonly families: readonly IpFamily[];
  /** Overrides the 2 × syncPeriodMs timeout. */
  readonly healthTimeoutMs?: number;
  /** Wall time in epoch ms for the JSON timestamps (the injected clock is monotonic). */
  readonly wallClock?: () => number;
  /**
   * Whether the node may receive traffic now (see nodeEligibility); asked on every /healthz.
   * Always eligible when absent.
   */
  readonly nodeEligible?: () => boolean;
}

/** One family's entry in the body's `status` map. */
export interface ProxierHealthStatus {
  readonly lastUpdated: string;
  readonly healthy: boolean;
}

/** The JSON body, with kube-proxy's field names and order. */
export interface ProxyHealthBody {
  readonly lastUpdated: string;
  readonly currentTime: string;
  /** Present on /healthz only. */
  readonly nodeEligible?: boolean;
  /** The proxiers' health alone: kube-proxy leaves node eligibility out of this field. */
  readonly healthy: boolean;
  /** Omitted until some family has been updated (Go's omitempty on an empty map). */
  readonly status?: Readonly<Partial<Record<IpFamily, ProxierHealthStatus>>>;
}

export interface HealthResult {
  /** The answer the probe gets: for /healthz, proxiers healthy AND node eligible. */
  readonly healthy: boolean;
  readonly status: 200 | 503;
  readonly body: ProxyHealthBody;
}

/** The parts of a v1 Node that decide eligibility. */
export interface NodeLike {
  readonly metadata?: { readonly deletionTimestamp?: unknown } | undefined;
  readonly spec?: { readonly taints?: ReadonlyArray<{ readonly key?: string }> | undefined } | undefined;
}

/** kube-proxy's rule: a node being deleted, or tainted for deletion by the autoscaler, is not eligible. */
export function isNodeEligible(node: NodeLike): boolean {
  const ts = node.metadata?.deletionTimestamp;
  if (ts !== undefined && ts !== null && ts !== '') return false;
  const taints: unknown = node.spec?.taints;
  // Read defensively: /healthz must answer whatever the Node holds.
  return !(Array.isArray(taints) && taints.some((t: unknown) => typeof t === 'object' && t !== null && (t as { key?: unknown }).key === TO_BE_DELETED_TAINT));
}

/**
 * The eligibility a source's Node gives, read afresh on each call. With `required` (the API
 * source) no Node object means not eligible, as kube-proxy v1.36.3's NodeEligible answers for a nil
 * node: one never seen, or one deleted (kube-proxy keeps the last object there and means to exit,
 * pkg/proxy/node.go OnNodeDelete's FIXME; a node that is gone is not one to send traffic to).
 * Manifest mode need not describe the node at all: there a missing Node is eligible.
 */
export function nodeEligibility(node: () => NodeLike | undefined, opts: { readonly required: boolean }): () => boolean {
  return () => {
    const n = node();
    return n === undefined ? !opts.required : isNodeEligible(n);
  };
}

interface Stamp {
  readonly mono: number;
  readonly wall: number;
}

export class ProxyHealth {
  private readonly lastUpdated = new Map<IpFamily, Stamp>();
  private readonly oldestPendingQueued = new Map<IpFamily, number>();
  private readonly timeoutMs: number;
  private readonly wallClock: () => number;
  private readonly nodeEligible: () => boolean;

  constructor(private readonly options: ProxyHealthOptions) {
    this.timeoutMs = options.healthTimeoutMs ?? 2 * options.syncPeriodMs;
    this.wallClock = options.wallClock ?? Date.now;
    this.nodeEligible = options.nodeEligible ?? (() => true);
  }

  /**
   * A change needing a sync arrived. Only the oldest pending one counts, so a steady stream of
   * changes cannot keep postponing the deadline.
   */
  queuedUpdate(family?: IpFamily): void {
    for (const f of this.familiesOf(family)) {
      if (!this.oldestPendingQueued.has(f)) this.oldestPendingQueued.set(f, this.options.clock.now());
    }
  }

  /**
   * A sync of this family succeeded. Call it once when the sync loop starts as well (kube-proxy's
   * SyncLoop does): a family that was never updated is not judged at all.
   */
  updated(family?: IpFamily): void {
    const stamp = { mono: this.options.clock.now(), wall: this.wallClock() };
    for (const f of this.familiesOf(family)) {
      this.oldestPendingQueued.delete(f);
      this.lastUpdated.set(f, stamp);
    }
  }

  isNodeEligible(): boolean {
    return this.nodeEligible();
  }

  /** The proxiers' health without the node: what service health checks use. */
  isHealthy(): boolean {
    return this.evaluate().healthy;
  }

  /** /healthz. */
  health(): HealthResult {
    const h = this.evaluate();
    const eligible = this.nodeEligible();
    return this.result(h.healthy && eligible, h, { nodeEligible: eligible });
  }

  /** /livez: the same, except that a node being deleted does not matter. */
  liveness(): HealthResult {
    const h = this.evaluate();
    return this.result(h.healthy, h, {});
  }

  private result(healthy: boolean, h: Evaluation, extra: { nodeEligible?: boolean }): HealthResult {
    const now = this.wallClock();
    const body: ProxyHealthBody = {
      // Healthy answers report "now", which older kube-proxy releases did and clients still expect.
      lastUpdated: formatGoTime(healthy ? now : h.lastUpdatedWall),
      currentTime: formatGoTime(now),
      ...extra,
      healthy: h.healthy,
      ...(h.status.size > 0 ? { status: Object.fromEntries(h.status) } : {}),
    };
    return { healthy, status: healthy ? 200 : 503, body };
  }

  private evaluate(): Evaluation {
    const now = this.options.clock.now();
    let healthy = true;
    let lastUpdatedWall: number | undefined;
    const status = new Map<IpFamily, ProxierHealthStatus>();
    for (const [family, stamp] of this.lastUpdated) {
      if (lastUpdatedWall === undefined || stamp.wall > lastUpdatedWall) lastUpdatedWall = stamp.wall;
      const queuedAt = this.oldestPendingQueued.get(family);
      const late = queuedAt !== undefined && now - queuedAt >= this.timeoutMs;
      if (late) healthy = false;
      status.set(family, { lastUpdated: formatGoTime(stamp.wall), healthy: !late });
    }
    return { healthy, lastUpdatedWall, status };
  }

  private familiesOf(family: IpFamily | undefined): readonly IpFamily[] {
    return family === undefined ? this.options.families : [family];
  }
}

interface Evaluation {
  readonly healthy: boolean;
  /** Latest successful sync over all families; undefined (Go's zero time) before any. */
  readonly lastUpdatedWall: number | undefined;
  readonly status: Map<IpFamily, ProxierHealthStatus>;
}
