// A daemon over the in-memory kernel, as `kube-ipvs run` wires it: the proxier (real clock, so
// sync durations are real), the observability servers with /status, /diff and /ui, and a small
// shop cluster of every service type. Tests drive syncs by hand; the kernel's counters and
// connection counts are set through the fake's hooks where traffic would have made them.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { startObservability } from '../../src/cli/observability.js';
import type { Observability } from '../../src/cli/observability.js';
import type { ProxyConfig } from '../../src/config/types.js';
import { createLogger } from '../../src/observe/log.js';
import type { Clock } from '../../src/model/clock.js';
import { realClock } from '../../src/model/clock.js';
import type { SyncOutcome } from '../../src/sync/proxier.js';
import { Proxier } from '../../src/sync/proxier.js';
import { fakeNode } from './fake-dataplane.js';
import type { FakeNode } from './fake-dataplane.js';
import { config as makeConfig, NODE, service } from './world.js';

export interface FakeDaemon {
  readonly node: FakeNode;
  readonly proxier: Proxier;
  readonly obs: Observability;
  readonly config: ProxyConfig;
  /** "http://127.0.0.1:PORT" of the metrics server. */
  readonly url: string;
  readonly logs: string[];
  sync(full?: boolean): Promise<SyncOutcome>;
  close(): Promise<void>;
}

export const DRAIN_TIMEOUT_MS = 15 * 60 * 1000;

export async function startFakeDaemon(opts: { config?: ProxyConfig; clock?: Clock } = {}): Promise<FakeDaemon> {
  const config = opts.config ?? { ...makeConfig(), healthzBindAddress: '', metricsBindAddress: '127.0.0.1:0' };
  const node = fakeNode({ config });
  const clock = opts.clock ?? realClock;
  // The fake node's own proxier runs on a manual clock; the daemon's runs on real time.
  const proxier = new Proxier({ config, dataplane: node.dataplane, tracker: node.tracker, clock, kernelVersion: '6.1.0', drainTimeoutMs: DRAIN_TIMEOUT_MS });
  const logs: string[] = [];
  const obs = await startObservability({
    config,
    log: createLogger('text', (l) => void logs.push(l)),
    dataplane: node.dataplane,
    tracker: node.tracker,
    events: { warn: () => undefined },
    nodeEligible: () => true,
    ownerOf: (k) => proxier.virtualServerOwner(k),
    status: {
      draining: () => proxier.drainingServers(),
      drainTimeoutMs: DRAIN_TIMEOUT_MS,
      clock,
      source: () => ({ kind: 'manifests', target: '/etc/kube-ipvs/cluster', connected: true, failing: [] }),
    },
  });
  if (!obs.metricsAddress) throw new Error('the metrics server did not start');
  return {
    node,
    proxier,
    obs,
    config,
    url: `http://${obs.metricsAddress}`,
    logs,
    async sync(full = false) {
      obs.queued();
      const r = await proxier.sync({ full });
      obs.synced(r);
      return r;
    },
    close: () => obs.close(),
  };
}

type Ep = { ip: string; pod: string; node: string; zone: string; ready?: boolean; serving?: boolean; terminating?: boolean };

/** An EndpointSlice whose endpoints name their pods (targetRef), as the controller writes them. */
export function podSlice(svc: string, namespace: string, ports: Array<{ name?: string; port: number; protocol?: string }>, eps: Ep[], name = `${svc}-abc12`): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports,
    endpoints: eps.map((e) => ({
      addresses: [e.ip],
      nodeName: e.node,
      zone: e.zone,
      targetRef: { kind: 'Pod', namespace, name: e.pod },
      conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
    })),
  };
}

/** The shop cluster: every service type, pods on this node and another, an invalid Service and a VIP two Services want. */
export function shopCluster(): { services: V1Service[]; slices: V1EndpointSlice[] } {
  const services = [
    service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }, {}, 'shop'),
    service('checkout', { type: 'NodePort', clusterIP: '10.96.0.20', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }, {}, 'shop'),
    service('kube-dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] }, {}, 'kube-system'),
    service('ingress', { type: 'LoadBalancer', clusterIP: '10.96.0.30', sessionAffinity: 'ClientIP', ports: [{ name: 'https', port: 443, nodePort: 30443 }] }, { status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }] } } }, 'default'),
    service('legacy', { clusterIP: '10.96.0.77', ports: [{ name: 'http', port: 80 }] }, {}, 'default'),
    service('legacy-copy', { clusterIP: '10.96.0.77', ports: [{ name: 'http', port: 80 }] }, {}, 'default'),
    service('broken', { clusterIP: '10.96.0.99', ports: [{ name: 'http', port: 70000 }] }, {}, 'default'),
  ];
  const slices = [
    podSlice('web', 'shop', [{ name: 'http', port: 8080 }], [
      { ip: '10.244.1.11', pod: 'web-7d9c5-x2kqp', node: NODE, zone: 'eu-west-1a' },
      { ip: '10.244.2.12', pod: 'web-7d9c5-m8rtz', node: 'node-b', zone: 'eu-west-1b' },
      { ip: '10.244.1.13', pod: 'web-7d9c5-qw4lb', node: NODE, zone: 'eu-west-1a' },
    ]),
    podSlice('checkout', 'shop', [{ name: 'http', port: 8080 }], [
      { ip: '10.244.1.21', pod: 'checkout-5f6d8-ab1cd', node: NODE, zone: 'eu-west-1a' },
      { ip: '10.244.2.22', pod: 'checkout-5f6d8-ef2gh', node: 'node-b', zone: 'eu-west-1b' },
    ]),
    podSlice('kube-dns', 'kube-system', [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }], [
      { ip: '10.244.1.5', pod: 'coredns-76f75-4vx9n', node: NODE, zone: 'eu-west-1a' },
      { ip: '10.244.2.6', pod: 'coredns-76f75-9kq2w', node: 'node-b', zone: 'eu-west-1b' },
    ]),
    podSlice('ingress', 'default', [{ name: 'https', port: 8443 }], [
      { ip: '10.244.1.31', pod: 'ingress-nginx-controller-0', node: NODE, zone: 'eu-west-1a' },
      { ip: '10.244.2.32', pod: 'ingress-nginx-controller-1', node: 'node-b', zone: 'eu-west-1b', ready: false, serving: true, terminating: true },
    ]),
    podSlice('legacy', 'default', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.41', pod: 'legacy-0', node: NODE, zone: 'eu-west-1a' }]),
  ];
  return { services, slices };
}
