// The synthetic clusters the benchmarks load: numbered services, each with one EndpointSlice of
// one TCP port, addresses derived from the service and endpoint numbers so runs are repeatable.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { loadConfig } from '../src/config/load.js';
import type { ProxyConfig } from '../src/config/types.js';

export const BENCH_NODE = 'node-a';

/** The proxy configuration every benchmark runs with: the defaults, on BENCH_NODE. */
export function benchConfig(): ProxyConfig {
  return loadConfig(['--hostname-override', BENCH_NODE], { extraFlags: [], hostname: BENCH_NODE, readFile: () => '' }).config;
}

export function ip4(base: number, n: number): string {
  return `${base}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

/** Endpoint e of service i at a generation (each generation shifts every address by one). */
export function endpointIp(i: number, e: number, generation: number, endpointsPerService: number): string {
  return ip4(10, 0xf40000 + ((i * endpointsPerService + e + generation) % 0x0bffff));
}

export type ServiceKind = 'ClusterIP' | 'NodePort' | 'LoadBalancer';

/** 60% ClusterIP, 30% NodePort, 10% LoadBalancer. */
export function kindOf(i: number): ServiceKind {
  return i % 10 < 6 ? 'ClusterIP' : i % 10 < 9 ? 'NodePort' : 'LoadBalancer';
}

export const clusterIp = (i: number): string => ip4(10, 0x600000 + i);
export const lbIp = (i: number): string => ip4(172, 0x100000 + i);
/** Unique per service, so no two services share a node port. */
export const nodePort = (i: number): number => 20000 + i;

/** Service i of the mixed cluster: unique ClusterIP, node port and LB IP, in one of 50 namespaces. */
export function mixedService(i: number): V1Service {
  const kind = kindOf(i);
  const port: { name: string; port: number; protocol: string; nodePort?: number } = { name: 'http', port: 80, protocol: 'TCP' };
  if (kind !== 'ClusterIP') port.nodePort = nodePort(i);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i}`, namespace: `ns-${i % 50}` },
    spec: { type: kind, clusterIP: clusterIp(i), ports: [port] },
    ...(kind === 'LoadBalancer' ? { status: { loadBalancer: { ingress: [{ ip: lbIp(i) }] } } } : {}),
  };
}

export interface SliceOptions {
  readonly endpoints: number;
  readonly namespaces?: number;
  /** Endpoint e's node; none when absent. */
  readonly nodeOf?: (e: number) => string;
  readonly annotations?: Record<string, string>;
}

/** Service i's EndpointSlice (port http → 8080) with the addresses `address(e)`. */
export function syntheticSlice(i: number, address: (e: number) => string, o: SliceOptions): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `svc-${i}-abc`,
      namespace: `ns-${i % (o.namespaces ?? 50)}`,
      labels: { 'kubernetes.io/service-name': `svc-${i}` },
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: Array.from({ length: o.endpoints }, (_, e) => ({
      addresses: [address(e)],
      ...(o.nodeOf ? { nodeName: o.nodeOf(e) } : {}),
      conditions: { ready: true },
    })),
  };
}

/** One endpoint in 20 on this node (so KUBE-LOOP-BACK gets entries too). */
export function mostlyRemote(e: number): string {
  return e % 20 === 0 ? BENCH_NODE : `node-${e}`;
}
