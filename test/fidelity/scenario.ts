// What one fidelity scenario is: the flags both proxies get, the Node, the objects the API server
// holds, and the changes applied one step at a time. Builders keep scenarios short.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

/** The guest's node name and its user-network address (test/vm/guest/run.sh). */
export const NODE = 'kube-ipvs-vm';
export const NODE_IP = '10.0.2.15';
/** An IPv6 address the guest adds to eth0 for scenarios whose node has one. */
export const NODE_IP6 = 'fd00:2::15';
export const OTHER_NODE = 'node-b';

export interface NodeSpec {
  readonly addresses: readonly { readonly type: 'InternalIP' | 'ExternalIP' | 'Hostname'; readonly address: string }[];
  readonly labels?: Readonly<Record<string, string>>;
  readonly podCIDRs?: readonly string[];
  /** Addresses (CIDR form) the guest's eth0 gets for this scenario, beyond 10.0.2.15/24. */
  readonly guestAddresses?: readonly string[];
}

export interface ObjectSet {
  readonly services: readonly V1Service[];
  readonly slices: readonly V1EndpointSlice[];
}

/** One change: objects created or replaced, objects deleted ("ns/name"), the Node replaced. */
export interface Step {
  readonly description: string;
  readonly upsert?: Partial<ObjectSet>;
  readonly deleteServices?: readonly string[];
  readonly deleteSlices?: readonly string[];
  readonly node?: NodeSpec;
}

export interface Scenario {
  readonly id: string;
  readonly description: string;
  /** kube-proxy flags given to both proxies (the harness adds --kubeconfig and --hostname-override). */
  readonly flags: readonly string[];
  readonly node: NodeSpec;
  readonly objects: ObjectSet;
  readonly steps?: readonly Step[];
  /** A KubeProxyConfiguration to write with upstream's `kube-proxy --write-config-to` and pass as --config. */
  readonly configFromUpstream?: readonly string[];
}

export const IPV4_NODE: NodeSpec = { addresses: [{ type: 'InternalIP', address: NODE_IP }, { type: 'Hostname', address: NODE }] };

type ServiceSpec = NonNullable<V1Service['spec']>;
type Port = { name?: string; port: number; protocol?: string; nodePort?: number; targetPort?: number };

export interface ServiceOptions {
  readonly namespace?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  readonly lbIngress?: readonly { ip: string; ipMode?: string }[];
}

export function service(name: string, spec: Omit<ServiceSpec, 'ports'> & { ports?: Port[] }, o: ServiceOptions = {}): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: o.namespace ?? 'fidelity', ...(o.labels ? { labels: o.labels } : {}), ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec: spec as ServiceSpec,
    ...(o.lbIngress ? { status: { loadBalancer: { ingress: o.lbIngress.map((i) => ({ ...i })) } } } : {}),
  };
}

export interface EndpointSpec {
  readonly ip: string;
  /** Default: this node. null: no nodeName. */
  readonly node?: string | null;
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
  readonly zone?: string;
  readonly hintZones?: readonly string[];
  readonly hintNodes?: readonly string[];
}

export function slice(
  serviceName: string,
  ports: readonly { name?: string; port: number; protocol?: string }[],
  endpoints: readonly EndpointSpec[],
  o: { namespace?: string; suffix?: string; addressType?: 'IPv4' | 'IPv6' } = {},
): V1EndpointSlice {
  const addressType = o.addressType ?? (endpoints[0]?.ip.includes(':') ? 'IPv6' : 'IPv4');
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${serviceName}-${o.suffix ?? addressType.toLowerCase()}`,
      namespace: o.namespace ?? 'fidelity',
      labels: { 'kubernetes.io/service-name': serviceName },
    },
    addressType,
    ports: ports.map((p) => ({ ...(p.name !== undefined ? { name: p.name } : {}), port: p.port, protocol: p.protocol ?? 'TCP' })),
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
      ...(e.node === null ? {} : { nodeName: e.node ?? NODE }),
      ...(e.zone ? { zone: e.zone } : {}),
      ...(e.hintZones || e.hintNodes
        ? { hints: { ...(e.hintZones ? { forZones: e.hintZones.map((name) => ({ name })) } : {}), ...(e.hintNodes ? { forNodes: e.hintNodes.map((name) => ({ name })) } : {}) } }
        : {}),
    })),
  };
}

export const objectKey = (o: { metadata?: { namespace?: string; name?: string } }): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/** The scenario's Node and Services after its first `step` steps (step 0: the initial objects). */
export function scenarioAtStep(scenario: Scenario, step: number): { node: NodeSpec; services: V1Service[] } {
  let node = scenario.node;
  const services = new Map(scenario.objects.services.map((s) => [objectKey(s), s]));
  for (const st of scenario.steps?.slice(0, step) ?? []) {
    if (st.node) node = st.node;
    for (const k of st.deleteServices ?? []) services.delete(k);
    for (const s of st.upsert?.services ?? []) services.set(objectKey(s), s);
  }
  return { node, services: [...services.values()] };
}
