// The curated scenarios: one cluster holding a Service for each row of kube-proxy's IPVS behaviour
// (every type, traffic policies with and without local endpoints, source ranges, affinity,
// topology, terminating endpoints, SCTP, IPv6 and dual-stack), run under each flag set that
// changes what IPVS mode programs. One kube-proxy run covers every row for its flags.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { EndpointSpec, NodeSpec, ObjectSet, Scenario } from './scenario.js';
import { IPV4_NODE, NODE, NODE_IP, NODE_IP6, OTHER_NODE, service, slice } from './scenario.js';

const HTTP = [{ name: 'http', port: 8080 }];
const remote = (ip: string, extra: Partial<EndpointSpec> = {}): EndpointSpec => ({ ip, node: OTHER_NODE, ...extra });

function rows(): ObjectSet {
  const services: V1Service[] = [];
  const slices: V1EndpointSlice[] = [];
  const add = (s: V1Service, ...sl: V1EndpointSlice[]): void => {
    services.push(s);
    slices.push(...sl);
  };
  // ClusterIP: two named ports; local, remote and not-ready endpoints.
  add(service('web', { clusterIP: '10.96.1.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'https', port: 443, targetPort: 8443 }] }),
    slice('web', [{ name: 'http', port: 8080 }, { name: 'https', port: 8443 }], [{ ip: '10.244.0.11' }, remote('10.244.1.12'), { ip: '10.244.0.13', ready: false, serving: false }]));
  // UDP and TCP on one port number.
  add(service('dns', { clusterIP: '10.96.1.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] }),
    slice('dns', [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }], [{ ip: '10.244.0.53' }, remote('10.244.1.53')]));
  // SCTP, as ClusterIP and NodePort.
  add(service('sctp', { type: 'NodePort', clusterIP: '10.96.1.132', ports: [{ name: 'diameter', port: 3868, protocol: 'SCTP', nodePort: 31868 }] }),
    slice('sctp', [{ name: 'diameter', port: 3868, protocol: 'SCTP' }], [{ ip: '10.244.0.132' }]));
  // NodePort TCP + UDP, and a NodePort with externalTrafficPolicy Local.
  add(service('np', { type: 'NodePort', clusterIP: '10.96.1.20', ports: [{ name: 'http', port: 80, nodePort: 30080, targetPort: 8080 }, { name: 'udp', port: 81, protocol: 'UDP', nodePort: 30081 }] }),
    slice('np', [{ name: 'http', port: 8080 }, { name: 'udp', port: 81, protocol: 'UDP' }], [{ ip: '10.244.0.20' }, remote('10.244.1.20')]));
  add(service('np-local', { type: 'NodePort', clusterIP: '10.96.1.21', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30082, targetPort: 8080 }] }),
    slice('np-local', HTTP, [{ ip: '10.244.0.21' }, remote('10.244.1.21')]));
  // LoadBalancer, eTP Cluster.
  add(service('lb', { type: 'LoadBalancer', clusterIP: '10.96.1.30', ports: [{ name: 'http', port: 80, nodePort: 30090, targetPort: 8080 }] }, { lbIngress: [{ ip: '192.0.2.30' }] }),
    slice('lb', HTTP, [{ ip: '10.244.0.30' }, remote('10.244.1.30')]));
  // LoadBalancer, eTP Local, with and without a local endpoint (health-check node ports).
  add(service('lb-local', { type: 'LoadBalancer', clusterIP: '10.96.1.31', externalTrafficPolicy: 'Local', healthCheckNodePort: 32001, ports: [{ name: 'http', port: 80, nodePort: 30091, targetPort: 8080 }] }, { lbIngress: [{ ip: '192.0.2.31' }] }),
    slice('lb-local', HTTP, [{ ip: '10.244.0.31' }, remote('10.244.1.31')]));
  add(service('lb-local-none', { type: 'LoadBalancer', clusterIP: '10.96.1.32', externalTrafficPolicy: 'Local', healthCheckNodePort: 32002, ports: [{ name: 'http', port: 80, nodePort: 30092, targetPort: 8080 }] }, { lbIngress: [{ ip: '192.0.2.32' }] }),
    slice('lb-local-none', HTTP, [remote('10.244.1.32')]));
  // Source ranges: one covering the node IP, one not.
  add(service('lb-ranges', { type: 'LoadBalancer', clusterIP: '10.96.1.33', loadBalancerSourceRanges: ['203.0.113.0/24', '10.0.2.0/24'], ports: [{ name: 'http', port: 80, nodePort: 30093, targetPort: 8080 }] }, { lbIngress: [{ ip: '192.0.2.33' }] }),
    slice('lb-ranges', HTTP, [{ ip: '10.244.0.33' }]));
  add(service('lb-ranges-far', { type: 'LoadBalancer', clusterIP: '10.96.1.34', loadBalancerSourceRanges: ['203.0.113.0/24'], ports: [{ name: 'http', port: 80, nodePort: 30094, targetPort: 8080 }] }, { lbIngress: [{ ip: '192.0.2.34' }] }),
    slice('lb-ranges-far', HTTP, [{ ip: '10.244.0.34' }]));
  // LoadBalancer without node ports, and an ingress in ipMode Proxy.
  add(service('lb-no-np', { type: 'LoadBalancer', clusterIP: '10.96.1.35', allocateLoadBalancerNodePorts: false, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }, { lbIngress: [{ ip: '192.0.2.35' }] }),
    slice('lb-no-np', HTTP, [{ ip: '10.244.0.35' }]));
  add(service('lb-proxy-mode', { type: 'LoadBalancer', clusterIP: '10.96.1.36', ports: [{ name: 'http', port: 80, nodePort: 30096, targetPort: 8080 }] }, { lbIngress: [{ ip: '192.0.2.36', ipMode: 'Proxy' }, { ip: '192.0.2.37', ipMode: 'VIP' }] }),
    slice('lb-proxy-mode', HTTP, [{ ip: '10.244.0.36' }]));
  // External IPs, eTP Cluster and Local, one of them the node's own address.
  add(service('ext', { clusterIP: '10.96.1.40', externalIPs: ['198.51.100.40', NODE_IP], ports: [{ name: 'http', port: 8040, targetPort: 8080 }] }),
    slice('ext', HTTP, [{ ip: '10.244.0.40' }, remote('10.244.1.40')]));
  add(service('ext-local', { clusterIP: '10.96.1.41', externalIPs: ['198.51.100.41'], externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    slice('ext-local', HTTP, [{ ip: '10.244.0.41' }, remote('10.244.1.41')]));
  // internalTrafficPolicy Local, with and without a local endpoint.
  add(service('itp-local', { clusterIP: '10.96.1.50', internalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    slice('itp-local', HTTP, [{ ip: '10.244.0.50' }, remote('10.244.1.50')]));
  add(service('itp-local-none', { clusterIP: '10.96.1.51', internalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    slice('itp-local-none', HTTP, [remote('10.244.1.51')]));
  // Session affinity, with the default and with a custom timeout.
  add(service('sticky', { type: 'NodePort', clusterIP: '10.96.1.60', sessionAffinity: 'ClientIP', ports: [{ name: 'http', port: 80, nodePort: 30060, targetPort: 8080 }] }),
    slice('sticky', HTTP, [{ ip: '10.244.0.60' }, remote('10.244.1.60')]));
  add(service('sticky-short', { clusterIP: '10.96.1.61', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    slice('sticky-short', HTTP, [{ ip: '10.244.0.61' }]));
  // Topology: zone hints (this node is in zone-a), node hints, and trafficDistribution.
  add(service('hinted', { clusterIP: '10.96.1.70', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }, { annotations: { 'service.kubernetes.io/topology-mode': 'Auto' } }),
    slice('hinted', HTTP, [{ ip: '10.244.0.70', zone: 'zone-a', hintZones: ['zone-a'] }, remote('10.244.1.70', { zone: 'zone-b', hintZones: ['zone-b'] }), remote('10.244.1.71', { zone: 'zone-a', hintZones: ['zone-a'] })]));
  add(service('close', { clusterIP: '10.96.1.71', trafficDistribution: 'PreferClose', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    slice('close', HTTP, [remote('10.244.1.72', { zone: 'zone-b', hintZones: ['zone-b'] }), remote('10.244.1.73', { zone: 'zone-a', hintZones: ['zone-a'] })]));
  add(service('same-node', { clusterIP: '10.96.1.72', trafficDistribution: 'PreferSameNode', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    slice('same-node', HTTP, [{ ip: '10.244.0.74', hintNodes: [NODE], hintZones: ['zone-a'] }, remote('10.244.1.74', { hintNodes: [OTHER_NODE], hintZones: ['zone-a'] })]));
  // Terminating endpoints: serving ones are used only when nothing is ready.
  add(service('terminating', { clusterIP: '10.96.1.80', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    slice('terminating', HTTP, [{ ip: '10.244.0.80' }, { ip: '10.244.0.81', ready: false, serving: true, terminating: true }, { ip: '10.244.0.82', ready: false, serving: false, terminating: true }]));
  add(service('all-terminating', { type: 'NodePort', clusterIP: '10.96.1.81', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30083, targetPort: 8080 }] }),
    slice('all-terminating', HTTP, [{ ip: '10.244.0.83', ready: false, serving: true, terminating: true }, remote('10.244.1.83', { ready: false, serving: true, terminating: true })]));
  // IPv6 single-stack and dual-stack (each family gets its own slice).
  add(service('web6', { ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack', clusterIP: 'fd00:10:96::190', clusterIPs: ['fd00:10:96::190'], type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30095, targetPort: 8080 }] }),
    slice('web6', HTTP, [{ ip: 'fd00:244::90' }, remote('fd00:244:1::90')]));
  add(service('dual', { ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack', clusterIP: '10.96.1.91', clusterIPs: ['10.96.1.91', 'fd00:10:96::191'], type: 'LoadBalancer', ports: [{ name: 'http', port: 80, nodePort: 30097, targetPort: 8080 }] }, { lbIngress: [{ ip: '192.0.2.91' }, { ip: '2001:db8::91' }] }),
    slice('dual', HTTP, [{ ip: '10.244.0.91' }]), slice('dual', HTTP, [{ ip: 'fd00:244::91' }]));
  // No endpoints at all; headless; ExternalName; another proxy's Service (all but the first ignored).
  add(service('empty', { clusterIP: '10.96.1.100', ports: [{ name: 'http', port: 80 }] }));
  add(service('headless', { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] }), slice('headless', HTTP, [{ ip: '10.244.0.101' }]));
  add(service('alias', { type: 'ExternalName', externalName: 'example.invalid', ports: [{ name: 'http', port: 80 }] }));
  add(service('other-proxy', { clusterIP: '10.96.1.103', ports: [{ name: 'http', port: 80 }] }, { labels: { 'service.kubernetes.io/service-proxy-name': 'someone-else' } }),
    slice('other-proxy', HTTP, [{ ip: '10.244.0.103' }]));
  return { services, slices };
}

const ZONED: NodeSpec = { ...IPV4_NODE, labels: { 'topology.kubernetes.io/zone': 'zone-a' } };

function scenario(id: string, description: string, flags: string[], node: NodeSpec = ZONED, extra: Partial<Scenario> = {}): Scenario {
  return { id, description, flags, node, objects: rows(), ...extra };
}

/** The curated set: each flag set that changes IPVS-mode kernel state, over every row. */
export function curatedScenarios(): Scenario[] {
  return [
    scenario('defaults', 'all rows on an IPv4-only node, default flags, then a change sequence', [], ZONED, {
      steps: [
        { description: 'an endpoint removed from web', upsert: { slices: [slice('web', [{ name: 'http', port: 8080 }, { name: 'https', port: 8443 }], [remote('10.244.1.12')])] } },
        { description: 'empty becomes a NodePort', upsert: { services: [service('empty', { type: 'NodePort', clusterIP: '10.96.1.100', ports: [{ name: 'http', port: 80, nodePort: 30100 }] })] } },
        { description: 'lb deleted', deleteServices: ['fidelity/lb'], deleteSlices: ['fidelity/lb-ipv4'] },
        { description: 'the node moves to zone-b', node: { ...IPV4_NODE, labels: { 'topology.kubernetes.io/zone': 'zone-b' } } },
      ],
    }),
    // Flags that touch different things share a run: each kube-proxy run costs minutes under TCG.
    scenario('cluster-cidr', 'detect-local ClusterCIDR (dual-stack), strict ARP, the sh scheduler and IPVS timeouts',
      ['--cluster-cidr=10.244.0.0/16,fd00:244::/48', '--ipvs-strict-arp', '--ipvs-scheduler=sh', '--ipvs-tcp-timeout=10m', '--ipvs-tcpfin-timeout=30s', '--ipvs-udp-timeout=45s']),
    scenario('masquerade-all', '--masquerade-all with a cluster CIDR and the mh scheduler', ['--masquerade-all', '--cluster-cidr=10.244.0.0/16', '--ipvs-scheduler=mh']),
    scenario('node-cidr', 'detect-local NodeCIDR from the Node podCIDRs', ['--detect-local-mode=NodeCIDR'], { ...ZONED, podCIDRs: ['10.244.0.0/24', 'fd00:244::/64'] }),
    scenario('bridge-interface', 'detect-local BridgeInterface', ['--detect-local-mode=BridgeInterface', '--pod-bridge-interface=cni0']),
    scenario('interface-prefix', 'detect-local InterfaceNamePrefix', ['--detect-local-mode=InterfaceNamePrefix', '--pod-interface-name-prefix=veth']),
    scenario('nodeport-cidr', '--nodeport-addresses with CIDRs of both families', ['--nodeport-addresses=10.0.2.0/24,fd00:2::/64'], { ...ZONED, guestAddresses: [`${NODE_IP6}/64`, 'fd00:3::15/64'] }),
    scenario('nodeport-primary', '--nodeport-addresses primary on an IPv4-only node with IPv6 addresses', ['--nodeport-addresses=primary'], { ...ZONED, guestAddresses: [`${NODE_IP6}/64`] }),
    scenario('ipv6-primary', 'an IPv6-primary dual-stack node', [], {
      addresses: [{ type: 'InternalIP', address: NODE_IP6 }, { type: 'InternalIP', address: NODE_IP }, { type: 'Hostname', address: NODE }],
      labels: { 'topology.kubernetes.io/zone': 'zone-a' },
      guestAddresses: [`${NODE_IP6}/64`],
    }),
    scenario('config-file', "a KubeProxyConfiguration written by upstream's own kube-proxy --write-config-to", [], ZONED, {
      configFromUpstream: ['--proxy-mode=ipvs', '--ipvs-scheduler=wrr', '--cluster-cidr=10.244.0.0/16', '--ipvs-strict-arp'],
    }),
  ];
}

/** Every scheduler kube-proxy accepts, for the long run (each one a kube-proxy run). */
export function schedulerScenarios(): Scenario[] {
  return ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'mh'].map((s) => scenario(`scheduler-${s}`, `--ipvs-scheduler=${s}`, [`--ipvs-scheduler=${s}`]));
}
