// The packet tracer over planned states: the access paths of the seed (pod/node → ClusterIP via
// OUTPUT/PREROUTING, outside → NodePort, LB source ranges, hairpin, VIP host ports) and the rule
// evaluator's own semantics. Expected answers come from kube-proxy's IPVS-mode rules
// (pkg/proxy/ipvs/proxier.go writeIptablesRules and acceptIPVSTraffic, kubernetes v1.36.3) and
// the kernel's iptables, ipset and IPVS semantics, not from the tracer.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { config, NODE, NODE_IP, node, plan, service, slice } from '../helpers/world.js';
import type { World } from '../helpers/world.js';
import type { ProxyConfig } from '../../src/config/types.js';
import type { DesiredState } from '../../src/plan/desired.js';
import { defaultOrigin, tracePacket, TraceError } from '../../src/trace/trace.js';
import type { TracePacket, TraceResult } from '../../src/trace/trace.js';
import { compileRule, traverse, compileTable } from '../../src/trace/rule-eval.js';
import type { EvalPacket, MatchEnv } from '../../src/trace/rule-eval.js';
import { IpsetIndex } from '../../src/trace/ipset-match.js';
import { parseIp } from '../../src/model/ip.js';
import { parseDestination, runTrace, TRACE_FLAGS } from '../../src/cli/trace.js';
import { UsageError } from '../../src/cli/errors.js';

const POD_A = '10.244.1.2'; // on this node
const POD_B = '10.244.2.2'; // on node-b
const CLIENT = '203.0.113.77'; // somewhere outside the cluster
const CIP = '10.96.0.10';
const NODE_ADDR = { addresses: [NODE_IP] };

const web = (spec: Record<string, unknown> = {}, extra = {}) =>
  service('web', { clusterIP: CIP, ports: [{ name: 'http', port: 80, protocol: 'TCP' }], ...spec }, extra);
const webSlice = (eps: Parameters<typeof slice>[2] = [{ ip: POD_A, node: NODE }, { ip: POD_B, node: 'node-b' }]) =>
  slice('web', [{ name: 'http', port: 8080 }], eps);

type Pkt = Partial<TracePacket> & Pick<TracePacket, 'src' | 'dst' | 'dstPort'>;

function trace(world: World, p: Pkt, opts: { config?: ProxyConfig; addresses?: string[] } = {}): TraceResult {
  const addresses = opts.addresses ?? [NODE_IP];
  const state = plan(world, { ...(opts.config ? { config: opts.config } : {}), node: node({ addresses }) });
  return traceState(state, p, addresses);
}

function traceState(state: DesiredState, p: Pkt, addresses = [NODE_IP]): TraceResult {
  const packet: TracePacket = { protocol: 'TCP', origin: defaultOrigin(state, p.src, { addresses }), ...p };
  return tracePacket(state, packet, { addresses });
}

/** The three facts every case asserts. */
function expectResult(r: TraceResult, verdict: TraceResult['verdict'], realServers: string[], masquerade: boolean): void {
  const ctx = `\n${r.steps.join('\n')}`;
  assert.equal(r.verdict, verdict, `verdict${ctx}`);
  assert.deepEqual(r.realServers, realServers, `real servers${ctx}`);
  assert.equal(r.masquerade, masquerade, `masquerade${ctx}`);
}

function perRs(r: TraceResult): Record<string, boolean> {
  return Object.fromEntries(r.perRealServer.map((x) => [x.realServer, x.masquerade]));
}

describe('pod → ClusterIP (PREROUTING → KUBE-SERVICES → ACCEPT → IPVS in INPUT)', () => {
  const world = { services: [web()], slices: [webSlice()] };

  test('not masqueraded by default: the src,dst rule only catches a VIP source', () => {
    const r = trace(world, { src: '10.244.3.9', dst: CIP, dstPort: 80, origin: 'pod' });
    expectResult(r, 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], false);
    assert.equal(r.virtualServer, '10.96.0.10:80/TCP');
    assert.ok(r.steps.some((s) => s.includes('KUBE-SERVICES: -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT (match: ACCEPT)')));
  });

  test('--masquerade-all masquerades everything sent to a ClusterIP', () => {
    const r = trace(world, { src: '10.244.3.9', dst: CIP, dstPort: 80, origin: 'pod' }, { config: config('--masquerade-all') });
    expectResult(r, 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], true);
    assert.match(r.masqueradeReason ?? '', /KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ/);
  });

  test('a port the service does not have on the ClusterIP is rejected by KUBE-IPVS-FILTER', () => {
    const r = trace(world, { src: '10.244.3.9', dst: CIP, dstPort: 22, origin: 'pod' });
    expectResult(r, 'rejected', [], false);
    assert.ok(r.steps.some((s) => s.includes('KUBE-IPVS-FILTER: -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT')));
  });

  test('the wrong protocol is not the service: UDP to a TCP-only ClusterIP port is rejected', () => {
    const r = trace(world, { src: '10.244.3.9', dst: CIP, dstPort: 80, protocol: 'UDP', origin: 'pod' });
    expectResult(r, 'rejected', [], false);
  });
});

