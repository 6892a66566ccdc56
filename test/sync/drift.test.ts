// `kube-ipvs diff`'s judgement over the in-memory kernel: right after a sync nothing differs;
// each kind of tampering shows up as the line the next sync writes, in the tool's own syntax,
// under the Service that owns the object; draining servers, excluded and foreign objects are not
// differences. And the full resync's own drift count (kube_ipvs_drift_detected_total): tampering
// is counted per subsystem, a first sync, an intact kernel, a drain or a plan change are not.
import { describe, test } from 'node:test';
import type { V1Node } from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { OwnerIndex } from '../../src/plan/owners.js';
import type { DesiredState } from '../../src/plan/desired.js';
import { diffLive, renderDrift } from '../../src/sync/drift.js';
import type { DriftReport } from '../../src/sync/drift.js';
import { liveAsDesired, observeLive } from '../../src/sync/live.js';
import type { LiveKernel } from '../../src/sync/live.js';
import { tracePacket } from '../../src/trace/trace.js';
import { renderIpsets, renderIpvs } from '../../src/plan/render.js';
import { fakeNode } from '../helpers/fake-dataplane.js';
import type { FakeNode } from '../helpers/fake-dataplane.js';
import { NODE, service, slice } from '../helpers/world.js';

const WEB_VS = { family: 'IPv4', protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'rr', flags: 0, timeout: 0 } as const;
const web = () => service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] });
const webEps = (...ips: string[]) => slice('web', [{ name: 'http', port: 8080 }], ips.map((ip) => ({ ip, node: NODE })));
const shop = () => service('shop', { type: 'NodePort', clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }, {}, 'store');
const shopEps = () => slice('shop', [{ name: 'http', port: 8080 }], [{ ip: '10.244.2.5', node: 'node-b' }], { namespace: 'store' });
const dns = () => service('dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] });
const dnsEps = (...ips: string[]) => slice('dns', [{ name: 'dns', port: 53, protocol: 'UDP' }], ips.map((ip) => ({ ip })));

async function synced(n: FakeNode = fakeNode()): Promise<{ n: FakeNode; state: DesiredState }> {
  n.apply({ services: [web(), shop(), dns()], slices: [webEps('10.244.1.2', '10.244.1.3'), shopEps(), dnsEps('10.244.3.3')] });
  const r = await n.proxier.sync();
  assert.deepEqual(r.report.failures, []);
  return { n, state: r.state };
}

async function diffOf(n: FakeNode, state: DesiredState, excludeCIDRs: string[] = []): Promise<DriftReport> {
  const live = await observeLive(n.dataplane, { sysctlKeys: state.sysctls.map((s) => s.key) });
  return diffLive(state, live, { owners: OwnerIndex.fromSnapshot(n.tracker.current()), excludeCIDRs });
}

/** "owner | section | sign text" lines, for compact assertions. */
function lines(r: DriftReport): string[] {
  return r.groups.flatMap((g) => g.lines.map((l) => `${g.owner.kind === 'service' ? g.owner.service : g.owner.kind} | ${l.section} | ${l.sign} ${l.text}`));
}

describe('diff: the live kernel against the plan', () => {
  test('right after a sync nothing differs', async () => {
    const { n, state } = await synced();
    const r = await diffOf(n, state);
    assert.deepEqual(lines(r), []);
    assert.equal(r.differs, false);
    assert.match(renderDrift(r), /^no differences/m);
  });

  test('each tampering is the line the next sync writes, under the Service that owns it', async () => {
    const { n, state } = await synced();
    await n.ipvs.apply([
      { kind: 'deleteDest', vs: WEB_VS, rs: { address: '10.244.1.2', port: 8080, weight: 1, forward: 'masq' } },
      { kind: 'updateDest', vs: WEB_VS, rs: { address: '10.244.1.3', port: 8080, weight: 5, forward: 'masq' } },
      { kind: 'addService', vs: { ...WEB_VS, address: '10.96.9.9' } },
    ]);
    await n.ipset.apply([
      { kind: 'del', name: 'KUBE-CLUSTER-IP', entry: '10.96.0.20,tcp:80' },
      { kind: 'add', name: 'KUBE-CLUSTER-IP', entry: '10.96.0.99,tcp:80' },
    ]);
    await n.iptables.restore('*filter\n-D INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER\nCOMMIT\n');
    await n.netif.unbind('kube-ipvs0', '10.96.0.10');
    await n.sysctl.write('net/ipv4/vs/conntrack', '0');
    const r = await diffOf(n, state);
    assert.deepEqual(lines(r), [
      'default/web | ipvsadm -Sn | + -a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1',
      'default/web | ipvsadm -Sn | - -a -t 10.96.0.10:80 -r 10.244.1.3:8080 -m -w 5',
      'default/web | ipvsadm -Sn | + -a -t 10.96.0.10:80 -r 10.244.1.3:8080 -m -w 1',
      'default/web | kube-ipvs0 addresses | + 10.96.0.10/32',
      'store/shop | ipset save | + add KUBE-CLUSTER-IP 10.96.0.20,tcp:80',
      'node | iptables-save -t filter | + -A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER',
      'node | sysctl (set when kube-ipvs starts) | - net.ipv4.vs.conntrack = 0',
      'node | sysctl (set when kube-ipvs starts) | + net.ipv4.vs.conntrack = 1',
      'unowned | ipvsadm -Sn | - -A -t 10.96.9.9:80 -s rr',
      'unowned | ipset save | - add KUBE-CLUSTER-IP 10.96.0.99,tcp:80',
    ]);
    assert.deepEqual(r.counts, { ipvs: 4, ipset: 2, iptables: 1, netif: 1, sysctl: 2 });
    const text = renderDrift(r);
    assert.match(text, /^### Service default\/web \(default\/web:http\/TCP\)\n# ipvsadm -Sn\n\+ -a -t 10\.96\.0\.10:80 -r 10\.244\.1\.2:8080 -m -w 1\n/m);
    assert.match(text, /^10 differences \(ipvs 4, ipset 2, iptables 1, netif 1, sysctl 2\)$/m);

    // The next full sync writes exactly that (the sysctl aside: it is set when kube-ipvs starts).
    const fixed = await n.proxier.sync({ full: true });
    assert.deepEqual(fixed.report.failures, []);
    assert.deepEqual(lines(await diffOf(n, state)), ['node | sysctl (set when kube-ipvs starts) | - net.ipv4.vs.conntrack = 0', 'node | sysctl (set when kube-ipvs starts) | + net.ipv4.vs.conntrack = 1']);
  });

  test('a rule out of order in our chain is a -/+ pair; a missing chain is declared and filled', async () => {
    const { n, state } = await synced();
    const dump = n.iptables.dump();
    const rules = dump.split('\n').filter((l) => l.startsWith('-A KUBE-SERVICES '));
    assert.ok(rules.length >= 3);
    // Move the first rule of KUBE-SERVICES to the end.
    await n.iptables.restore(`*nat\n:KUBE-SERVICES - [0:0]\n${[...rules.slice(1), rules[0]].join('\n')}\nCOMMIT\n`);
    const r = await diffOf(n, state);
    assert.deepEqual(lines(r), [`node | iptables-save -t nat | + ${rules[0]}`, `node | iptables-save -t nat | - ${rules[0]}`]);
  });

  test('a draining TCP server is not a difference; an unwanted UDP one is (it goes at once)', async () => {
    const { n } = await synced();
    n.ipvs.setConnections('10.96.0.10:80/TCP', '10.244.1.3:8080', { active: 2, inactive: 0, persist: 0 });
    n.apply({ slices: [webEps('10.244.1.2')] });
    const state = (await n.proxier.sync()).state;
    const r = await diffOf(n, state);
    assert.equal(r.differs, false);
    assert.deepEqual(r.draining, [{ service: 'default/web', line: '-a -t 10.96.0.10:80 -r 10.244.1.3:8080 -m -w 0', activeConns: 2, inactiveConns: 0 }]);
    assert.match(renderDrift(r), /### Draining.*\n {2}-a -t 10\.96\.0\.10:80 -r 10\.244\.1\.3:8080 -m -w 0 {2}# default\/web: 2 active, 0 inactive/);

    await n.ipvs.apply([{ kind: 'addDest', vs: { ...WEB_VS, protocol: 'UDP', address: '10.96.0.53', port: 53 }, rs: { address: '10.244.3.9', port: 53, weight: 0, forward: 'masq' } }]);
    assert.deepEqual(lines(await diffOf(n, state)), ['default/dns | ipvsadm -Sn | - -a -u 10.96.0.53:53 -r 10.244.3.9:53 -m -w 0']);
  });

  test('virtual servers inside --ipvs-exclude-cidrs are not ours', async () => {
    const { n, state } = await synced();
    await n.ipvs.apply([{ kind: 'addService', vs: { ...WEB_VS, address: '172.16.0.1' } }]);
    assert.deepEqual(lines(await diffOf(n, state, ['172.16.0.0/12'])), []);
    assert.deepEqual(lines(await diffOf(n, state)), ['unowned | ipvsadm -Sn | - -A -t 172.16.0.1:80 -s rr']);
  });

  test('a set whose hashsize the kernel grew is not drift; one of another type is replaced', async () => {
    const { n, state } = await synced();
    const live = await observeLive(n.dataplane, { sysctlKeys: state.sysctls.map((s) => s.key) });
    const grow = (l: LiveKernel, name: string, change: object): LiveKernel => ({ ...l, ipsets: l.ipsets.map((s) => (s.spec.name === name ? { ...s, spec: { ...s.spec, ...change } } : s)) });
    const owners = OwnerIndex.fromSnapshot(n.tracker.current());
    assert.equal(diffLive(state, grow(live, 'KUBE-CLUSTER-IP', { hashSize: 4096 }), { owners, excludeCIDRs: [] }).differs, false);
    const other = diffLive(state, grow(live, 'KUBE-CLUSTER-IP', { type: 'hash:ip' }), { owners, excludeCIDRs: [] });
    assert.deepEqual(lines(other).filter((l) => l.includes('create')), [
      'node | ipset save | - create KUBE-CLUSTER-IP hash:ip family inet hashsize 1024 maxelem 65536',
      'node | ipset save | + create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536',
    ]);
  });

  test('the live kernel traces like the plan it was synced from', async () => {
    const { n, state } = await synced();
    const live = liveAsDesired(await observeLive(n.dataplane), { skipWeightZero: true });
    for (const [src, dst, port] of [['10.244.9.9', '10.96.0.10', 80], ['198.51.100.7', '192.168.0.10', 30080], ['10.244.9.9', '10.96.0.10', 81]] as const) {
      const packet = { src, dst, dstPort: port, protocol: 'TCP' as const, origin: 'pod' as const };
      const node = { addresses: ['192.168.0.10'] };
      assert.deepEqual(tracePacket(live, packet, node), tracePacket(state, packet, node), `${src} → ${dst}:${port}`);
    }
  });
});

describe('full resyncs count drift', () => {
  test('not on a first sync, nor on an intact kernel', async () => {
    const n = fakeNode();
    n.apply({ services: [web()], slices: [webEps('10.244.1.2')] });
    assert.deepEqual([...(await n.proxier.sync()).report.drift], []);
    assert.deepEqual([...(await n.proxier.sync({ full: true })).report.drift], []);
  });

  test('tampering is counted per subsystem at the next full sync, not by a partial one', async () => {
    const { n } = await synced();
    await n.ipvs.apply([
      { kind: 'deleteDest', vs: WEB_VS, rs: { address: '10.244.1.2', port: 8080, weight: 1, forward: 'masq' } },
      { kind: 'addService', vs: { ...WEB_VS, address: '10.96.9.9' } },
    ]);
    await n.ipset.apply([{ kind: 'del', name: 'KUBE-CLUSTER-IP', entry: '10.96.0.20,tcp:80' }]);
    await n.iptables.restore('*filter\n-D INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER\nCOMMIT\n');
    await n.netif.unbind('kube-ipvs0', '10.96.0.10');
    assert.deepEqual([...(await n.proxier.sync()).report.drift], [], 'a partial sync reads nothing back');
    const full = await n.proxier.sync({ full: true });
    assert.deepEqual(Object.fromEntries(full.report.drift), { netif: 1, ipset: 1, ipvs: 2, iptables: 1 });
    assert.deepEqual([...(await n.proxier.sync({ full: true })).report.drift], [], 'repaired');
  });

  test('a drain and a plan change are not drift', async () => {
    const { n } = await synced();
    n.ipvs.setConnections('10.96.0.10:80/TCP', '10.244.1.3:8080', { active: 1, inactive: 0, persist: 0 });
    n.apply({ slices: [webEps('10.244.1.2')] });
    await n.proxier.sync();
    // A LoadBalancer with source ranges changes the rules (a new out-filter rule) in a partial sync.
    n.apply({ services: [service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.40', loadBalancerSourceRanges: ['203.0.113.0/24'], ports: [{ name: 'http', port: 80, nodePort: 30040 }] }, { status: { loadBalancer: { ingress: [{ ip: '198.51.100.40' }] } } })] });
    const changed = await n.proxier.sync();
    assert.ok(changed.report.counts.get('iptables.restore.IPv4'), 'the rules changed');
    assert.deepEqual([...changed.report.drift], []);
    assert.deepEqual([...(await n.proxier.sync({ full: true })).report.drift], []);
    assert.equal(n.proxier.drainingServers().length, 1);
  });
});

describe('full resyncs of a kernel they verified before', () => {
  // Two full syncs in a row that find nothing to write: from then on a full sync may skip parsing a
  // virtual server whose real-server lines read the same as last time; what it must not skip is a
  // change behind its back or a plan that now wants something else.
  const verified = async (n: FakeNode): Promise<void> => {
    for (let i = 0; i < 2; i++) assert.equal((await n.proxier.sync({ full: true })).report.summary(), '');
  };

  test('each kind of real-server tampering is still counted and repaired', async () => {
    const { n } = await synced();
    await verified(n);
    const tcp = (address: string, weight: number) => ({ address, port: 8080, weight, forward: 'masq' as const });
    const shopVs = { ...WEB_VS, address: '10.96.0.20' };
    const dnsVs = { ...WEB_VS, protocol: 'UDP', address: '10.96.0.53', port: 53 } as const;
    await n.ipvs.apply([
      { kind: 'updateDest', vs: WEB_VS, rs: tcp('10.244.1.3', 7) },
      { kind: 'deleteDest', vs: shopVs, rs: tcp('10.244.2.5', 1) },
      { kind: 'addDest', vs: dnsVs, rs: { address: '10.244.9.9', port: 53, weight: 1, forward: 'masq' } },
    ]);
    const tampered = n.ipvs.dump();
    const full = await n.proxier.sync({ full: true });
    assert.deepEqual(Object.fromEntries(full.report.drift), { ipvs: 3 });
    assert.equal(n.ipvs.dump(), renderIpvs(full.state));
    assert.notEqual(tampered, n.ipvs.dump());
    assert.deepEqual([...(await n.proxier.sync({ full: true })).report.drift], [], 'repaired');
  });

  test('a virtual server we added, deleted behind our back before the next full sync (whose listing then reads as the one before), is counted and added again', async () => {
    const { n } = await synced();
    await verified(n);
    n.apply({ services: [web(), shop(), dns(), service('late', { clusterIP: '10.96.0.88', ports: [{ name: 'http', port: 80 }] })] });
    assert.equal((await n.proxier.sync()).report.counts.get('ipvs.addService'), 1);
    await n.ipvs.apply([{ kind: 'deleteService', vs: { ...WEB_VS, address: '10.96.0.88' } }]);
    const full = await n.proxier.sync({ full: true });
    assert.deepEqual(Object.fromEntries(full.report.drift), { ipvs: 1 });
    assert.equal(n.ipvs.dump(), renderIpvs(full.state));
    assert.match(n.ipvs.dump(), /10\.96\.0\.88:80/);
  });

  test('a virtual server we deleted, added again behind our back before the next full sync, is counted and deleted again', async () => {
    const { n } = await synced();
    await verified(n);
    n.tracker.deleteService('default', 'web');
    assert.equal((await n.proxier.sync()).report.counts.get('ipvs.deleteService'), 1);
    await n.ipvs.apply([{ kind: 'addService', vs: WEB_VS }]);
    const full = await n.proxier.sync({ full: true });
    assert.deepEqual(Object.fromEntries(full.report.drift), { ipvs: 1 });
    assert.equal(n.ipvs.dump(), renderIpvs(full.state));
    assert.doesNotMatch(n.ipvs.dump(), /10\.96\.0\.10:80/);
  });

  test('a set entry removed or added behind our back is still counted and repaired', async () => {
    const { n } = await synced();
    await verified(n);
    await n.ipset.apply([
      { kind: 'del', name: 'KUBE-CLUSTER-IP', entry: '10.96.0.20,tcp:80' },
      { kind: 'add', name: 'KUBE-NODE-PORT-TCP', entry: '31999' },
    ]);
    const full = await n.proxier.sync({ full: true });
    assert.deepEqual(Object.fromEntries(full.report.drift), { ipset: 2 });
    const kernelSets = n.ipset.dump();
    assert.doesNotMatch(kernelSets, /^add KUBE-NODE-PORT-TCP 31999$/m);
    for (const line of renderIpsets(full.state).split('\n').filter((l) => l.startsWith('add '))) assert.ok(kernelSets.includes(`${line}\n`), line);
    assert.deepEqual([...(await n.proxier.sync({ full: true })).report.drift], [], 'repaired');
  });

  test('changes taken in by a full sync itself reach sets it verified before', async () => {
    const { n } = await synced();
    await verified(n);
    n.apply({ services: [service('extra', { type: 'NodePort', clusterIP: '10.96.0.77', ports: [{ name: 'http', port: 80, nodePort: 30077 }] })] });
    const full = await n.proxier.sync({ full: true });
    assert.deepEqual(full.report.failures, []);
    const sets = await n.ipset.observe(['KUBE-CLUSTER-IP', 'KUBE-NODE-PORT-TCP']);
    assert.ok(sets.find((x) => x.spec.name === 'KUBE-CLUSTER-IP')?.entries.has('10.96.0.77,tcp:80'));
    assert.ok(sets.find((x) => x.spec.name === 'KUBE-NODE-PORT-TCP')?.entries.has('30077'));
  });

  test('a node relabelled into another zone gets the endpoints its zone hints give it', async () => {
    let nodeObject: V1Node = { metadata: { name: NODE, labels: { 'topology.kubernetes.io/zone': 'zone-a' } } };
    const n = fakeNode({ nodeObject: () => nodeObject });
    const hinted = slice('web', [{ name: 'http', port: 8080 }], [
      { ip: '10.244.1.2', zone: 'zone-a', zoneHints: ['zone-a'] },
      { ip: '10.244.2.2', zone: 'zone-b', zoneHints: ['zone-b'] },
    ]);
    n.apply({ services: [web()], slices: [hinted] });
    await n.proxier.sync();
    await verified(n);
    assert.match(n.ipvs.dump(), /-r 10\.244\.1\.2:8080/);
    nodeObject = { metadata: { name: NODE, labels: { 'topology.kubernetes.io/zone': 'zone-b' } } };
    const moved = await n.proxier.sync();
    assert.equal(moved.full, true, 'a node change re-plans in a full sync');
    assert.deepEqual([...moved.report.drift], [], 'the kernel did not change');
    assert.doesNotMatch(n.ipvs.dump(), /-a -t 10\.96\.0\.10:80 -r 10\.244\.1\.2:8080 -m -w 1/);
    assert.match(n.ipvs.dump(), /-a -t 10\.96\.0\.10:80 -r 10\.244\.2\.2:8080 -m -w 1/);
  });
});

describe('owners of kernel objects', () => {
  test('set entries, node ports, addresses and endpoints find their service ports', async () => {
    const { n } = await synced();
    const o = OwnerIndex.fromSnapshot(n.tracker.current());
    const table: Array<[string, string, string[]]> = [
      ['KUBE-CLUSTER-IP', '10.96.0.10,tcp:80', ['default/web:http/TCP']],
      ['KUBE-LOOP-BACK', '10.244.1.2,tcp:8080,10.244.1.2', ['default/web:http/TCP']],
      ['KUBE-NODE-PORT-TCP', '30080', ['store/shop:http/TCP']],
      ['KUBE-NODE-PORT-UDP', '30080', []],
      ['KUBE-IPVS-IPS', '10.96.0.53', ['default/dns:dns/UDP']],
      ['KUBE-CLUSTER-IP', '10.96.0.53,tcp:53', []],
    ];
    for (const [set, entry, want] of table) assert.deepEqual(o.ofSetEntry(set, entry), want, `${set} ${entry}`);
    assert.deepEqual(o.ofVirtualServer('192.168.0.10:30080/TCP'), ['store/shop:http/TCP']);
    assert.deepEqual(o.ofVirtualServer('192.168.0.10:30081/TCP'), []);
  });
});
