// Names for a trace's answer: which Service port a virtual server belongs to and which pod (on
// which node) each real server is, from the cluster objects (manifests, a plan) or from the
// running daemon's /status document.
import type { ClusterTracker } from '../cluster/tracker.js';
import { podsOf } from '../observe/status-build.js';
import type { StatusDocument } from '../observe/status-document.js';
import { hostPort } from '../model/types.js';
import { OwnerIndex } from '../plan/owners.js';
import type { TraceNaming, TraceResult } from '../plan/trace.js';

export interface PodName {
  readonly pod?: string;
  readonly node?: string;
}

export interface TraceNames {
  /** The service port key ("ns/name:port/PROTO") of a virtual server "IP:port/PROTO". */
  service(vsKeyText: string): string | undefined;
  /** The pod behind a real server "IP:port". */
  pod(endpoint: string): PodName | undefined;
}

export function nameTrace(r: TraceResult, names: TraceNames): TraceNaming {
  const service = r.virtualServer !== undefined ? names.service(r.virtualServer) : undefined;
  const realServers: Record<string, PodName> = {};
  for (const p of r.perRealServer) {
    const n = names.pod(p.realServer);
    if (n) realServers[p.realServer] = n;
  }
  return { ...(service !== undefined ? { service } : {}), realServers };
}

/** From the objects a tracker holds (drained). */
export function namesFromTracker(tracker: ClusterTracker): TraceNames {
  const snapshot = tracker.current();
  const owners = OwnerIndex.fromSnapshot(snapshot);
  let pods: Map<string, PodName> | undefined;
  const podIndex = (): Map<string, PodName> => {
    if (pods) return pods;
    pods = new Map();
    for (const [key, eps] of snapshot.endpoints) {
      const byIp = podsOf(tracker.objectsOf(key).slices);
      for (const list of eps.byPort.values()) {
        for (const ep of list) {
          const pod = byIp.get(ep.ip);
          pods.set(hostPort(ep.ip, ep.port), { ...(pod !== undefined ? { pod } : {}), ...(ep.nodeName !== undefined ? { node: ep.nodeName } : {}) });
        }
      }
    }
    return pods;
  };
  return {
    service: (k) => owners.ofVirtualServer(k)[0],
    pod: (endpoint) => podIndex().get(endpoint),
  };
}

/** From the daemon's /status document (unfiltered). */
export function namesFromStatus(doc: StatusDocument): TraceNames {
  const services = new Map<string, string>();
  const pods = new Map<string, PodName>();
  for (const s of doc.services) {
    for (const v of s.virtualServers) services.set(v.key, s.key);
    for (const r of s.realServers) {
      if (r.pod === undefined && r.node === undefined) continue;
      pods.set(r.endpoint, { ...(r.pod !== undefined ? { pod: r.pod } : {}), ...(r.node !== undefined ? { node: r.node } : {}) });
    }
  }
  return { service: (k) => services.get(k), pod: (e) => pods.get(e) };
}
