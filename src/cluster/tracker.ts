// Keeps the latest Service and EndpointSlice objects and hands the sync loop a snapshot plus the
// services that really changed since the last hand-over. Changes that cancel out (an update and
// its revert, an add then delete) produce no change, as in kube-proxy's change trackers.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { ServiceEndpoints, ServiceInfo, ServiceKey } from '../model/types.js';
import { serviceKey } from '../model/types.js';
import { deepEqual } from '../model/equal.js';
import { endpointsFromSlices, sliceServiceKey } from './endpoints.js';
import type { Problem, ProblemSink } from './problems.js';
import { objectMeta } from './shape.js';
import { toServiceInfo } from './service.js';

export interface ClusterSnapshot {
  readonly services: ReadonlyMap<ServiceKey, ServiceInfo>;
  readonly endpoints: ReadonlyMap<ServiceKey, ServiceEndpoints>;
}

export interface ClusterChanges {
  readonly snapshot: ClusterSnapshot;
  /** Services whose ServiceInfo or endpoints differ from the previous hand-over. */
  readonly changed: ReadonlySet<ServiceKey>;
  readonly serviceChanges: number;
  readonly endpointChanges: number;
  /**
   * Per changed service, the earliest endpoints.kubernetes.io/last-change-trigger-time (ms since
   * the epoch) among the slices that changed it: the start of kube-proxy's network programming
   * latency.
   */
  readonly triggerTimes: ReadonlyMap<ServiceKey, number>;
}

/** The EndpointSlice controller stamps when the change that produced this slice happened. */
export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

function triggerTimeOf(slice: V1EndpointSlice): number | undefined {
  const raw = objectMeta(slice).annotations[TRIGGER_TIME_ANNOTATION];
  if (raw === undefined) return undefined;
  const t = Date.parse(raw);
  return Number.isFinite(t) ? t : undefined;
}

interface Derived {
  info: ServiceInfo | undefined;
  endpoints: ServiceEndpoints | undefined;
}

function sliceKey(slice: V1EndpointSlice): string {
  const m = objectMeta(slice);
  return `${m.namespace}/${m.name ?? ''}`;
}

export class ClusterTracker {
  private readonly services = new Map<ServiceKey, V1Service>();
  private readonly slices = new Map<string, { svc: ServiceKey; slice: V1EndpointSlice }>();
  private readonly slicesByService = new Map<ServiceKey, Set<string>>();
  private readonly derived = new Map<ServiceKey, Derived>();
  private readonly infos = new Map<ServiceKey, ServiceInfo>();
  private readonly endpointsMap = new Map<ServiceKey, ServiceEndpoints>();
  private readonly dirtyServices = new Set<ServiceKey>();
  private readonly dirtyEndpoints = new Set<ServiceKey>();
  private readonly triggerTimes = new Map<ServiceKey, number>();
  /** The problems each service's last derivation found, service and slices apart (status). */
  private readonly problemsOf = new Map<ServiceKey, { service: readonly Problem[]; endpoints: readonly Problem[] }>();

  constructor(
    private nodeName: string,
    private readonly report: ProblemSink,
  ) {}

  /** Number of objects whose changes wait for the next drain (for the *_changes_pending metrics). */
  get pending(): { services: number; endpoints: number } {
    return { services: this.dirtyServices.size, endpoints: this.dirtyEndpoints.size };
  }

  upsertService(svc: V1Service): void {
    const m = objectMeta(svc);
    const key = serviceKey(m.namespace, m.name ?? '');
    this.services.set(key, svc);
    this.dirtyServices.add(key);
  }

  deleteService(namespace: string, name: string): void {
    const key = serviceKey(namespace, name);
    if (this.services.delete(key)) this.dirtyServices.add(key);
  }

  upsertEndpointSlice(slice: V1EndpointSlice): void {
    const key = sliceKey(slice);
    const old = this.slices.get(key);
    if (old) this.unlinkSlice(key, old.svc);
    const svc = sliceServiceKey(slice);
    if (svc === undefined) {
      this.slices.delete(key);
      return;
    }
    this.slices.set(key, { svc, slice });
    const t = triggerTimeOf(slice);
    const prev = this.triggerTimes.get(svc);
    if (t !== undefined && (prev === undefined || t < prev)) this.triggerTimes.set(svc, t);
    let set = this.slicesByService.get(svc);
    if (!set) this.slicesByService.set(svc, (set = new Set()));
    set.add(key);
    this.dirtyEndpoints.add(svc);
  }

