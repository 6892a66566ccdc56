// Planner behaviour, case by case, derived from kube-proxy's IPVS mode rather than from the
// implementation: kubernetes v1.36.3 pkg/proxy/ipvs/proxier.go (syncProxyRules, syncService,
// writeIptablesRules), ipset.go, netlink_linux.go and pkg/proxy/topology.go.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { config, fam, NODE, NODE_IP, node, plan, realServers, rules, service, setEntries, slice, snapshotOf } from '../helpers/world.js';
import { planCluster } from '../../src/plan/planner.js';
import type { Problem } from '../../src/cluster/problems.js';

const web = (spec: Record<string, unknown> = {}, extra = {}) =>
  service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, protocol: 'TCP' }], ...spec }, extra);
const webSlice = (eps: Parameters<typeof slice>[2], port = 8080) => slice('web', [{ name: 'http', port }], eps);

describe('ClusterIP', () => {
  test('one virtual server per port, ready endpoints as masq real servers with weight 1', () => {
    const s = plan({ services: [web()], slices: [webSlice([{ ip: '10.244.1.2', node: NODE }, { ip: '10.244.2.2', node: 'node-b' }, { ip: '10.244.1.3', node: NODE, ready: false }])] });
    const spec = fam(s).virtualServers.get('10.96.0.10:80/TCP');
    assert.ok(spec);
    assert.deepEqual(spec.vs, { family: 'IPv4', protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'rr', flags: 0, timeout: 0 });
    assert.deepEqual(spec.realServers, [
      { address: '10.244.1.2', port: 8080, weight: 1, forward: 'masq' },
      { address: '10.244.2.2', port: 8080, weight: 1, forward: 'masq' },
    ]);
    assert.deepEqual(setEntries(s, 'KUBE-CLUSTER-IP'), ['10.96.0.10,tcp:80']);
    assert.deepEqual([...fam(s).boundAddresses], ['10.96.0.10']);
    assert.deepEqual(setEntries(s, 'KUBE-IPVS-IPS'), ['10.96.0.10']);
  });

  test('a service with no endpoints still gets its virtual server, set entry and address', () => {
    const s = plan({ services: [web()] });
    assert.deepEqual(realServers(s, '10.96.0.10:80/TCP'), []);
    assert.deepEqual(setEntries(s, 'KUBE-CLUSTER-IP'), ['10.96.0.10,tcp:80']);
  });

  test('UDP and SCTP ports use their protocol in the virtual server and entries', () => {
    const s = plan({
      services: [service('dns', { clusterIP: '10.96.0.53', ports: [{ name: 'u', port: 53, protocol: 'UDP' }, { name: 's', port: 53, protocol: 'SCTP' }] })],
      slices: [slice('dns', [{ name: 'u', port: 53, protocol: 'UDP' }, { name: 's', port: 5353, protocol: 'SCTP' }], [{ ip: '10.244.1.5' }])],
    });
    assert.deepEqual(realServers(s, '10.96.0.53:53/UDP'), ['10.244.1.5:53']);
    assert.deepEqual(realServers(s, '10.96.0.53:53/SCTP'), ['10.244.1.5:5353']);
    assert.deepEqual(setEntries(s, 'KUBE-CLUSTER-IP'), ['10.96.0.53,sctp:53', '10.96.0.53,udp:53']);
  });

  test('endpoints join service ports by port name and protocol, not by number', () => {
    const s = plan({
      services: [service('multi', { clusterIP: '10.96.0.11', ports: [{ name: 'a', port: 80 }, { name: 'b', port: 81 }] })],
      slices: [slice('multi', [{ name: 'b', port: 9001 }, { name: 'a', port: 9000 }], [{ ip: '10.244.1.7' }])],
    });
    assert.deepEqual(realServers(s, '10.96.0.11:80/TCP'), ['10.244.1.7:9000']);
    assert.deepEqual(realServers(s, '10.96.0.11:81/TCP'), ['10.244.1.7:9001']);
  });

  test('duplicate endpoints across slices become one real server', () => {
    const s = plan({
      services: [web()],
      slices: [webSlice([{ ip: '10.244.1.2' }]), slice('web', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2', node: NODE }], { name: 'web-2' })],
    });
    assert.deepEqual(realServers(s, '10.96.0.10:80/TCP'), ['10.244.1.2:8080']);
  });
});

describe('hairpin (KUBE-LOOP-BACK)', () => {
  test('holds every local endpoint whatever its readiness, and no remote one', () => {
    const s = plan({ services: [web()], slices: [webSlice([{ ip: '10.244.1.2', node: NODE }, { ip: '10.244.1.3', node: NODE, ready: false }, { ip: '10.244.2.2', node: 'node-b' }])] });
    assert.deepEqual(setEntries(s, 'KUBE-LOOP-BACK'), ['10.244.1.2,tcp:8080,10.244.1.2', '10.244.1.3,tcp:8080,10.244.1.3']);
    assert.ok(rules(s, 'nat').includes('-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE'));
  });
});

describe('NodePort', () => {
  const shop = (spec: Record<string, unknown> = {}) =>
    service('shop', { type: 'NodePort', clusterIP: '10.96.0.30', ports: [{ name: 'http', port: 8080, nodePort: 30080 }], ...spec });
  const eps = [slice('shop', [{ name: 'http', port: 8080 }], [{ ip: '10.244.2.31', node: 'node-b' }])];

  test('one virtual server per node address (no loopback, no IPv6 link-local), never bound', () => {
    const s = plan({ services: [shop()], slices: eps }, { node: node({ addresses: [NODE_IP, '10.0.0.5', '127.0.0.1', 'fe80::1', 'fd00::10'] }) });
    const keys = [...fam(s).virtualServers.keys()].filter((k) => k.endsWith(':30080/TCP')).sort();
    assert.deepEqual(keys, ['10.0.0.5:30080/TCP', '192.168.0.10:30080/TCP']);
    assert.deepEqual([...fam(s, 'IPv6').virtualServers.keys()], []); // no IPv6 ClusterIP: not proxied in IPv6
    assert.deepEqual(realServers(s, '192.168.0.10:30080/TCP'), ['10.244.2.31:8080']);
    assert.deepEqual(setEntries(s, 'KUBE-NODE-PORT-TCP'), ['30080']);
    assert.ok(!fam(s).boundAddresses.has(NODE_IP));
  });

  test('--nodeport-addresses limits the addresses, "primary" takes the primary IP', () => {
    const addresses = [NODE_IP, '10.0.0.5'];
    const byCidr = plan({ services: [shop()], slices: eps }, { node: node({ addresses }), config: config('--nodeport-addresses=10.0.0.0/8') });
    assert.deepEqual([...fam(byCidr).virtualServers.keys()].filter((k) => k.includes(':30080')), ['10.0.0.5:30080/TCP']);
    const primary = plan({ services: [shop()], slices: eps }, { node: node({ addresses }), config: config('--nodeport-addresses=primary') });
    assert.deepEqual([...fam(primary).virtualServers.keys()].filter((k) => k.includes(':30080')), ['192.168.0.10:30080/TCP']);
    // "primary" is the node IPs as host CIDRs without a loopback one (cmd/kube-proxy/app/server.go):
    // the IPv6 family of an IPv4-only node has no CIDR left, so it listens on all its addresses.
    const v4Node = node({ addresses: [NODE_IP, '10.0.0.5', 'fd00::5', 'fd00::6'] });
    const withV6 = plan({ services: [shop({ ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv4', 'IPv6'], clusterIPs: ['10.96.0.30', 'fd00::30'] })], slices: eps }, { node: { ...v4Node, primaryIPs: { IPv4: NODE_IP, IPv6: '::1' } }, config: config('--nodeport-addresses=primary') });
    assert.deepEqual([...fam(withV6).virtualServers.keys()].filter((k) => k.includes(':30080')), ['192.168.0.10:30080/TCP']);
    assert.deepEqual([...fam(withV6, 'IPv6').virtualServers.keys()].filter((k) => k.includes(':30080')), ['[fd00::5]:30080/TCP', '[fd00::6]:30080/TCP']);
    const otherFamily = plan({ services: [shop()], slices: eps }, { node: node({ addresses }), config: config('--nodeport-addresses=fd00::/8') });
    assert.equal([...fam(otherFamily).virtualServers.keys()].filter((k) => k.includes(':30080')).length, 2, 'CIDRs of the other family only: all addresses');
  });

  test('health-check node ports listen where --nodeport-addresses says (service_health.go, v1.36.3)', () => {
    const lb = service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.40', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, ports: [{ port: 443, nodePort: 30443 }] });
    const addresses = [NODE_IP, '10.0.0.5', '127.0.0.1', 'fd00::5', '::1'];
    const listen = (nodeInfo: ReturnType<typeof node>, ...flags: string[]) => plan({ services: [lb] }, { node: nodeInfo, config: config(...flags) }).healthCheckAddresses;
    // No CIDR (or a zero CIDR) of a family: the family's wildcard, as kube-proxy's tcp4 0.0.0.0 / tcp6 [::].
    assert.deepEqual(listen(node({ addresses })), ['0.0.0.0', '::']);
    assert.deepEqual(listen(node({ addresses, families: ['IPv4'] })), ['0.0.0.0']);
    assert.deepEqual(listen(node({ addresses }), '--nodeport-addresses=0.0.0.0/0,10.0.0.0/8'), ['0.0.0.0', '::']);
    // Otherwise the node addresses inside the CIDRs; the other family still listens on all.
    assert.deepEqual(listen(node({ addresses }), '--nodeport-addresses=10.0.0.0/8'), ['10.0.0.5', '::']);
    assert.deepEqual(listen(node({ addresses }), '--nodeport-addresses=10.0.0.0/8,fd00::/64'), ['10.0.0.5', 'fd00::5']);
    // GetNodeIPs keeps loopback (NodePort virtual servers leave it out; health checks do not).
    assert.deepEqual(listen(node({ addresses }), '--nodeport-addresses=127.0.0.0/8,192.168.0.0/16'), ['127.0.0.1', NODE_IP, '::']);
    assert.deepEqual(listen(node({ addresses }), '--nodeport-addresses=primary'), [NODE_IP, 'fd00::5']);
    // CIDRs that match nothing: no listener for that family (kube-proxy listens on an empty list).
    assert.deepEqual(listen(node({ addresses, families: ['IPv4'] }), '--nodeport-addresses=10.9.9.0/24'), []);
  });

  test('UDP uses its own bitmap; SCTP uses a hash of node IP and port per node address', () => {
    const s = plan({
      services: [
        service('u', { type: 'NodePort', clusterIP: '10.96.0.31', ports: [{ port: 53, nodePort: 30053, protocol: 'UDP' }] }),
        service('sc', { type: 'NodePort', clusterIP: '10.96.0.32', ports: [{ port: 3868, nodePort: 31868, protocol: 'SCTP' }] }),
      ],
    }, { node: node({ addresses: [NODE_IP, '10.0.0.5'] }) });
    assert.deepEqual(setEntries(s, 'KUBE-NODE-PORT-UDP'), ['30053']);
    assert.deepEqual(setEntries(s, 'KUBE-NODE-PORT-SCTP-HASH'), ['10.0.0.5,sctp:31868', '192.168.0.10,sctp:31868']);
    const nat = rules(s, 'nat');
    assert.ok(nat.includes('-A KUBE-NODE-PORT -p udp -m comment --comment "Kubernetes nodeport UDP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-UDP dst -j KUBE-MARK-MASQ'));
    assert.ok(nat.includes(`-A KUBE-NODE-PORT -p sctp -m comment --comment "Kubernetes nodeport SCTP port for masquerade purpose with type \\'hash ip:port\\'" -m set --match-set KUBE-NODE-PORT-SCTP-HASH dst,dst -j KUBE-MARK-MASQ`));
    assert.ok(!nat.some((r) => r.includes('KUBE-NODE-PORT-TCP')), 'rules fed by empty sets are left out');
  });

  test('externalTrafficPolicy Local: local endpoints only, Local set RETURN before the masquerade rule', () => {
    const s = plan({
      services: [shop({ externalTrafficPolicy: 'Local' })],
      slices: [slice('shop', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.31', node: NODE }, { ip: '10.244.2.31', node: 'node-b' }])],
    });
    assert.deepEqual(realServers(s, '192.168.0.10:30080/TCP'), ['10.244.1.31:8080']);
    assert.deepEqual(realServers(s, '10.96.0.30:8080/TCP'), ['10.244.1.31:8080', '10.244.2.31:8080'], 'the ClusterIP follows the internal policy');
    assert.deepEqual(setEntries(s, 'KUBE-NODE-PORT-LOCAL-TCP'), ['30080']);
    const np = rules(s, 'nat').filter((r) => r.startsWith('-A KUBE-NODE-PORT '));
    assert.deepEqual(np, [
      '-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port with externalTrafficPolicy=local" -m set --match-set KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN',
      '-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ',
    ]);
  });

  test('externalTrafficPolicy Local without a local endpoint falls back to cluster endpoints and is counted', () => {
    const s = plan({ services: [shop({ externalTrafficPolicy: 'Local' })], slices: eps });
    assert.deepEqual(realServers(s, '192.168.0.10:30080/TCP'), ['10.244.2.31:8080']);
    assert.deepEqual(fam(s).noLocalEndpoints, { internal: 0, external: 1 });
  });

  test('with no usable node address, node ports and the health-check port are skipped', () => {
    const lb = service('lb', {
      type: 'LoadBalancer', clusterIP: '10.96.0.40', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000,
      ports: [{ port: 443, nodePort: 30443 }],
    });
    const s = plan({ services: [lb] }, { node: node({ addresses: [NODE_IP] }), config: config('--nodeport-addresses=10.9.9.0/24') });
    assert.deepEqual(setEntries(s, 'KUBE-NODE-PORT-TCP'), []);
    assert.deepEqual(setEntries(s, 'KUBE-HEALTH-CHECK-NODE-PORT'), []);
    assert.ok(fam(s).virtualServers.has('10.96.0.40:443/TCP'));
  });
});

describe('ExternalIPs', () => {
  test('Cluster policy: KUBE-EXTERNAL-IP, masquerade and accept rules, bound unless already a node address', () => {
    const s = plan({ services: [web({ externalIPs: ['198.51.100.20', NODE_IP] })], slices: [webSlice([{ ip: '10.244.1.2' }])] });
    assert.deepEqual(setEntries(s, 'KUBE-EXTERNAL-IP'), ['192.168.0.10,tcp:80', '198.51.100.20,tcp:80']);
    assert.deepEqual(realServers(s, '198.51.100.20:80/TCP'), ['10.244.1.2:8080']);
    assert.ok(fam(s).boundAddresses.has('198.51.100.20'));
    assert.ok(!fam(s).boundAddresses.has(NODE_IP));
    const svc = rules(s, 'nat').filter((r) => r.includes('KUBE-EXTERNAL-IP'));
    const c = '-m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst';
    assert.deepEqual(svc, [
      `-A KUBE-SERVICES ${c} -j KUBE-MARK-MASQ`,
      `-A KUBE-SERVICES ${c} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`,
      `-A KUBE-SERVICES ${c} -m addrtype --dst-type LOCAL -j ACCEPT`,
    ]);
  });

  test('feature gate AllowServiceExternalIPs=false: nothing is programmed for externalIPs, the ClusterIP is unchanged', () => {
    // kube-proxy's ServicePort.ExternalIPs() (pkg/proxy/serviceport.go) returns none with the gate off.
    const svc = web({ externalIPs: ['198.51.100.20'] });
    const eps = [webSlice([{ ip: '10.244.1.2' }])];
    const off = plan({ services: [svc], slices: eps }, { config: config('--feature-gates=AllowServiceExternalIPs=false') });
    assert.deepEqual(setEntries(off, 'KUBE-EXTERNAL-IP'), []);
    assert.ok(!fam(off).virtualServers.has('198.51.100.20:80/TCP'));
    assert.ok(!fam(off).boundAddresses.has('198.51.100.20'));
    assert.deepEqual(rules(off, 'nat').filter((r) => r.includes('KUBE-EXTERNAL-IP')), []);
    assert.deepEqual(realServers(off, '10.96.0.10:80/TCP'), ['10.244.1.2:8080']);
    const on = plan({ services: [svc], slices: eps }, { config: config('--feature-gates=AllowServiceExternalIPs=true') });
    assert.deepEqual(setEntries(on, 'KUBE-EXTERNAL-IP'), ['198.51.100.20,tcp:80']);
  });

  test('Local policy: KUBE-EXTERNAL-IP-LOCAL, accept rules without masquerade', () => {
    const s = plan({ services: [web({ externalIPs: ['198.51.100.20'], externalTrafficPolicy: 'Local' })] });
    assert.deepEqual(setEntries(s, 'KUBE-EXTERNAL-IP'), []);
    assert.deepEqual(setEntries(s, 'KUBE-EXTERNAL-IP-LOCAL'), ['198.51.100.20,tcp:80']);
    const local = rules(s, 'nat').filter((r) => r.includes('KUBE-EXTERNAL-IP-LOCAL'));
    assert.equal(local.length, 2);
    assert.ok(local.every((r) => r.endsWith('-j ACCEPT')));
  });
});

describe('LoadBalancer', () => {
  const lb = (spec: Record<string, unknown> = {}, ingress: Array<Record<string, string>> = [{ ip: '203.0.113.10' }]) =>
    service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.40', ports: [{ name: 'https', port: 443, nodePort: 30443 }], ...spec }, { status: { loadBalancer: { ingress } } });

  test('VIP-mode ingress IPs become bound virtual servers; Proxy mode and hostname-only ingress are skipped', () => {
    const s = plan({ services: [lb({}, [{ ip: '203.0.113.10' }, { ip: '203.0.113.12', ipMode: 'Proxy' }, { hostname: 'lb.example.org' }])] });
    assert.deepEqual(setEntries(s, 'KUBE-LOAD-BALANCER'), ['203.0.113.10,tcp:443']);
    assert.ok(fam(s).virtualServers.has('203.0.113.10:443/TCP'));
    assert.ok(!fam(s).virtualServers.has('203.0.113.12:443/TCP'));
    assert.ok(fam(s).boundAddresses.has('203.0.113.10'));
    const nat = rules(s, 'nat');
    assert.ok(nat.includes('-A KUBE-SERVICES -m comment --comment "Kubernetes service lb portal" -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER'));
    assert.ok(nat.includes('-A KUBE-SERVICES -m set --match-set KUBE-LOAD-BALANCER dst,dst -j ACCEPT'));
    assert.deepEqual(nat.filter((r) => r.startsWith('-A KUBE-LOAD-BALANCER ')), ['-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ']);
  });

  test('Local policy adds the VIP to KUBE-LOAD-BALANCER-LOCAL, which returns before the masquerade mark', () => {
    const s = plan({ services: [lb({ externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 })] });
    assert.deepEqual(setEntries(s, 'KUBE-LOAD-BALANCER-LOCAL'), ['203.0.113.10,tcp:443']);
    assert.deepEqual(rules(s, 'nat').filter((r) => r.startsWith('-A KUBE-LOAD-BALANCER ')), [
      '-A KUBE-LOAD-BALANCER -m comment --comment "Kubernetes service load balancer ip + port with externalTrafficPolicy=local" -m set --match-set KUBE-LOAD-BALANCER-LOCAL dst,dst -j RETURN',
      '-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ',
    ]);
    assert.deepEqual(setEntries(s, 'KUBE-HEALTH-CHECK-NODE-PORT'), ['32000']);
    assert.equal(s.healthCheckNodePorts.get('default/lb'), 32000);
  });

  test('source ranges: firewall sets, node access allowed when a range holds the node IP', () => {
    const s = plan({ services: [lb({ loadBalancerSourceRanges: [' 198.51.100.0/24 ', '192.168.0.0/16', '10.1.1.1/32', 'fd00::/8'] })] });
    assert.deepEqual(setEntries(s, 'KUBE-LOAD-BALANCER-FW'), ['203.0.113.10,tcp:443']);
    assert.deepEqual(setEntries(s, 'KUBE-LOAD-BALANCER-SOURCE-CIDR'), [
      '203.0.113.10,tcp:443,10.1.1.1',
      '203.0.113.10,tcp:443,192.168.0.0/16',
      '203.0.113.10,tcp:443,198.51.100.0/24',
    ]);
    assert.deepEqual(setEntries(s, 'KUBE-LOAD-BALANCER-SOURCE-IP'), ['203.0.113.10,tcp:443,203.0.113.10']);
    const filter = rules(s, 'filter');
    assert.deepEqual(filter.filter((r) => r.startsWith('-A KUBE-SOURCE-RANGES-FIREWALL')), [
      '-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN',
      '-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source IP for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-IP dst,dst,src -j RETURN',
      '-A KUBE-SOURCE-RANGES-FIREWALL -j DROP',
    ]);
    assert.deepEqual(filter.filter((r) => r.startsWith('-A KUBE-IPVS-OUT-FILTER')), []);
  });

  // pkg/proxy/serviceport.go (v1.36.3): a zero-length prefix in a family's ranges means "allow
  // any", the same as no ranges, for that family only.
  test('a /0 source range opens its family as if there were no ranges (found by the fidelity harness)', () => {
    const s = plan({ services: [lb({ loadBalancerSourceRanges: ['198.51.100.0/24', '0.0.0.0/0', 'fd00::/8'] })] });
    assert.deepEqual(setEntries(s, 'KUBE-LOAD-BALANCER-FW'), []);
    assert.deepEqual(setEntries(s, 'KUBE-LOAD-BALANCER-SOURCE-CIDR'), []);
    assert.deepEqual(setEntries(s, 'KUBE-LOAD-BALANCER-SOURCE-IP'), []);
    assert.deepEqual(rules(s, 'filter').filter((r) => r.startsWith('-A KUBE-IPVS-OUT-FILTER')), []);
  });

  test('source ranges that miss the node IP block node-originated access in KUBE-IPVS-OUT-FILTER', () => {
    const s = plan({ services: [lb({ loadBalancerSourceRanges: ['198.51.100.0/24'] })] });
    assert.deepEqual(setEntries(s, 'KUBE-LOAD-BALANCER-SOURCE-IP'), []);
    assert.deepEqual(rules(s, 'filter').filter((r) => r.startsWith('-A KUBE-IPVS-OUT-FILTER')), [
      '-A KUBE-IPVS-OUT-FILTER -s 203.0.113.10/32 -m ipvs --vproto 6 --vaddr 203.0.113.10 --vport 443 -j DROP',
    ]);
    assert.ok(rules(s, 'filter').includes('-A KUBE-PROXY-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port for load balancer with sourceRange" -m set --match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-SOURCE-RANGES-FIREWALL'));
  });
});

describe('a service the planner cannot plan', () => {
  test('is left out and named, and every other service is planned as before', () => {
    const world = { services: [web(), service('api', { clusterIP: '10.96.0.11', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] })] };
    const good = snapshotOf(world);
    // A port the validation should have refused stands in for a planner bug.
    const api = good.services.get('default/api');
    assert.ok(api);
    const broken = { ...good, services: new Map([...good.services, ['default/api', { ...api, ports: api.ports.map((p) => ({ ...p, port: 70000 })) }]]) };
    const s = planCluster(broken, { node: node(), config: config() });
    assert.deepEqual([...s.unplannable.keys()], ['default/api']);
    assert.match(s.unplannable.get('default/api') ?? '', /70000/);
    assert.deepEqual([...fam(s).virtualServers.keys()], ['10.96.0.10:80/TCP']);
    assert.deepEqual(setEntries(s, 'KUBE-CLUSTER-IP'), ['10.96.0.10,tcp:80']);
  });
});

describe('session affinity', () => {
  test('ClientIP sets the persistent flag and the timeout on every virtual server of the port', () => {
    const s = plan({ services: [web({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } }, externalIPs: ['198.51.100.20'] })] });
    for (const key of ['10.96.0.10:80/TCP', '198.51.100.20:80/TCP']) {
      const vs = fam(s).virtualServers.get(key)?.vs;
      assert.equal(vs?.flags, 0x1, key);
      assert.equal(vs?.timeout, 600, key);
    }
  });

  test('the API default of 10800 s applies when the timeout is not given', () => {
    const s = plan({ services: [web({ sessionAffinity: 'ClientIP' })] });
    assert.equal(fam(s).virtualServers.get('10.96.0.10:80/TCP')?.vs.timeout, 10800);
  });
});

describe('internalTrafficPolicy Local', () => {
  test('the ClusterIP gets local endpoints only', () => {
    const s = plan({ services: [web({ internalTrafficPolicy: 'Local' })], slices: [webSlice([{ ip: '10.244.1.2', node: NODE }, { ip: '10.244.2.2', node: 'node-b' }])] });
    assert.deepEqual(realServers(s, '10.96.0.10:80/TCP'), ['10.244.1.2:8080']);
  });

  test('no local endpoint on a ClusterIP-only service: no real server at all, counted as internal', () => {
    const s = plan({ services: [web({ internalTrafficPolicy: 'Local' })], slices: [webSlice([{ ip: '10.244.2.2', node: 'node-b' }])] });
    assert.deepEqual(realServers(s, '10.96.0.10:80/TCP'), []);
    assert.deepEqual(fam(s).noLocalEndpoints, { internal: 1, external: 0 });
  });
});

describe('terminating endpoints', () => {
  test('serving-terminating endpoints are used only when no endpoint is ready', () => {
    const eps = [{ ip: '10.244.1.2', ready: false, serving: true, terminating: true }, { ip: '10.244.1.3', ready: false, serving: false, terminating: true }];
    const onlyTerminating = plan({ services: [web()], slices: [webSlice(eps)] });
    assert.deepEqual(realServers(onlyTerminating, '10.96.0.10:80/TCP'), ['10.244.1.2:8080']);
    const withReady = plan({ services: [web()], slices: [webSlice([...eps, { ip: '10.244.2.9' }])] });
    assert.deepEqual(realServers(withReady, '10.96.0.10:80/TCP'), ['10.244.2.9:8080']);
  });

  test('Local policy prefers local ready, then local serving-terminating endpoints', () => {
    const s = plan({
      services: [web({ internalTrafficPolicy: 'Local' })],
      slices: [webSlice([{ ip: '10.244.1.2', node: NODE, ready: false, serving: true, terminating: true }, { ip: '10.244.2.2', node: 'node-b' }])],
    });
    assert.deepEqual(realServers(s, '10.96.0.10:80/TCP'), ['10.244.1.2:8080']);
  });
});

describe('topology hints', () => {
  const zoned = node({ labels: { 'topology.kubernetes.io/zone': 'zone-a' } });
  test('when every ready endpoint has zone hints and one is for this zone, only those are used', () => {
    const s = plan({ services: [web()], slices: [webSlice([{ ip: '10.244.1.2', zoneHints: ['zone-a'] }, { ip: '10.244.2.2', zoneHints: ['zone-b'] }])] }, { node: zoned });
    assert.deepEqual(realServers(s, '10.96.0.10:80/TCP'), ['10.244.1.2:8080']);
  });

  test('an endpoint without hints, or no hint for this zone, disables the filter', () => {
    const missing = plan({ services: [web()], slices: [webSlice([{ ip: '10.244.1.2', zoneHints: ['zone-a'] }, { ip: '10.244.2.2' }])] }, { node: zoned });
    assert.equal(realServers(missing, '10.96.0.10:80/TCP')?.length, 2);
    const otherZones = plan({ services: [web()], slices: [webSlice([{ ip: '10.244.1.2', zoneHints: ['zone-c'] }, { ip: '10.244.2.2', zoneHints: ['zone-b'] }])] }, { node: zoned });
    assert.equal(realServers(otherZones, '10.96.0.10:80/TCP')?.length, 2);
  });

  test('node hints for this node win over zone hints', () => {
    const s = plan({
      services: [web()],
      slices: [webSlice([{ ip: '10.244.1.2', zoneHints: ['zone-a'], nodeHints: [NODE] }, { ip: '10.244.1.9', zoneHints: ['zone-a'], nodeHints: ['node-z'] }])],
    }, { node: zoned });
    assert.deepEqual(realServers(s, '10.96.0.10:80/TCP'), ['10.244.1.2:8080']);
  });
});

describe('masquerading of ClusterIP traffic', () => {
  const clusterRule = (flags: string[]) => rules(plan({ services: [web()] }, { config: config(...flags) }), 'nat').find((r) => r.includes('KUBE-CLUSTER-IP') && r.includes('KUBE-MARK-MASQ'));
  const c = '-m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP';
  test('default: src,dst (host connections sourced from a VIP)', () => {
    assert.equal(clusterRule([]), `-A KUBE-SERVICES ${c} src,dst -j KUBE-MARK-MASQ`);
  });
  test('--cluster-cidr: traffic not from the pod range', () => {
    assert.equal(clusterRule(['--cluster-cidr=10.244.0.0/16']), `-A KUBE-SERVICES ! -s 10.244.0.0/16 ${c} dst,dst -j KUBE-MARK-MASQ`);
  });
  test('--masquerade-all wins over the detector', () => {
    assert.equal(clusterRule(['--masquerade-all', '--cluster-cidr=10.244.0.0/16']), `-A KUBE-SERVICES ${c} dst,dst -j KUBE-MARK-MASQ`);
  });
  test('interface-based detectors', () => {
    assert.equal(clusterRule(['--detect-local-mode=BridgeInterface', '--pod-bridge-interface=cbr0']), `-A KUBE-SERVICES ! -i cbr0 ${c} dst,dst -j KUBE-MARK-MASQ`);
    assert.equal(clusterRule(['--detect-local-mode=InterfaceNamePrefix', '--pod-interface-name-prefix=veth']), `-A KUBE-SERVICES ! -i veth+ ${c} dst,dst -j KUBE-MARK-MASQ`);
  });
  test('--iptables-masquerade-bit changes the mark everywhere', () => {
    const nat = rules(plan({ services: [web()] }, { config: config('--iptables-masquerade-bit=3') }), 'nat');
    assert.ok(nat.includes('-A KUBE-MARK-MASQ -j MARK --set-xmark 0x8/0x8'));
    assert.ok(nat.includes('-A KUBE-POSTROUTING -m mark ! --mark 0x8/0x8 -j RETURN'));
    assert.ok(nat.includes('-A KUBE-POSTROUTING -j MARK --set-xmark 0x8/0x0'));
  });
});

describe('fixed rules', () => {
  test('KUBE-SERVICES order and KUBE-IPVS-FILTER closing every non-service port of a VIP', () => {
    const s = plan({ services: [web()] });
    assert.deepEqual(rules(s, 'nat').filter((r) => r.startsWith('-A KUBE-SERVICES ')), [
      '-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN',
      '-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ',
      '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT',
      '-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT',
    ]);
    assert.deepEqual(rules(s, 'filter').filter((r) => r.startsWith('-A KUBE-IPVS-FILTER ')), [
      '-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN',
      '-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN',
      '-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN',
      '-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN',
      '-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN',
      '-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT --reject-with icmp-port-unreachable',
    ]);
  });

  test('an empty cluster still has the base rules and every set', () => {
    const s = plan({});
    assert.equal(fam(s).ipsets.length, 17);
    assert.ok(rules(s, 'filter').includes('-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT'));
    assert.ok(!rules(s, 'nat').some((r) => r.includes('KUBE-CLUSTER-IP')));
    assert.ok(rules(s, 'nat').includes('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully'));
  });
});

describe('IPv6 and dual-stack', () => {
  const dualNode = node({ addresses: [NODE_IP, 'fd00:192::10'] });
  test('a dual-stack service gets one virtual server per family, IPv6 sets are KUBE-6-*', () => {
    const s = plan({
      services: [web({ clusterIPs: ['10.96.0.10', 'FD00:10:96::0010'], type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] })],
      slices: [webSlice([{ ip: '10.244.1.2' }]), slice('web', [{ name: 'http', port: 8080 }], [{ ip: 'fd00:244::2' }], { name: 'web-v6' })],
    }, { node: dualNode });
    assert.deepEqual(realServers(s, '[fd00:10:96::10]:80/TCP'), ['[fd00:244::2]:8080']);
    assert.deepEqual(realServers(s, '10.96.0.10:80/TCP'), ['10.244.1.2:8080']);
    assert.deepEqual(setEntries(s, 'KUBE-6-CLUSTER-IP'), ['fd00:10:96::10,tcp:80']);
    assert.deepEqual(setEntries(s, 'KUBE-6-NODE-PORT-TCP'), ['30080']);
    assert.ok(fam(s, 'IPv6').virtualServers.has('[fd00:192::10]:30080/TCP'));
    assert.ok(fam(s, 'IPv6').ipsets.every((x) => x.spec.family === 'inet6' && x.spec.name.startsWith('KUBE-6-')));
    assert.ok(rules(s, 'nat', 'IPv6').includes('-A KUBE-SERVICES -s ::1/128 -j RETURN'));
    assert.ok(rules(s, 'filter', 'IPv6').some((r) => r.endsWith('-j REJECT --reject-with icmp6-port-unreachable')));
  });

  test('IPv6 set names over 31 characters are cut exactly as kube-proxy cuts them', () => {
    const names = fam(plan({}, { node: dualNode }), 'IPv6').ipsets.map((x) => x.spec.name);
    assert.ok(names.includes('KUBE-6-LOAD-BALANCER-SOURCE-CID'));
    assert.ok(names.includes('KUBE-6-NODE-PORT-LOCAL-SCTP-HAS'));
    assert.ok(names.every((n) => n.length <= 31));
  });
});

describe('schedulers', () => {
  test('--ipvs-scheduler applies to every virtual server; mh adds the source-port hash flag', () => {
    const s = plan({ services: [web()] }, { config: config('--ipvs-scheduler=mh') });
    assert.deepEqual([fam(s).virtualServers.get('10.96.0.10:80/TCP')?.vs.scheduler, fam(s).virtualServers.get('10.96.0.10:80/TCP')?.vs.flags], ['mh', 0x10]);
  });

  test('the kube-ipvs.io/scheduler annotation overrides it per service, with flags', () => {
    const s = plan({ services: [web({}, { metadata: { annotations: { 'kube-ipvs.io/scheduler': 'sh', 'kube-ipvs.io/scheduler-flags': 'sh-fallback,sh-port' } } })] });
    assert.deepEqual([fam(s).virtualServers.get('10.96.0.10:80/TCP')?.vs.scheduler, fam(s).virtualServers.get('10.96.0.10:80/TCP')?.vs.flags], ['sh', 0x18]);
  });

  test('an unknown scheduler in the annotation is reported and the default used', () => {
    const problems: Problem[] = [];
    const s = plan({ services: [web({}, { metadata: { annotations: { 'kube-ipvs.io/scheduler': 'fastest' } } })] }, { problems });
    assert.equal(fam(s).virtualServers.get('10.96.0.10:80/TCP')?.vs.scheduler, 'rr');
    assert.equal(problems.length, 1);
    assert.match(problems[0]?.reason ?? '', /unknown IPVS scheduler "fastest"/);
    assert.equal(problems[0]?.name, 'web');
  });
});

describe('services kube-proxy does not proxy', () => {
  test('headless, ExternalName and labelled services, slices without a service name, FQDN slices', () => {
    const s = plan({
      services: [
        service('headless', { clusterIP: 'None', ports: [{ port: 80 }] }),
        service('ext', { type: 'ExternalName', externalName: 'example.org' }),
        service('other-proxy', { clusterIP: '10.96.0.99', ports: [{ port: 80 }] }, { metadata: { labels: { 'service.kubernetes.io/service-proxy-name': 'foo' } } }),
        web(),
      ],
      slices: [
        { ...webSlice([{ ip: '10.244.1.2' }]), metadata: { name: 'orphan', namespace: 'default' } },
        slice('web', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.3' }], { name: 'web-fqdn', addressType: 'FQDN' }),
      ],
    });
    assert.deepEqual([...fam(s).virtualServers.keys()], ['10.96.0.10:80/TCP']);
    assert.deepEqual(realServers(s, '10.96.0.10:80/TCP'), []);
  });
});

describe('malformed objects', () => {
  test('are reported with kind, name and field and skipped; the rest is planned', () => {
    const problems: Problem[] = [];
    const s = plan({
      services: [
        service('bad-ip', { clusterIP: '10.96.0.300', ports: [{ port: 80 }] }),
        service('bad-port', { clusterIP: '10.96.0.12', ports: [{ port: 70000 }] }),
        service('bad-proto', { clusterIP: '10.96.0.13', ports: [{ port: 80, protocol: 'ICMP' }] }),
        service('no-nodeport', { type: 'NodePort', clusterIP: '10.96.0.14', ports: [{ port: 80 }] }),
        web(),
      ],
      slices: [webSlice([{ ip: '10.244.1.2' }, { ip: 'not-an-ip' }])],
    }, { problems });
    assert.deepEqual([...fam(s).virtualServers.keys()], ['10.96.0.10:80/TCP']);
    assert.deepEqual(realServers(s, '10.96.0.10:80/TCP'), ['10.244.1.2:8080']);
    const byName = new Map(problems.map((p) => [p.name, p]));
    assert.equal(byName.get('bad-ip')?.field, 'spec.clusterIP');
    assert.equal(byName.get('bad-port')?.field, 'spec.ports[0].port');
    assert.equal(byName.get('bad-proto')?.field, 'spec.ports[0].protocol');
    assert.equal(byName.get('no-nodeport')?.field, 'spec.ports[0].nodePort');
    assert.equal(byName.get('web-slice')?.kind, 'EndpointSlice');
    assert.equal(byName.get('web-slice')?.field, 'endpoints[1].addresses[0]');
  });
});

describe('sysctls', () => {
  const keys = (kernel: string, ...flags: string[]) => plan({}, { node: node({ kernel }), config: config(...flags) }).sysctls.map((x) => `${x.key}=${x.value}`);
  test('conn_reuse_mode=0 only on kernels from 4.1 to before 5.9', () => {
    assert.ok(keys('5.4.0').includes('net/ipv4/vs/conn_reuse_mode=0'));
    assert.ok(!keys('5.10.0').some((k) => k.includes('conn_reuse_mode')));
    assert.ok(!keys('3.10.0').some((k) => k.includes('conn_reuse_mode')));
  });
  test('always conntrack, expire_nodest_conn, expire_quiescent_template, ip_forward; strict ARP only when asked', () => {
    const k = keys('6.1.0');
    for (const want of ['net/ipv4/vs/conntrack=1', 'net/ipv4/vs/expire_nodest_conn=1', 'net/ipv4/vs/expire_quiescent_template=1', 'net/ipv4/ip_forward=1']) assert.ok(k.includes(want), want);
    assert.ok(!k.some((x) => x.includes('arp_')));
    const strict = keys('6.1.0', '--ipvs-strict-arp');
    assert.ok(strict.includes('net/ipv4/conf/all/arp_ignore=1') && strict.includes('net/ipv4/conf/all/arp_announce=2'));
  });
  test('conntrack: tcp_be_liberal, udp_timeout and udp_timeout_stream only when set (pkg/proxy/conntrack SetSysctls)', () => {
    const plain = keys('6.1.0');
    assert.ok(!plain.some((k) => /tcp_be_liberal|udp_timeout/.test(k)), plain.join(' '));
    const set = keys('6.1.0', '--conntrack-tcp-be-liberal', '--conntrack-udp-timeout=30s', '--conntrack-udp-timeout-stream=2m30.9s');
    for (const want of ['net/netfilter/nf_conntrack_tcp_be_liberal=1', 'net/netfilter/nf_conntrack_udp_timeout=30', 'net/netfilter/nf_conntrack_udp_timeout_stream=150']) {
      assert.ok(set.includes(want), want);
    }
  });
});

describe('conflicts', () => {
  test('two services claiming one external IP and port: the first by name wins, both reported', () => {
    const a = service('a', { clusterIP: '10.96.0.21', externalIPs: ['198.51.100.9'], ports: [{ port: 80 }] });
    const b = service('b', { clusterIP: '10.96.0.22', externalIPs: ['198.51.100.9'], ports: [{ port: 80 }] });
    const s = plan({ services: [b, a], slices: [slice('a', [{ port: 8080 }], [{ ip: '10.244.1.1' }]), slice('b', [{ port: 9090 }], [{ ip: '10.244.1.2' }])] });
    assert.deepEqual(realServers(s, '198.51.100.9:80/TCP'), ['10.244.1.1:8080']);
    assert.deepEqual(s.conflicts, [{ vsKey: '198.51.100.9:80/TCP', family: 'IPv4', winner: 'default/a/TCP', losers: ['default/b/TCP'] }]);
  });
});