describe('hairpin: a pod reaching itself through its service', () => {
  test('masqueraded only towards itself (KUBE-LOOP-BACK dst,dst,src)', () => {
    const r = trace({ services: [web()], slices: [webSlice()] }, { src: POD_A, dst: CIP, dstPort: 80, origin: 'pod' });
    expectResult(r, 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], false);
    assert.deepEqual(perRs(r), { [`${POD_A}:8080`]: true, [`${POD_B}:8080`]: false });
    assert.match(r.perRealServer[0]?.masqueradeReason ?? '', /hairpin/);
  });

  test('a single-endpoint service: every candidate is the pod itself, so always masqueraded', () => {
    const r = trace({ services: [web()], slices: [webSlice([{ ip: POD_A, node: NODE }])] }, { src: POD_A, dst: CIP, dstPort: 80, origin: 'pod' });
    expectResult(r, 'load-balanced', [`${POD_A}:8080`], true);
    assert.match(r.masqueradeReason ?? '', /hairpin/);
  });

  test('a remote pod reaching itself is not hairpinned here (it is not in this node\'s KUBE-LOOP-BACK)', () => {
    const r = trace({ services: [web()], slices: [webSlice()] }, { src: POD_B, dst: CIP, dstPort: 80, origin: 'pod' });
    expectResult(r, 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], false);
  });
});

describe('node → ClusterIP (OUTPUT → KUBE-SERVICES; IPVS in LOCAL_OUT)', () => {
  const world = { services: [web()], slices: [webSlice()] };

  test('source = the node IP: not masqueraded', () => {
    const r = trace(world, { src: NODE_IP, dst: CIP, dstPort: 80 });
    expectResult(r, 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], false);
  });

  test('source picked from a VIP on kube-ipvs0: masqueraded by the src,dst rule', () => {
    const r = trace(world, { src: CIP, dst: CIP, dstPort: 80 });
    expectResult(r, 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], true);
    assert.match(r.masqueradeReason ?? '', /KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ/);
  });

  test('loopback clients skip KUBE-SERVICES (RETURN); a 127/8 source cannot reach a remote real server', () => {
    const r = trace(world, { src: '127.0.0.1', dst: CIP, dstPort: 80 });
    expectResult(r, 'dropped', [], false);
    assert.ok(r.steps.some((s) => s.includes('-s 127.0.0.0/8 -j RETURN (match: RETURN)')));
    expectResult(trace(world, { src: '127.0.0.1', dst: CIP, dstPort: 80, origin: 'external' }), 'dropped', [], false);
  });

  test('a VIP host port is rejected after looping back into filter INPUT', () => {
    const r = trace(world, { src: NODE_IP, dst: CIP, dstPort: 22 });
    expectResult(r, 'rejected', [], false);
  });
});

