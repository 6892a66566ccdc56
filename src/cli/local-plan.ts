// The plan `kube-ipvs run` would program on this node, made here without a daemon: the cluster
// from manifests (as `run --manifests`: node IPs from the interfaces when no Node object is
// given) or listed once from the API server (as `run`: node IPs from the Node object), planned by
// a Proxier over the real dataplane that only reads (Proxier.preview). For `kube-ipvs diff`.
import { cpus } from 'node:os';
import type { V1Node } from '@kubernetes/client-node';
import { ApiSource } from '../cluster/api-source.js';
import { loadKubeConfig } from '../cluster/api/kubeconfig.js';
import { loadManifests } from '../cluster/manifests.js';
import type { Problem } from '../cluster/problems.js';
import { ClusterTracker } from '../cluster/tracker.js';
import type { ProxyConfig } from '../config/types.js';
import { kernelRelease } from '../dataplane/netif/real.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { Logger } from '../observe/log.js';
import type { DesiredState } from '../plan/desired.js';
import { realClock } from '../sync/clock.js';
import { Proxier } from '../sync/proxier.js';

/** How long listing the cluster may take before giving up. */
const LIST_TIMEOUT_MS = 60_000;

export interface LocalPlan {
  readonly state: DesiredState;
  /** The cluster the plan was made from. */
  readonly tracker: ClusterTracker;
  readonly problems: readonly Problem[];
}

export async function planHere(o: { config: ProxyConfig; dataplane: Dataplane; manifests: readonly string[]; log: Logger }): Promise<LocalPlan> {
  const problems: Problem[] = [];
  const tracker = new ClusterTracker(o.config.hostnameOverride, (p) => problems.push(p));
  let node: V1Node | undefined;
  if (o.manifests.length > 0) {
    const objects = loadManifests(o.manifests);
    for (const s of objects.services) tracker.upsertService(s);
    for (const s of objects.endpointSlices) tracker.upsertEndpointSlice(s);
    node = objects.nodes.find((n) => n.metadata?.name === o.config.hostnameOverride);
  } else {
    const api = new ApiSource({ kc: loadKubeConfig({ kubeconfig: o.config.kubeconfig, master: o.config.master }), tracker, nodeName: o.config.hostnameOverride, log: o.log, onChange: () => undefined });
    api.start();
    try {
      await api.waitForInitialSync(LIST_TIMEOUT_MS);
      node = api.node();
    } finally {
      api.close();
    }
  }
  const randomFully = await Promise.all(o.dataplane.iptables.map((b) => b.supportsRandomFully())).then((r) => r.every(Boolean));
  const proxier = new Proxier({
    config: o.config,
    dataplane: o.dataplane,
    tracker,
    clock: realClock,
    nodeObject: () => node,
    nodeIPsFromInterfaces: o.manifests.length > 0,
    kernelVersion: await kernelRelease(),
    cpuCount: cpus().length,
    randomFully,
  });
  const state = await proxier.preview();
  return { state, tracker, problems };
}
