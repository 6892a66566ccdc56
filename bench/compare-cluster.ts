// The cluster bench/compare loads into the API server for the VM's node: bench/plan's type mix
// (synthetic-cluster.ts: 60 % ClusterIP, 30 % NodePort, 10 % LoadBalancer, one TCP port, one
// endpoint in 20 on this node), the API server's own default/kubernetes Service given the
// EndpointSlice that reaches it from the guest, and the churn writer that changes EndpointSlices.
import { GUEST_HOST } from '../test/helpers/guest-conductor.js';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { TestApiServer } from '../test/helpers/apiserver.js';
import { apiRequest } from '../test/helpers/apiserver.js';
import { NODE, NODE_IP } from '../test/fidelity/scenario.js';
import { TRIGGER_TIME_ANNOTATION } from '../src/cluster/tracker.js';
import { endpointIp, kindOf, mixedService, syntheticSlice } from './synthetic-cluster.js';

/**
 * Service i of the benchmark is synthetic service i + FIRST: its cluster IP 10.96.1.0 + i stays
 * clear of 10.96.0.1 (default/kubernetes) inside the API server's 10.96.0.0/16, and its node port
 * 20256 + i inside NODE_PORT_RANGE.
 */
const FIRST = 0x100;
export const NODE_PORT_RANGE = '20000-32767';
const NAMESPACES = 50;

export interface Shape {
  readonly services: number;
  readonly endpoints: number;
}

export const shapeLabel = (s: Shape): string => `${s.services.toLocaleString('en')} Services × ${s.endpoints} endpoints`;

function service(i: number): V1Service {
  return mixedService(i + FIRST);
}

/** Endpoint e is on this node one time in 20 (KUBE-LOOP-BACK gets entries), elsewhere otherwise. */
const nodeOf = (e: number): string => (e % 20 === 0 ? NODE : `node-${e}`);

function slice(i: number, shape: Shape, generation: number, triggerTime?: string): V1EndpointSlice {
  const j = i + FIRST;
  return syntheticSlice(j, (e) => endpointIp(j, e, generation, shape.endpoints), {
    endpoints: shape.endpoints,
    namespaces: NAMESPACES,
    nodeOf,
    ...(triggerTime ? { annotations: { [TRIGGER_TIME_ANNOTATION]: triggerTime } } : {}),
  });
}

/** What a proxy has programmed once it has the whole cluster (default/kubernetes included). */
export function expectedCounts(shape: Shape): { ipvs: Record<string, number>; nftables: Record<string, number> } {
  let vs = 1;
  let lb = 0;
  for (let i = 0; i < shape.services; i++) {
    const kind = kindOf(i + FIRST);
    // The cluster IP; a node port on the node's one address (eth0); the load balancer's IP.
    vs += kind === 'ClusterIP' ? 1 : kind === 'NodePort' ? 2 : 3;
    if (kind === 'LoadBalancer') lb++;
  }
  return {
    ipvs: { vs, rs: (vs - 1) * shape.endpoints + 1 },
    // service-ips holds each cluster IP and load-balancer IP; each service chain's DNAT map
    // holds its endpoints.
    nftables: { services: 1 + shape.services + lb, endpoints: shape.services * shape.endpoints + 1 },
  };
}

/** Runs `jobs` with at most `width` in flight. */
async function pool(jobs: ReadonlyArray<() => Promise<void>>, width: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < jobs.length) await (jobs[next++] as () => Promise<void>)();
    }),
  );
}

async function must(server: TestApiServer, method: string, path: string, body?: unknown): Promise<void> {
  const r = await apiRequest(server, method, path, body);
  if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
}

const slicePath = (i: number): string => `/apis/discovery.k8s.io/v1/namespaces/ns-${(i + FIRST) % NAMESPACES}/endpointslices/svc-${i + FIRST}-abc`;

/** Puts the Node, the Services and their EndpointSlices, and default/kubernetes's EndpointSlice. */
export async function loadCluster(server: TestApiServer, shape: Shape): Promise<void> {
  await must(server, 'POST', '/api/v1/nodes', { metadata: { name: NODE, labels: { 'kubernetes.io/hostname': NODE } } });
  await must(server, 'PATCH', `/api/v1/nodes/${NODE}/status`, { status: { addresses: [{ type: 'InternalIP', address: NODE_IP }, { type: 'Hostname', address: NODE }] } });
  // The API server runs with --endpoint-reconciler-type=none: its own Service has no endpoints
  // until we give it the address the guest reaches it at.
  await must(server, 'POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'kubernetes', namespace: 'default', labels: { 'kubernetes.io/service-name': 'kubernetes' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [GUEST_HOST], conditions: { ready: true } }],
    ports: [{ name: 'https', port: server.port, protocol: 'TCP' }],
  });
  await pool(Array.from({ length: NAMESPACES }, (_, n) => () => must(server, 'POST', '/api/v1/namespaces', { metadata: { name: `ns-${n}` } })), 8);
  await pool(
    Array.from({ length: shape.services }, (_, i) => async () => {
      const { status, ...spec } = service(i);
      const ns = spec.metadata?.namespace ?? '';
      await must(server, 'POST', `/api/v1/namespaces/${ns}/services`, spec);
      if (status) await must(server, 'PATCH', `/api/v1/namespaces/${ns}/services/${spec.metadata?.name}/status`, { status });
    }),
    16,
  );
  await pool(
    Array.from({ length: shape.services }, (_, i) => () => must(server, 'POST', `/apis/discovery.k8s.io/v1/namespaces/ns-${(i + FIRST) % NAMESPACES}/endpointslices`, slice(i, shape, 0))),
    16,
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Changes EndpointSlices at a steady rate, each change replacing one endpoint of one Service
 * (the next generation shifts its addresses by one) and stamped with the trigger time a proxy's
 * network_programming_duration starts from, in the guest's clock. reset() puts every changed
 * slice back, so that each proxy starts from the same cluster.
 */
export class ChurnWriter {
  private readonly generation = new Map<number, number>();
  private next = 0;

  constructor(
    private readonly server: TestApiServer,
    private readonly shape: Shape,
  ) {}

  /** `rate` changes per second for `seconds`; `offsetS` is the guest's clock minus ours. */
  async run(seconds: number, rate: number, offsetS: number): Promise<{ changes: number; failed: number; lateMs: number }> {
    const total = Math.max(1, Math.round(seconds * rate));
    const t0 = Date.now();
    let failed = 0;
    let lateMs = 0;
    const inFlight = new Set<Promise<void>>();
    for (let k = 0; k < total; k++) {
      const due = t0 + (k * 1000) / rate;
      if (due > Date.now()) await sleep(due - Date.now());
      lateMs = Math.max(lateMs, Date.now() - due);
      // A prime stride visits every Service before any comes back.
      const i = (this.next++ * 7919) % this.shape.services;
      const g = (this.generation.get(i) ?? 0) + 1;
      this.generation.set(i, g);
      const stamp = new Date(Date.now() + offsetS * 1000).toISOString();
      const p = apiRequest(this.server, 'PUT', slicePath(i), slice(i, this.shape, g, stamp)).then(
        (r) => {
          if (r.status >= 300) failed++;
        },
        () => {
          failed++;
        },
      );
      const tracked: Promise<void> = p.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= 16) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    return { changes: total, failed, lateMs };
  }

  async reset(): Promise<void> {
    const changed = [...this.generation.keys()];
    await pool(changed.map((i) => () => must(this.server, 'PUT', slicePath(i), slice(i, this.shape, 0))), 16);
    this.generation.clear();
  }
}
