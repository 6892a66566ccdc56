// Names for a trace's answer: which Service port a virtual server belongs to and which pod (on
// which node) each real server is, from the cluster objects (manifests, a plan) or from the
// running daemon's /status document.
import type { ClusterTracker } from '../cluster/tracker.js';
import { podsOf } from '../observe/status-build.js';
import type { StatusDocument } from '../observe/status-document.js';
import { hostPort } from '../model/types.js';
import { OwnerIndex } from '../plan/owners.js';
import type { TraceNaming, TraceResult } from '../trace/trace.js';

export interface PodName {
  readonly pod?: string;
  readonly node?: string;
}

export interface TraceNames {
  /** The service port key ("ns/name:port/PROTO") of a virtual server "IP:port/PROTO". */
  service(vsKeyText: string): string | undefined;
  /** The pod behind a real server "IP:port" of that service port (or of any, without one). */
  pod(endpoint: string, servicePort: string | undefined): PodName | undefined;
}

export function nameTrace(r: TraceResult, names: TraceNames): TraceNaming {
  const service = r.virtualServer !== undefined ? names.service(r.virtualServer) : undefined;
  const realServers: Record<string, PodName> = {};
  for (const p of r.perRealServer) {
    const n = names.pod(p.realServer, service);
    if (n) realServers[p.realServer] = n;
  }
  return { ...(service !== undefined ? { service } : {}), realServers };
}

/** Pods by service port and endpoint, so one address named differently by two Services stays right. */
class PodIndex {
  private readonly byPort = new Map<string, PodName>();
  private readonly any = new Map<string, PodName>();

  add(servicePort: string, endpoint: string, name: PodName): void {
    this.byPort.set(`${servicePort} ${endpoint}`, name);
    if (!this.any.has(endpoint)) this.any.set(endpoint, name);
  }

  get(endpoint: string, servicePort: string | undefined): PodName | undefined {
    return (servicePort !== undefined ? this.byPort.get(`${servicePort} ${endpoint}`) : undefined) ?? this.any.get(endpoint);
  }
}

const podName = (pod: string | undefined, node: string | undefined): PodName => ({ ...(pod !== undefined ? { pod } : {}), ...(node !== undefined ? { node } : {}) });

/** From the objects a tracker holds (drained). */
export function namesFromTracker(tracker: ClusterTracker): TraceNames {
  const snapshot = tracker.current();
  const owners = OwnerIndex.fromSnapshot(snapshot);
  let pods: PodIndex | undefined;
  const podIndex = (): PodIndex => {
    if (pods) return pods;
    pods = new PodIndex();
    for (const [key, eps] of snapshot.endpoints) {
      const byIp = podsOf(tracker.objectsOf(key).slices);
      for (const [portKey, list] of eps.byPort) {
        for (const ep of list) pods.add(portKey, hostPort(ep.ip, ep.port), podName(byIp.get(ep.ip), ep.nodeName));
      }
    }
    return pods;
  };
  return {
    service: (k) => owners.ofVirtualServer(k)[0],
    pod: (endpoint, servicePort) => podIndex().get(endpoint, servicePort),
  };
}

/** From the daemon's /status document (unfiltered). */
export function namesFromStatus(doc: StatusDocument): TraceNames {
  const services = new Map<string, string>();
  const pods = new PodIndex();
  for (const s of doc.services) {
    for (const v of s.virtualServers) services.set(v.key, s.key);
    for (const r of s.realServers) {
      if (r.pod === undefined && r.node === undefined) continue;
      pods.add(s.key, r.endpoint, podName(r.pod, r.node));
    }
  }
  return { service: (k) => services.get(k), pod: (e, sp) => pods.get(e, sp) };
}