describe('outside → NodePort (PREROUTING → KUBE-NODE-PORT)', () => {
  const shop = (spec: Record<string, unknown> = {}) =>
    service('shop', { type: 'NodePort', clusterIP: '10.96.0.30', ports: [{ name: 'http', port: 8080, nodePort: 30080 }], ...spec });
  const eps = [slice('shop', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.31', node: NODE }, { ip: '10.244.2.31', node: 'node-b' }])];

  test('externalTrafficPolicy Cluster: every endpoint, masqueraded', () => {
    const r = trace({ services: [shop()], slices: eps }, { src: CLIENT, dst: NODE_IP, dstPort: 30080 });
    expectResult(r, 'load-balanced', ['10.244.1.31:8080', '10.244.2.31:8080'], true);
    assert.equal(r.virtualServer, '192.168.0.10:30080/TCP');
    assert.match(r.masqueradeReason ?? '', /KUBE-NODE-PORT rule "-p tcp -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ"/);
  });

  test('externalTrafficPolicy Local: only the local endpoint, client IP kept', () => {
    const r = trace({ services: [shop({ externalTrafficPolicy: 'Local' })], slices: eps }, { src: CLIENT, dst: NODE_IP, dstPort: 30080 });
    expectResult(r, 'load-balanced', ['10.244.1.31:8080'], false);
    assert.ok(r.steps.some((s) => s.includes('KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN (match: RETURN)')));
  });

  test('the node itself reaching its NodePort is masqueraded (OUTPUT also passes KUBE-NODE-PORT)', () => {
    const r = trace({ services: [shop()], slices: eps }, { src: NODE_IP, dst: NODE_IP, dstPort: 30080 });
    expectResult(r, 'load-balanced', ['10.244.1.31:8080', '10.244.2.31:8080'], true);
  });

  test('no localhost NodePorts: 127.0.0.1:30080 reaches a host socket, not IPVS', () => {
    const r = trace({ services: [shop()], slices: eps }, { src: '127.0.0.1', dst: '127.0.0.1', dstPort: 30080 });
    expectResult(r, 'host', [], false);
  });

  test('UDP and SCTP node ports use their own sets', () => {
    const world = {
      services: [
        service('u', { type: 'NodePort', clusterIP: '10.96.0.31', ports: [{ name: 'dns', port: 53, nodePort: 30053, protocol: 'UDP' }] }),
        service('sc', { type: 'NodePort', clusterIP: '10.96.0.32', externalTrafficPolicy: 'Local', ports: [{ name: 'd', port: 3868, nodePort: 31868, protocol: 'SCTP' }] }),
      ],
      slices: [
        slice('u', [{ name: 'dns', port: 5353, protocol: 'UDP' }], [{ ip: '10.244.2.5', node: 'node-b' }]),
        slice('sc', [{ name: 'd', port: 3868, protocol: 'SCTP' }], [{ ip: '10.244.1.7', node: NODE }]),
      ],
    };
    expectResult(trace(world, { src: CLIENT, dst: NODE_IP, dstPort: 30053, protocol: 'UDP' }), 'load-balanced', ['10.244.2.5:5353'], true);
    expectResult(trace(world, { src: CLIENT, dst: NODE_IP, dstPort: 31868, protocol: 'SCTP' }), 'load-balanced', ['10.244.1.7:3868'], false);
    // A TCP packet to the UDP node port: no TCP virtual server, and nothing rejects a node IP port.
    expectResult(trace(world, { src: CLIENT, dst: NODE_IP, dstPort: 30053, protocol: 'TCP' }), 'host', [], false);
  });
});

describe('outside → LoadBalancer', () => {
  const lb = (spec: Record<string, unknown> = {}, ingress = [{ ip: '198.51.100.10' }]) =>
    service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.40', ports: [{ name: 'https', port: 443, nodePort: 30443 }], ...spec }, { status: { loadBalancer: { ingress } } });
  const eps = [slice('lb', [{ name: 'https', port: 8443 }], [{ ip: '10.244.1.41', node: NODE }, { ip: '10.244.2.41', node: 'node-b' }])];
  const both = ['10.244.1.41:8443', '10.244.2.41:8443'];

  test('without source ranges: load-balanced and masqueraded (KUBE-LOAD-BALANCER → KUBE-MARK-MASQ)', () => {
    const r = trace({ services: [lb()], slices: eps }, { src: CLIENT, dst: '198.51.100.10', dstPort: 443 });
    expectResult(r, 'load-balanced', both, true);
    assert.match(r.masqueradeReason ?? '', /KUBE-LOAD-BALANCER rule "-j KUBE-MARK-MASQ"/);
  });

  test('externalTrafficPolicy Local: local endpoint only, not masqueraded', () => {
    const r = trace({ services: [lb({ externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 })], slices: eps }, { src: CLIENT, dst: '198.51.100.10', dstPort: 443 });
    expectResult(r, 'load-balanced', ['10.244.1.41:8443'], false);
  });

  test('with source ranges: an allowed source passes, any other is dropped in filter INPUT', () => {
    const world = { services: [lb({ loadBalancerSourceRanges: ['203.0.113.0/24'] })], slices: eps };
    expectResult(trace(world, { src: CLIENT, dst: '198.51.100.10', dstPort: 443 }), 'load-balanced', both, true);
    const denied = trace(world, { src: '8.8.8.8', dst: '198.51.100.10', dstPort: 443 });
    expectResult(denied, 'dropped', [], false);
    assert.ok(denied.steps.some((s) => s.includes('KUBE-SOURCE-RANGES-FIREWALL: -j DROP (match: DROP)')));
  });

  test('the node reaching a restricted LB whose ranges miss it: dropped by KUBE-IPVS-OUT-FILTER', () => {
    const world = { services: [lb({ loadBalancerSourceRanges: ['203.0.113.0/24'] })], slices: eps };
    // The kernel picks the local VIP itself as the source of a connection to it.
    const r = trace(world, { src: '198.51.100.10', dst: '198.51.100.10', dstPort: 443 });
    expectResult(r, 'dropped', [], false);
    assert.equal(r.virtualServer, '198.51.100.10:443/TCP');
    assert.ok(r.steps.some((s) => s.includes('KUBE-IPVS-OUT-FILTER: -s 198.51.100.10/32 -m ipvs --vproto 6 --vaddr 198.51.100.10 --vport 443 -j DROP (match: DROP)')));
  });

  test('the node reaching a restricted LB whose ranges cover it: allowed', () => {
    const world = { services: [lb({ loadBalancerSourceRanges: ['203.0.113.0/24', '192.168.0.0/16'] })], slices: eps };
    const r = trace(world, { src: '198.51.100.10', dst: '198.51.100.10', dstPort: 443 });
    expectResult(r, 'load-balanced', both, true);
  });

  test('the LB VIP on a port it does not serve is rejected', () => {
    const r = trace({ services: [lb()], slices: eps }, { src: CLIENT, dst: '198.51.100.10', dstPort: 22 });
    expectResult(r, 'rejected', [], false);
  });

  test('the health-check node port is accepted for the host (kube-proxy answers it)', () => {
    const world = { services: [lb({ externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 })], slices: eps };
    expectResult(trace(world, { src: CLIENT, dst: NODE_IP, dstPort: 32000 }), 'host', [], false);
  });
});

describe('externalIPs', () => {
  const eps = [webSlice()];
  test('from outside: load-balanced and masqueraded', () => {
    const r = trace({ services: [web({ externalIPs: ['198.51.100.20'] })], slices: eps }, { src: CLIENT, dst: '198.51.100.20', dstPort: 80 });
    expectResult(r, 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], true);
    assert.match(r.masqueradeReason ?? '', /KUBE-EXTERNAL-IP dst,dst -j KUBE-MARK-MASQ/);
  });

  test('externalTrafficPolicy Local: local endpoint, not masqueraded', () => {
    const r = trace({ services: [web({ externalIPs: ['198.51.100.20'], externalTrafficPolicy: 'Local' })], slices: eps }, { src: CLIENT, dst: '198.51.100.20', dstPort: 80 });
    expectResult(r, 'load-balanced', [`${POD_A}:8080`], false);
  });
});

describe('--cluster-cidr (local-traffic detector)', () => {
  const world = { services: [web()], slices: [webSlice()] };
  const cfg = config('--cluster-cidr=10.244.0.0/16');

  test('an off-cluster source to a ClusterIP is masqueraded', () => {
    expectResult(trace(world, { src: CLIENT, dst: CIP, dstPort: 80 }, { config: cfg }), 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], true);
  });

  test('a pod source is not', () => {
    expectResult(trace(world, { src: '10.244.3.9', dst: CIP, dstPort: 80, origin: 'pod' }, { config: cfg }), 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], false);
  });

  test('InterfaceNamePrefix mode needs the input interface, and decides by it', () => {
    const ifCfg = config('--detect-local-mode=InterfaceNamePrefix', '--pod-interface-name-prefix=veth');
    assert.throws(() => trace(world, { src: '10.244.3.9', dst: CIP, dstPort: 80, origin: 'pod' }, { config: ifCfg }), (e: unknown) => e instanceof TraceError && /input interface/.test(e.message));
    expectResult(trace(world, { src: '10.244.3.9', dst: CIP, dstPort: 80, origin: 'pod', inInterface: 'veth1234' }, { config: ifCfg }), 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], false);
    expectResult(trace(world, { src: CLIENT, dst: CIP, dstPort: 80, inInterface: 'eth0' }, { config: ifCfg }), 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], true);
    // Locally generated packets have no input interface: `! -i veth+` matches, so they are marked.
    expectResult(trace(world, { src: NODE_IP, dst: CIP, dstPort: 80 }, { config: ifCfg }), 'load-balanced', [`${POD_A}:8080`, `${POD_B}:8080`], true);
  });
});

