// The planner's real output for every configuration that changes what it writes to iptables or
// ipset, on one dual-stack fixture cluster that fills every set kube-proxy keeps: the dataplane
// contracts load these into the fakes and into real iptables/ipset and require the same outcome.
//
// What changes the rules (src/plan/rules.ts): --masquerade-all, --iptables-masquerade-bit, each
// --detect-local-mode with and without its CIDRs or interface, MASQUERADE --random-fully support,
// which sets are empty, and load balancers whose source ranges leave the node out (the
// KUBE-IPVS-OUT-FILTER -m ipvs rules). What changes the sets: --nodeport-addresses (CIDRs or
// "primary"), and the cluster itself. --ipvs-strict-arp only sets sysctls; schedulers, timeouts and
// exclude-CIDRs only touch IPVS.
import type { ProxyConfig } from '../../src/config/types.js';
import type { FamilyDesiredState } from '../../src/plan/desired.js';
import { planCluster } from '../../src/plan/planner.js';
import type { IpFamily } from '../../src/model/types.js';
import { NODE, NODE_IP, config, node, service, slice, snapshotOf, type World } from './world.js';

const NODE_IP6 = 'fd00:192::10';

export interface PlannerVariant {
  readonly name: string;
  readonly config: ProxyConfig;
  readonly randomFully: boolean;
  /** Whether the cluster has a load balancer whose source ranges leave the node out (-m ipvs rules). */
  readonly outFilter: boolean;
  /** Without any service: every rule fed by a set is left out. */
  readonly empty?: boolean;
}

function withNodeCIDRs(c: ProxyConfig, cidrs: string[]): ProxyConfig {
  return { ...c, detectLocal: { ...c.detectLocal, nodeCIDRs: cidrs } };
}

export function plannerVariants(): PlannerVariant[] {
  const v = (name: string, cfg: ProxyConfig, more: Partial<PlannerVariant> = {}): PlannerVariant => ({ name, config: cfg, randomFully: true, outFilter: false, ...more });
  return [
    v('defaults (ClusterCIDR without a cluster CIDR)', config()),
    v('--masquerade-all', config('--masquerade-all')),
    v('--cluster-cidr', config('--cluster-cidr=10.244.0.0/16,fd00:244::/64')),
    v('--detect-local-mode=NodeCIDR with pod CIDRs', withNodeCIDRs(config('--detect-local-mode=NodeCIDR'), ['10.244.1.0/24', 'fd00:244:1::/80'])),
    v('--detect-local-mode=NodeCIDR without pod CIDRs', config('--detect-local-mode=NodeCIDR')),
    v('--detect-local-mode=BridgeInterface', config('--detect-local-mode=BridgeInterface', '--pod-bridge-interface=cbr0')),
    v('--detect-local-mode=InterfaceNamePrefix', config('--detect-local-mode=InterfaceNamePrefix', '--pod-interface-name-prefix=veth')),
    v('--iptables-masquerade-bit=5', config('--iptables-masquerade-bit=5')),
    v('iptables without --random-fully', config(), { randomFully: false }),
    v('--nodeport-addresses CIDRs', config('--nodeport-addresses=192.168.0.0/24,fd00:192::/64')),
    v('--nodeport-addresses=primary', config('--nodeport-addresses=primary')),
    v('--nodeport-addresses matching no node address', config('--nodeport-addresses=10.9.9.0/24')),
    v('an empty cluster', config(), { empty: true }),
    v('source ranges that leave the node out (KUBE-IPVS-OUT-FILTER, -m ipvs)', config(), { outFilter: true }),
  ];
}

const PORT = (name: string, port: number, protocol = 'TCP', nodePort?: number) => ({ name, port, protocol, ...(nodePort === undefined ? {} : { nodePort }) });

