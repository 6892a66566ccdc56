// The plan `kube-ipvs run` would program on this node, made here without a daemon: the cluster
// from manifests (as `run --manifests`: node IPs from the interfaces when no Node object is
// given) or listed once from the API server (as `run`: node IPs from the Node object), planned by
// a Proxier over the node's dataplane that only reads (Proxier.preview). For `kube-ipvs diff`.
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
import { realClock } from '../model/clock.js';
import { Proxier } from '../sync/proxier.js';
import { errorMessage } from '../model/error-text.js';

/** How long listing the cluster may take before giving up. */
const LIST_TIMEOUT_MS = 60_000;

/** The cluster could not be listed (unreachable, forbidden, too slow); the message says which. */
export class ClusterListError extends Error {
  override readonly name = 'ClusterListError';
}

/** The cluster as `run` would see it at start: the objects in a tracker, and this node's Node. */
export interface LocalCluster {
  readonly tracker: ClusterTracker;
  readonly node: V1Node | undefined;
  /** Invalid objects, skipped or planned without the bad field. */
  readonly problems: readonly Problem[];
  /** Manifests: node IPs from the interfaces unless a Node is given (as `run --manifests`). */
  readonly fromManifests: boolean;
}

/** Reads the manifests, or lists Services, EndpointSlices and the Node once from the API server. */
export async function loadCluster(o: { config: ProxyConfig; manifests: readonly string[]; log: Logger }): Promise<LocalCluster> {
  const problems: Problem[] = [];
  const tracker = new ClusterTracker(o.config.hostnameOverride, (p) => problems.push(p));
  if (o.manifests.length > 0) {
    const objects = loadManifests(o.manifests);
    for (const s of objects.services) tracker.upsertService(s);
    for (const s of objects.endpointSlices) tracker.upsertEndpointSlice(s);
    return { tracker, node: objects.nodes.find((n) => n.metadata?.name === o.config.hostnameOverride), problems, fromManifests: true };
  }
  const api = new ApiSource({ connection: loadKubeConfig({ kubeconfig: o.config.kubeconfig, master: o.config.master }), tracker, nodeName: o.config.hostnameOverride, log: o.log, onChange: () => undefined });
  api.start();
  try {
    await api.waitForInitialSync(LIST_TIMEOUT_MS);
    return { tracker, node: api.node(), problems, fromManifests: false };
  } catch (e) {
    throw new ClusterListError(errorMessage(e));
  } finally {
    api.close();
  }
}

/** What the next sync of a node over this dataplane would program; writes nothing. */
export async function planOn(cluster: LocalCluster, config: ProxyConfig, dataplane: Dataplane): Promise<DesiredState> {
  const randomFully = await Promise.all(dataplane.iptables.map((b) => b.supportsRandomFully())).then((r) => r.every(Boolean));
  const proxier = new Proxier({
    config,
    dataplane,
    tracker: cluster.tracker,
    clock: realClock,
    nodeObject: () => cluster.node,
    nodeIPsFromInterfaces: cluster.fromManifests,
    kernelVersion: await kernelRelease(),
    cpuCount: cpus().length,
    randomFully,
  });
  return proxier.preview();
}