describe('host ports, other destinations, conntrack state', () => {
  const world = { services: [web()], slices: [webSlice()] };

  test('a host port through a VIP is rejected for new connections (k/k #72236) ...', () => {
    expectResult(trace(world, { src: CLIENT, dst: CIP, dstPort: 22 }), 'rejected', [], false);
  });

  test('... but an established one is not (the REJECT is NEW-only)', () => {
    expectResult(trace(world, { src: CLIENT, dst: CIP, dstPort: 22, ctState: 'ESTABLISHED' }), 'host', [], false);
  });

  test('a node IP port that is no service reaches the host', () => {
    expectResult(trace(world, { src: CLIENT, dst: NODE_IP, dstPort: 22 }), 'host', [], false);
  });

  test('a destination that is not local is forwarded, not traced further', () => {
    expectResult(trace(world, { src: CLIENT, dst: '10.244.2.2', dstPort: 8080 }), 'not-local', [], false);
    expectResult(trace(world, { src: NODE_IP, dst: '1.1.1.1', dstPort: 443 }), 'not-local', [], false);
  });

  test('a service without endpoints: IPVS answers port unreachable', () => {
    const r = trace({ services: [web()] }, { src: '10.244.3.9', dst: CIP, dstPort: 80, origin: 'pod' });
    expectResult(r, 'no-endpoints', [], false);
    assert.equal(r.virtualServer, '10.96.0.10:80/TCP');
  });

  test('an endpoint on a local address (host network) is delivered here, never masqueraded', () => {
    const r = trace({ services: [web()], slices: [webSlice([{ ip: NODE_IP, node: NODE }])] }, { src: CLIENT, dst: CIP, dstPort: 80 }, { config: config('--masquerade-all') });
    expectResult(r, 'load-balanced', [`${NODE_IP}:8080`], false);
  });
});

