// Seeded random clusters for the fidelity harness: hundreds of Services of mixed types, traffic
// policies, families, protocols, ports, affinity, source ranges and endpoint conditions, so one
// kube-proxy run covers many combinations. The same seed gives the same cluster (print it to
// replay a failure: `npm run fidelity -- --no-curated --random 1 --seed S`). Objects are valid for
// the API server: addresses inside its service ranges, node ports unique inside 30000-32767.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { seededRandom } from '../../src/dataplane/prng.js';
import type { EndpointSpec, Scenario } from './scenario.js';
import { IPV4_NODE, NODE, OTHER_NODE, service, slice } from './scenario.js';

type Family = 'IPv4' | 'IPv6';

export function randomScenario(seed: number, count: number): Scenario {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const chance = (p: number): boolean => rnd() < p;
  let nextNodePort = 30200;
  const nodePort = (): number => nextNodePort++;
  const services: V1Service[] = [];
  const slices: V1EndpointSlice[] = [];
  const zones = ['zone-a', 'zone-b', 'zone-c'];

  for (let i = 0; i < count; i++) {
    const name = `svc-${i}`;
    const namespace = `r-${i % 5}`;
    const families: Family[] = pick([['IPv4'], ['IPv4'], ['IPv4'], ['IPv6'], ['IPv4', 'IPv6'], ['IPv6', 'IPv4']] as Family[][]);
    const type = pick(['ClusterIP', 'ClusterIP', 'NodePort', 'LoadBalancer'] as const);
    const hex = (i + 0x2000).toString(16);
    const ipOf = (f: Family): string => (f === 'IPv4' ? `10.96.${2 + (i >> 8)}.${i & 255}` : `fd00:10:96::${hex}`);
    const clusterIPs = families.map(ipOf);
    const protocols = ['TCP', 'TCP', 'UDP', 'SCTP'] as const;
    const portCount = 1 + Math.floor(rnd() * 3);
    const ports: { name: string; port: number; protocol: string; targetPort: number; nodePort?: number }[] = [];
    for (let p = 0; p < portCount; p++) {
      const protocol = pick(protocols);
      const port = pick([53, 80, 443, 8080, 9090]) + p;
      ports.push({ name: `p${p}`, port, protocol, targetPort: 8000 + p, ...(type !== 'ClusterIP' ? { nodePort: nodePort() } : {}) });
    }
    const externalIPs = chance(0.15) ? families.map((f) => (f === 'IPv4' ? `198.51.100.${i & 255}` : `2001:db8:1::${hex}`)) : [];
    const external = type !== 'ClusterIP' || externalIPs.length > 0;
    const eTPLocal = external && chance(0.3);
    const spec: Record<string, unknown> = {
      type,
      clusterIP: clusterIPs[0],
      clusterIPs,
      ipFamilies: families,
      ipFamilyPolicy: families.length === 2 ? pick(['PreferDualStack', 'RequireDualStack']) : 'SingleStack',
      ports,
      ...(externalIPs.length > 0 ? { externalIPs } : {}),
      ...(external ? { externalTrafficPolicy: eTPLocal ? 'Local' : 'Cluster' } : {}),
      ...(chance(0.15) ? { internalTrafficPolicy: 'Local' } : {}),
      ...(chance(0.2) ? { sessionAffinity: 'ClientIP', ...(chance(0.5) ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 + Math.floor(rnd() * 1000) } } } : {}) } : {}),
      ...(chance(0.1) ? { trafficDistribution: pick(['PreferClose', 'PreferSameZone', 'PreferSameNode']) } : {}),
    };
    let lbIngress: { ip: string; ipMode?: string }[] | undefined;
    if (type === 'LoadBalancer') {
      if (eTPLocal) spec['healthCheckNodePort'] = nodePort();
      if (chance(0.3)) spec['loadBalancerSourceRanges'] = families.map((f) => (f === 'IPv4' ? pick(['203.0.113.0/24', '10.0.2.0/24', '0.0.0.0/0']) : pick(['2001:db8:9::/64', '::/0'])));
      lbIngress = families.map((f) => ({ ip: f === 'IPv4' ? `192.0.2.${i & 255}` : `2001:db8::${hex}`, ...(chance(0.1) ? { ipMode: 'Proxy' } : {}) }));
    }
    services.push(service(name, spec as Parameters<typeof service>[1], { namespace, ...(lbIngress ? { lbIngress } : {}) }));

    for (const f of families) {
      if (chance(0.1)) continue; // no slice at all
      const n = Math.floor(rnd() * 7);
      const eps: EndpointSpec[] = [];
      const hinted = chance(0.25);
      for (let e = 0; e < n; e++) {
        const state = pick(['ready', 'ready', 'ready', 'notready', 'terminating-serving', 'terminating']);
        const zone = pick(zones);
        eps.push({
          ip: f === 'IPv4' ? `10.${244 + (e & 3)}.${(i >> 6) & 255}.${((i & 63) << 2) | (e >> 2)}` : `fd00:244:${e + 1}::${hex}`,
          node: pick([NODE, OTHER_NODE, 'node-c', null]),
          ready: state === 'ready',
          serving: state === 'ready' || state === 'terminating-serving',
          terminating: state.startsWith('terminating'),
          zone,
          ...(hinted ? { hintZones: [zone], ...(chance(0.5) ? { hintNodes: [pick([NODE, OTHER_NODE])] } : {}) } : {}),
        });
      }
      slices.push(slice(name, ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: p.protocol })), eps, { namespace, addressType: f }));
    }
  }
  return {
    id: `random-${seed}`,
    description: `seeded random cluster (seed ${seed}, ${count} services)`,
    flags: pick([[], ['--cluster-cidr=10.244.0.0/14,fd00:244::/40'], ['--masquerade-all'], ['--ipvs-scheduler=wrr']]),
    node: { ...IPV4_NODE, labels: { 'topology.kubernetes.io/zone': 'zone-a' } },
    objects: { services, slices },
  };
}
