// fast-check arbitraries for Kubernetes objects as a fuzzer wants them: Services, EndpointSlices
// and Nodes whose every field may hold a plausible value, a wrong one (bad IPs, ports out of range,
// unknown enums), or (unless `typed`) any JSON at all in its place. `typed` keeps each field's JSON
// type as the API server's schema guarantees (strings stay strings, ports stay integers): what the
// API path can receive. Fuzzed objects live in the namespace FUZZ_NS unless their metadata itself
// is garbage.
import fc from 'fast-check';
import { Annotation, Label } from '../../src/model/names.js';
import { TRIGGER_TIME_ANNOTATION } from '../../src/cluster/tracker.js';

export const FUZZ_NS = 'fuzz';

const SPECIAL_IPS = ['0.0.0.0', '::', '127.0.0.1', '::1', '169.254.1.1', 'fe80::1', '224.0.0.5', 'ff02::5', '239.1.1.1', '255.255.255.255', '::ffff:1.2.3.4', '010.1.1.1', ' 10.0.0.1', '10.0.0.0/8', '1.2.3', 'None', ''];
const WORDS = ['', 'a', 'web', 'http', 'None', 'TCP', 'UDP', 'SCTP', 'tcp', 'HTTP', 'Local', 'Cluster', 'ClientIP', 'ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName', 'IPv4', 'IPv6', 'FQDN', 'VIP', 'Proxy', 'rr', 'mh', 'bogus', 'mh-port,flag-9', 'sh-port', '2024-01-01T00:00:00Z'];

export interface ObjectArbs {
  readonly service: fc.Arbitrary<unknown>;
  readonly slice: fc.Arbitrary<unknown>;
  readonly node: (name: string) => fc.Arbitrary<unknown>;
}

export function objectArbitraries(opts: { typed: boolean; serviceNames: readonly string[] }): ObjectArbs {
  const json = fc.jsonValue({ maxDepth: 2 });
  // A value of the field's type, or (manifests) now and then anything at all.
  const wild = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<unknown> => (opts.typed ? a : fc.oneof({ weight: 6, arbitrary: a }, { weight: 1, arbitrary: json }));
  const optional = <T extends Record<string, fc.Arbitrary<unknown>>>(fields: T) => fc.record(fields, { requiredKeys: [] });
  const list = <T>(a: fc.Arbitrary<T>, maxLength = 3) => wild(fc.array(a, { maxLength }));
  const str = fc.oneof(fc.constantFrom(...WORDS), fc.string({ maxLength: 10 }));
  const name = fc.oneof(fc.constantFrom(...opts.serviceNames), str);
  const ip = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom(...SPECIAL_IPS), fc.constantFrom('10.96.1.1', '10.244.9.9', '192.168.0.10', 'fd00::1'));
  const cidr = fc.oneof(fc.constantFrom('10.0.0.0/8', '0.0.0.0/0', '::/0', '10.0.0.1/33', 'fd00::/64', ' 1.2.3.0/24', 'x'), ip);
  const int = fc.oneof(fc.integer({ min: -2, max: 65537 }), fc.constantFrom(0, 1, 80, 30080, 65535, 65536, 86400, 86401));
  const port = opts.typed ? int : fc.oneof(int, fc.double(), fc.constantFrom('80', null));
  const bool = wild(fc.boolean());
  const map = (keys: readonly string[]) => wild(fc.dictionary(fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 6 })), wild(str), { maxKeys: 3 }));

  const metadata = (nameArb: fc.Arbitrary<string>, labels: fc.Arbitrary<unknown>) =>
    wild(
      optional({
        name: wild(nameArb),
        namespace: fc.constant(FUZZ_NS),
        labels,
        annotations: map([Annotation.SCHEDULER, Annotation.SCHEDULER_FLAGS, TRIGGER_TIME_ANNOTATION]),
        deletionTimestamp: wild(fc.constantFrom('2025-01-01T00:00:00Z', '')),
      }),
    );

  const servicePort = wild(optional({ name: wild(str), port: wild(port), protocol: wild(str), nodePort: wild(port), targetPort: wild(fc.oneof(port, str)) }));
  const service = fc.record({
    apiVersion: fc.constant('v1'),
    kind: fc.constant('Service'),
    metadata: metadata(name, map([Label.SERVICE_PROXY_NAME, Label.HEADLESS, 'app'])),
    spec: wild(
      optional({
        type: wild(str),
        clusterIP: wild(ip),
        clusterIPs: list(ip),
        externalIPs: list(ip),
        ipFamilies: list(str),
        ports: list(servicePort, 4),
        externalTrafficPolicy: wild(str),
        internalTrafficPolicy: wild(str),
        sessionAffinity: wild(str),
        sessionAffinityConfig: wild(optional({ clientIP: wild(optional({ timeoutSeconds: wild(port) })) })),
        healthCheckNodePort: wild(port),
        loadBalancerSourceRanges: list(cidr),
        allocateLoadBalancerNodePorts: bool,
      }),
    ),
    status: wild(optional({ loadBalancer: wild(optional({ ingress: list(wild(optional({ ip: wild(ip), ipMode: wild(str), hostname: wild(str) }))) })) })),
  });

  const endpoint = wild(
    optional({
      addresses: list(ip, 2),
      conditions: wild(optional({ ready: bool, serving: bool, terminating: bool })),
      nodeName: wild(fc.constantFrom('node-a', 'node-b', '')),
      zone: wild(str),
      hints: wild(optional({ forZones: list(wild(optional({ name: wild(str) }))), forNodes: list(wild(optional({ name: wild(str) }))) })),
    }),
  );
  const slice = fc.record({
    apiVersion: fc.constant('discovery.k8s.io/v1'),
    kind: fc.constant('EndpointSlice'),
    // Mostly tied to a fuzzed service, so endpoints meet services.
    metadata: metadata(str, wild(optional({ [Label.SERVICE_NAME]: wild(name), [Label.SERVICE_PROXY_NAME]: wild(str), [Label.HEADLESS]: wild(str) }))),
    addressType: wild(str),
    ports: list(wild(optional({ name: wild(str), port: wild(fc.oneof(port, fc.constant(null))), protocol: wild(str) }))),
    endpoints: list(endpoint, 4),
  });

  const node = (nodeName: string) =>
    fc.record({
      apiVersion: fc.constant('v1'),
      kind: fc.constant('Node'),
      metadata: wild(optional({ name: fc.constant(nodeName), labels: map(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']), deletionTimestamp: wild(fc.constantFrom('2025-01-01T00:00:00Z', '')) })),
      spec: wild(optional({ podCIDR: wild(cidr), podCIDRs: list(cidr), taints: list(wild(optional({ key: wild(fc.constantFrom('ToBeDeletedByClusterAutoscaler', 'x')), effect: wild(str) }))) })),
      status: wild(optional({ addresses: list(wild(optional({ type: wild(fc.constantFrom('InternalIP', 'ExternalIP', 'Hostname')), address: wild(ip) }))) })),
    });

  return { service, slice, node };
}