describe('IPv6', () => {
  const v6 = service('web6', { clusterIP: 'fd00:10:96::10', ipFamilies: ['IPv6'], ports: [{ name: 'http', port: 80 }] });
  const v6Slice = slice('web6', [{ name: 'http', port: 8080 }], [{ ip: 'fd00:244:1::2', node: NODE }], { addressType: 'IPv6' });
  const addresses = [NODE_IP, 'fd00:192::10'];

  test('pod → ClusterIP and its hairpin use the KUBE-6- sets', () => {
    const world = { services: [v6], slices: [v6Slice] };
    expectResult(trace(world, { src: 'fd00:244:2::9', dst: 'fd00:10:96::10', dstPort: 80, origin: 'pod' }, { addresses }), 'load-balanced', ['[fd00:244:1::2]:8080'], false);
    expectResult(trace(world, { src: 'fd00:244:1::2', dst: 'fd00:10:96::10', dstPort: 80, origin: 'pod' }, { addresses }), 'load-balanced', ['[fd00:244:1::2]:8080'], true);
    expectResult(trace(world, { src: 'fd00:192::10', dst: 'fd00:10:96::10', dstPort: 22 }, { addresses }), 'rejected', [], false);
  });

  test('mixed families and unplanned families are errors', () => {
    const state = plan({ services: [web()] }, { node: node({ addresses: [NODE_IP], families: ['IPv4'] }) });
    assert.throws(() => traceState(state, { src: 'fd00::1', dst: CIP, dstPort: 80, origin: 'pod' }), TraceError);
    assert.throws(() => traceState(state, { src: 'fd00::1', dst: 'fd00::2', dstPort: 80, origin: 'pod' }), /no IPv6/);
  });
});

describe('default origin', () => {
  test('node for node and kube-ipvs0 addresses and loopback, external otherwise', () => {
    const state = plan({ services: [web()] });
    assert.equal(defaultOrigin(state, NODE_IP, NODE_ADDR), 'node');
    assert.equal(defaultOrigin(state, CIP, NODE_ADDR), 'node');
    assert.equal(defaultOrigin(state, '127.0.0.1', NODE_ADDR), 'node');
    assert.equal(defaultOrigin(state, CLIENT, NODE_ADDR), 'external');
  });
});