/** Every service type and policy, both families, each with a local endpoint (so hairpin sets fill). */
function fixture(outFilter: boolean): World {
  const services = [
    service('web', { clusterIPs: ['10.96.0.10', 'fd00:96::10'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack', ports: [PORT('http', 80)] }),
    service('np', { type: 'NodePort', clusterIPs: ['10.96.0.20', 'fd00:96::20'], ipFamilies: ['IPv4', 'IPv6'], ports: [PORT('t', 80, 'TCP', 30080), PORT('u', 53, 'UDP', 30053), PORT('s', 99, 'SCTP', 30099)] }),
    service('np-local', {
      type: 'NodePort', externalTrafficPolicy: 'Local', clusterIPs: ['10.96.0.21', 'fd00:96::21'], ipFamilies: ['IPv4', 'IPv6'],
      ports: [PORT('t', 80, 'TCP', 30081), PORT('u', 53, 'UDP', 30054), PORT('s', 99, 'SCTP', 30098)],
    }),
    service('ext', { clusterIPs: ['10.96.0.30', 'fd00:96::30'], ipFamilies: ['IPv4', 'IPv6'], externalIPs: ['198.51.100.7', 'fd00:198::7'], ports: [PORT('http', 80)] }),
    service('ext-local', {
      type: 'NodePort', externalTrafficPolicy: 'Local', clusterIPs: ['10.96.0.31', 'fd00:96::31'], ipFamilies: ['IPv4', 'IPv6'], externalIPs: ['198.51.100.8', 'fd00:198::8'],
      ports: [PORT('http', 80, 'TCP', 30082)],
    }),
    service(
      'lb',
      {
        type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, clusterIPs: ['10.96.0.40', 'fd00:96::40'], ipFamilies: ['IPv4', 'IPv6'],
        // Ranges holding the node's addresses: KUBE-LOAD-BALANCER-SOURCE-IP lets the node in.
        loadBalancerSourceRanges: ['192.168.0.0/16', '203.0.113.0/24', 'fd00:192::/64'],
        ports: [PORT('https', 443, 'TCP', 30443)],
      },
      { status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }, { ip: 'fd00:203::10' }] } } },
    ),
    ...(outFilter
      ? [
          service(
            'lb-fw',
            {
              type: 'LoadBalancer', clusterIPs: ['10.96.0.41', 'fd00:96::41'], ipFamilies: ['IPv4', 'IPv6'], loadBalancerSourceRanges: ['198.51.100.0/24', 'fd00:198::/64'],
              ports: [PORT('https', 443, 'TCP', 30444), PORT('dns', 53, 'UDP', 30055)],
            },
            { status: { loadBalancer: { ingress: [{ ip: '203.0.113.11' }, { ip: 'fd00:203::11' }] } } },
          ),
        ]
      : []),
  ];
  const slices = services.flatMap((s) => {
    const name = s.metadata?.name ?? '';
    const ports = (s.spec?.ports ?? []).map((p) => ({ name: p.name ?? '', port: 8000 + p.port, protocol: p.protocol ?? 'TCP' }));
    return [
      slice(name, ports, [{ ip: '10.244.1.2', node: NODE }, { ip: '10.244.2.2', node: 'node-b' }], { name: `${name}-v4` }),
      slice(name, ports, [{ ip: 'fd00:244:1::2', node: NODE }, { ip: 'fd00:244:2::2', node: 'node-b' }], { name: `${name}-v6` }),
    ];
  });
  return { services, slices };
}

/** The planner's desired state for one family under a variant. */
export function plannedFamily(variant: PlannerVariant, family: IpFamily): FamilyDesiredState {
  const world = variant.empty ? {} : fixture(variant.outFilter);
  // A second address per family, so --nodeport-addresses (CIDRs or "primary") leaves one out.
  const addresses = [NODE_IP, '10.0.0.5', NODE_IP6, 'fd00:10::5'];
  const state = planCluster(snapshotOf(world), { node: node({ addresses }), config: variant.config, randomFully: variant.randomFully });
  const f = state.families.find((x) => x.family === family);
  if (!f) throw new Error(`no ${family} state for ${variant.name}`);
  return f;
}

/**
 * The variants whose output differs, by `key` (the rendered payload a contract loads): those that
 * write the same thing are the same test, so each distinct output is loaded once.
 */
export function distinctVariants(key: (v: PlannerVariant) => string): PlannerVariant[] {
  const seen = new Set<string>();
  return plannerVariants().filter((v) => {
    const k = key(v);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