  deleteEndpointSlice(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const old = this.slices.get(key);
    if (!old) return;
    this.slices.delete(key);
    this.unlinkSlice(key, old.svc);
  }

  private unlinkSlice(key: string, svc: ServiceKey): void {
    const set = this.slicesByService.get(svc);
    set?.delete(key);
    if (set && set.size === 0) this.slicesByService.delete(svc);
    this.dirtyEndpoints.add(svc);
  }

  /** Local-ness of endpoints depends on the node name; a new name re-derives every service. */
  setNodeName(name: string): void {
    if (name === this.nodeName) return;
    this.nodeName = name;
    for (const k of this.slicesByService.keys()) this.dirtyEndpoints.add(k);
  }

  /** The derived state as of the last drain (live maps: read, never keep). */
  current(): ClusterSnapshot {
    return { services: this.infos, endpoints: this.endpointsMap };
  }

  /** The latest Service and EndpointSlice objects of a service, as received (status shows types and pods). */
  objectsOf(key: ServiceKey): { service: V1Service | undefined; slices: V1EndpointSlice[] } {
    const keys = this.slicesByService.get(key);
    const slices = keys ? [...keys].map((k) => this.slices.get(k)?.slice).filter((s): s is V1EndpointSlice => s !== undefined) : [];
    return { service: this.services.get(key), slices };
  }

  /** What is wrong with the objects as of the last drain: each object's skipped fields or the object itself. */
  problems(): Problem[] {
    return [...this.problemsOf.values()].flatMap((p) => [...p.service, ...p.endpoints]);
  }

  /**
   * Applies pending changes and reports which services changed since the last drain. With `only`,
   * applies those services' changes alone and leaves the rest pending (a first sync programs the
   * API server's own Service before deriving the whole cluster).
   */
  drain(only?: Iterable<ServiceKey>): ClusterChanges {
    const keys = only === undefined ? new Set([...this.dirtyServices, ...this.dirtyEndpoints]) : new Set([...only].filter((k) => this.dirtyServices.has(k) || this.dirtyEndpoints.has(k)));
    const changed = new Set<ServiceKey>();
    const triggerTimes = new Map<ServiceKey, number>();
    let serviceChanges = 0;
    let endpointChanges = 0;
    for (const key of keys) {
      const serviceDirty = this.dirtyServices.delete(key);
      const endpointsDirty = this.dirtyEndpoints.delete(key);
      if (serviceDirty) serviceChanges++;
      if (endpointsDirty) endpointChanges++;
      const t = this.triggerTimes.get(key);
      this.triggerTimes.delete(key);
      if (!this.rederive(key, serviceDirty, endpointsDirty)) continue;
      changed.add(key);
      if (t !== undefined) triggerTimes.set(key, t);
    }
    return { snapshot: { services: this.infos, endpoints: this.endpointsMap }, changed, serviceChanges, endpointChanges, triggerTimes };
  }

  private rederive(key: ServiceKey, serviceDirty: boolean, endpointsDirty: boolean): boolean {
    const prev = this.derived.get(key);
    const raw = this.services.get(key);
    const found = this.problemsOf.get(key) ?? { service: [], endpoints: [] };
    // Each derivation replaces the problems it can find, so a fixed object stops being listed.
    const collect = (into: Problem[]) => (p: Problem): void => {
      into.push(p);
      this.report(p);
    };
    let serviceProblems = found.service;
    let endpointProblems = found.endpoints;
    let info = prev?.info;
    if (serviceDirty) {
      const list: Problem[] = [];
      info = raw ? toServiceInfo(raw, collect(list)) : undefined;
      serviceProblems = list;
    }
    let endpoints = prev?.endpoints;
    if (endpointsDirty || !prev) {
      const list: Problem[] = [];
      const { slices } = this.objectsOf(key);
      endpoints = slices.length > 0 ? endpointsFromSlices(key, slices, this.nodeName, collect(list)) : undefined;
      endpointProblems = list;
    }
    if (serviceProblems.length > 0 || endpointProblems.length > 0) this.problemsOf.set(key, { service: serviceProblems, endpoints: endpointProblems });
    else this.problemsOf.delete(key);
    const same = deepEqual(prev?.info, info) && deepEqual(prev?.endpoints?.byPort, endpoints?.byPort);
    if (info) this.infos.set(key, info);
    else this.infos.delete(key);
    if (endpoints) this.endpointsMap.set(key, endpoints);
    else this.endpointsMap.delete(key);
    if (!info && !endpoints) this.derived.delete(key);
    else this.derived.set(key, { info, endpoints });
    return !same;
  }
}