describe('rule evaluator', () => {
  const sets = new IpsetIndex([
    { spec: { name: 'S-NET', type: 'hash:ip,port,net', family: 'inet', hashSize: 1024, maxElem: 65536, range: '0-65535' }, entries: new Set(['1.2.3.4,tcp:80,10.0.0.0/8', '1.2.3.4,tcp:81,10.1.1.1']) },
    { spec: { name: 'S-PORT', type: 'bitmap:port', family: 'inet', hashSize: 1024, maxElem: 65536, range: '0-65535' }, entries: new Set(['80']) },
    { spec: { name: 'S-IPPORT', type: 'hash:ip,port', family: 'inet', hashSize: 1024, maxElem: 65536, range: '0-65535' }, entries: new Set(['1.2.3.4,udp:80']) },
  ]);
  const env: MatchEnv = { isLocal: () => false, sets };
  const ip = (s: string) => parseIp(s) ?? assert.fail(s);
  const packet = (over: Partial<EvalPacket> = {}): EvalPacket => ({
    family: 'IPv4', src: ip('10.9.9.9'), dst: ip('1.2.3.4'), dstPort: 80, protocol: 'TCP', inInterface: '', ctState: 'NEW', ipvs: undefined, mark: 0, ...over,
  });
  const matches = (spec: string, p = packet()) => compileRule('X', spec, 'IPv4').conditions.every((c) => c(p, env));

  test('hash:ip,port,net: the net contains the source; host nets are printed without a prefix', () => {
    assert.ok(matches('-m set --match-set S-NET dst,dst,src -j RETURN'));
    assert.ok(!matches('-m set --match-set S-NET dst,dst,src -j RETURN', packet({ src: ip('11.0.0.1') })));
    assert.ok(matches('-m set --match-set S-NET dst,dst,src -j RETURN', packet({ dstPort: 81, src: ip('10.1.1.1') })));
    assert.ok(!matches('-m set --match-set S-NET dst,dst,src -j RETURN', packet({ dstPort: 81, src: ip('10.1.1.2') })));
    assert.ok(!matches('-m set --match-set S-NET dst,dst -j RETURN'), 'fewer directions than the set dimension never match');
  });

  test('bitmap:port ignores the protocol; hash:ip,port does not', () => {
    assert.ok(matches('-m set --match-set S-PORT dst -j RETURN', packet({ protocol: 'UDP' })));
    assert.ok(!matches('-m set --match-set S-IPPORT dst,dst -j RETURN'));
    assert.ok(matches('-m set ! --match-set S-IPPORT dst,dst -j RETURN'));
    assert.ok(matches('-m set --match-set S-IPPORT dst,dst -j RETURN', packet({ protocol: 'UDP' })));
  });

  test('MARK --set-xmark, the mark match and the ipvs match', () => {
    const rule = compileRule('X', '-j MARK --set-xmark 0x4000/0x4000', 'IPv4');
    assert.deepEqual(rule.target, { kind: 'MARK', value: 0x4000, mask: 0x4000 });
    assert.ok(matches('-m mark --mark 0x4000/0x4000 -j ACCEPT', packet({ mark: 0x4001 })));
    assert.ok(matches('-m mark ! --mark 0x4000/0x4000 -j RETURN', packet({ mark: 0x1 })));
    const ipvs = { vaddr: ip('1.2.3.4'), vproto: 6, vport: 80 };
    const spec = '-s 1.2.3.4/32 -m ipvs --vaddr 1.2.3.4/32 --vproto 6 --vport 80 -j DROP';
    assert.ok(matches(spec, packet({ src: ip('1.2.3.4'), ipvs })));
    assert.ok(!matches(spec, packet({ src: ip('1.2.3.4') })), 'a packet IPVS did not handle');
    assert.ok(!matches(spec, packet({ src: ip('1.2.3.4'), ipvs: { ...ipvs, vport: 81 } })));
    assert.ok(matches('-m ipvs ! --ipvs -j ACCEPT'));
  });

  test('traversal: jumps, RETURN, marks, and the policy at the end of a built-in chain', () => {
    const t = compileTable({
      table: 'nat',
      chains: ['A', 'M'],
      rules: [
        { chain: 'PREROUTING', spec: '-j A' },
        { chain: 'A', spec: '-p udp -j RETURN' },
        { chain: 'A', spec: '-j M' },
        { chain: 'A', spec: '-m mark --mark 0x10/0x10 -j RETURN' },
        { chain: 'A', spec: '-j DROP' },
        { chain: 'M', spec: '-j MARK --set-xmark 0x10/0x10' },
      ],
    }, 'IPv4');
    const steps: string[] = [];
    const p = packet();
    assert.deepEqual(traverse(t, 'PREROUTING', p, env, { step: (s) => void steps.push(s) }), { verdict: 'ACCEPT', rule: undefined });
    assert.equal(p.mark, 0x10);
    assert.equal(steps.at(-1), 'nat PREROUTING: end of chain, policy ACCEPT');
    assert.deepEqual(traverse(t, 'PREROUTING', packet({ mark: 0x10 ^ 0x10 }), { ...env }, { step: () => undefined }).verdict, 'ACCEPT');
  });

  test('anything it does not model throws instead of being ignored', () => {
    for (const spec of ['-p tcp -m tcp --dport 80 -j ACCEPT', '-m set --match-set S-PORT dst --return-nomatch -j ACCEPT', '-j DNAT --to-destination 1.1.1.1', '-o eth0 -j ACCEPT', '-m addrtype --dst-type UNICAST -j ACCEPT', '-s fd00::/8 -j ACCEPT']) {
      assert.throws(() => compileRule('X', spec, 'IPv4'), TraceError, spec);
    }
    assert.throws(() => compileTable({ table: 'nat', chains: [], rules: [{ chain: 'PREROUTING', spec: '-j KUBE-NOPE' }] }, 'IPv4'), /missing chain KUBE-NOPE/);
    assert.throws(() => matches('-m set --match-set NOPE dst -j ACCEPT'), /does not exist/);
  });
});

describe('kube-ipvs trace (runTrace)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-trace-'));
  writeFileSync(join(dir, 'svc.yaml'), `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: 10.96.0.10
  ports: [{ name: http, port: 80 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints:
  - { addresses: [10.244.1.2], nodeName: node-a, conditions: { ready: true } }
`);
  const base = ['--manifests', dir, '--hostname-override', NODE, '--node-ip', NODE_IP];
  const run = (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = runTrace([...base, ...args], { out: (s) => void out.push(s), err: (s) => void err.push(s), kernelRelease: '6.1.0' });
    return { code, out: out.join(''), err: err.join('') };
  };

  test('json output carries the packet and the result; the origin defaults from the source', () => {
    const r = run(['--from', CIP, '--to', `${CIP}:80`, '--output', 'json']);
    assert.equal(r.code, 0);
    const doc = JSON.parse(r.out) as { packet: TracePacket } & TraceResult;
    assert.equal(doc.packet.origin, 'node');
    assert.equal(doc.verdict, 'load-balanced');
    assert.deepEqual(doc.realServers, ['10.244.1.2:8080']);
    assert.equal(doc.masquerade, true);
  });

  test('text output, UDP and --established', () => {
    const r = run(['--from', CLIENT, '--to', `${CIP}:22`, '--established']);
    assert.equal(r.code, 0);
    assert.match(r.out, /^verdict: host\n/);
    const udp = run(['--from', CLIENT, '--to', `${CIP}:80`, '--protocol', 'udp']);
    assert.match(udp.out, /^verdict: rejected\n/);
  });

  test('bad flags are usage errors; --help returns -1', () => {
    assert.throws(() => run(['--from', CLIENT, '--to', CIP]), UsageError);
    assert.throws(() => run(['--from', CLIENT, '--to', `${CIP}:80`, '--protocol', 'icmp']), UsageError);
    assert.throws(() => run(['--from', CLIENT, '--to', `${CIP}:80`, '--origin', 'mars']), UsageError);
    assert.throws(() => run(['--to', `${CIP}:80`]), /--from is required/);
    assert.throws(() => run(['--from', 'fd00::1', '--to', `${CIP}:80`]), /different IP families/);
    assert.equal(run(['--help']).code, -1);
    assert.ok(TRACE_FLAGS.some((f) => f.name === 'in-interface'));
  });

  test('--to parsing: IPv6 needs brackets', () => {
    assert.deepEqual(parseDestination('[FD00::1]:80'), { ip: 'fd00::1', port: 80 });
    assert.deepEqual(parseDestination('10.96.0.10:53'), { ip: '10.96.0.10', port: 53 });
    assert.throws(() => parseDestination('fd00::1:80'), UsageError);
    assert.throws(() => parseDestination('[10.96.0.10]:80'), UsageError);
    assert.throws(() => parseDestination('10.96.0.10:65536'), UsageError);
  });
});
