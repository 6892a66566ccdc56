// The sync loop against the in-memory kernel: what it programs equals the plan, changes touch
// only what changed, deletions leave nothing, tampering is repaired, graceful termination works,
// and the loop converges while writes fail.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { renderIpsets, renderIpvs } from '../../src/plan/render.js';
import { fakeNode } from '../helpers/fake-dataplane.js';
import { config, NODE, service, slice } from '../helpers/world.js';
import type { FakeNode } from '../helpers/fake-dataplane.js';
import { FIRST_DRAIN_CHECK_MS } from '../../src/sync/ipvs-reconciler.js';
import { DataplaneError } from '../../src/dataplane/errors.js';
import { ClusterTracker } from '../../src/cluster/tracker.js';
import { Proxier } from '../../src/sync/proxier.js';

/** Counts the sync loop's reads of real servers from the (fake) kernel from now on. */
function countRealServerReads(n: FakeNode): () => number {
  let reads = 0;
  const list = n.ipvs.listRealServers.bind(n.ipvs);
  n.ipvs.listRealServers = (vs) => {
    reads++;
    return list(vs);
  };
  return () => reads;
}

/** web's virtual server as the kernel holds it, for writes behind the proxier's back. */
const WEB_VS = { family: 'IPv4', protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'rr', flags: 0, timeout: 0 } as const;
const web = (ip = '10.96.0.10') => service('web', { clusterIP: ip, ports: [{ name: 'http', port: 80 }] });
const webEps = (...ips: string[]) => slice('web', [{ name: 'http', port: 8080 }], ips.map((ip) => ({ ip, node: NODE })));
const dns = () => service('dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] });
const dnsEps = (...ips: string[]) => slice('dns', [{ name: 'dns', port: 53, protocol: 'UDP' }], ips.map((ip) => ({ ip })));
const shop = () => service('shop', { type: 'NodePort', clusterIP: '10.96.0.30', ports: [{ name: 'http', port: 8080, nodePort: 30080 }] });

/**
 * web with servers .2 and .3 synced; then .3 (holding `active` connections, if given) leaves the
 * endpoints and a partial sync runs. Returns that sync's outcome.
 */
async function removeWebServer(n: FakeNode, active?: number) {
  n.apply({ services: [web()], slices: [webEps('10.244.1.2', '10.244.1.3')] });
  await n.proxier.sync();
  if (active !== undefined) n.ipvs.setConnections('10.96.0.10:80/TCP', '10.244.1.3:8080', { active, inactive: 0, persist: 0 });
  n.apply({ slices: [webEps('10.244.1.2')] });
  return n.proxier.sync();
}

describe('Proxier over the fake kernel', () => {
  test('on kube-ipvs0 a full sync leaves loopback and IPv6 link-local addresses alone and unbinds a stray VIP', async () => {
    // As kube-proxy's GetLocalAddresses(kube-ipvs0) (pkg/proxy/ipvs/netlink_linux.go, v1.36.3):
    // the kernel puts an fe80:: address on an up dummy device by itself.
    const n = fakeNode();
    n.apply({ services: [web()], slices: [webEps('10.244.1.2')] });
    await n.proxier.sync();
    for (const ip of ['127.0.0.2', 'fe80::1c2:3ff:fe04:506', '10.96.7.7']) await n.netif.bind('kube-ipvs0', ip);
    const r = await n.proxier.sync({ full: true });
    assert.deepEqual(r.report.failures, []);
    const dump = n.netif.dump();
    assert.match(dump, /127\.0\.0\.2/);
    assert.match(dump, /fe80::1c2:3ff:fe04:506/);
    assert.doesNotMatch(dump, /10\.96\.7\.7/);
    assert.match(dump, /10\.96\.0\.10/);
    assert.equal(r.report.drift.get('netif'), 1, 'only the stray VIP is drift');
  });

  test('a sync that throws reports the changes it took in; changes made meanwhile wait for the next sync', async () => {
    const n = fakeNode();
    n.apply({ services: [web()], slices: [webEps('10.244.1.2')] });
    await n.proxier.sync();
    // Failing before anything is taken in: the pending change is this sync's.
    const addresses = n.netif.addresses.bind(n.netif);
    n.netif.addresses = () => Promise.reject(new Error('netlink: no buffer space'));
    n.apply({ services: [dns()] });
    const early = await n.proxier.sync({ full: true });
    assert.equal(early.ok, false);
    assert.deepEqual([early.serviceChanges, n.tracker.pending.services], [1, 0]);
    n.netif.addresses = addresses;
    // Failing after the hand-over, while a change arrives: that change stays pending.
    const setups = n.ipvs.listServiceSetups.bind(n.ipvs);
    n.ipvs.listServiceSetups = () => {
      n.apply({ services: [shop()] });
      return Promise.reject(new Error('netlink: interrupted dump'));
    };
    n.apply({ slices: [webEps('10.244.1.2', '10.244.1.3')] });
    const late = await n.proxier.sync({ full: true });
    assert.equal(late.ok, false);
    assert.deepEqual([late.serviceChanges, late.endpointChanges], [0, 1]);
    assert.deepEqual(n.tracker.pending, { services: 1, endpoints: 0 });
    n.ipvs.listServiceSetups = setups;
    const next = await n.proxier.sync();
    assert.deepEqual(next.report.failures, []);
    assert.equal(next.serviceChanges, 1);
    assert.equal(n.ipvs.dump(), renderIpvs(next.state));
  });

  test('the first sync programs exactly the plan: virtual servers, sets, rules, addresses, sysctls', async () => {
    const n = fakeNode();
    n.apply({ services: [web(), shop()], slices: [webEps('10.244.1.2', '10.244.1.3')] });
    const r = await n.proxier.sync();
    assert.deepEqual(r.report.failures, []);
    assert.equal(n.ipvs.dump(), renderIpvs(r.state));
    // Every planned set is in the kernel with exactly its entries.
    const kernelSets = n.ipset.dump();
    for (const line of renderIpsets(r.state).split('\n').filter((l) => l.startsWith('add '))) assert.ok(kernelSets.includes(`${line}\n`), line);
    const rules = n.iptables.dump();
    assert.match(rules, /-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER/);
    assert.match(rules, /-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT/);
    assert.match(n.netif.dump(), /kube-ipvs0.*10\.96\.0\.10\/32/);
    assert.equal((await n.sysctl.read('net/ipv4/vs/conntrack')), '1');
    assert.equal((await n.sysctl.read('net/netfilter/nf_conntrack_max')), '131072');
  });

  test('conntrack flags reach the kernel: be_liberal and the UDP timeouts (kernel defaults kept when unset)', async () => {
    const plain = fakeNode();
    await plain.proxier.sync();
    assert.equal(await plain.sysctl.read('net/netfilter/nf_conntrack_tcp_be_liberal'), '0');
    assert.equal(await plain.sysctl.read('net/netfilter/nf_conntrack_udp_timeout'), '30');
    const n = fakeNode({ config: config('--conntrack-tcp-be-liberal', '--conntrack-udp-timeout=60s', '--conntrack-udp-timeout-stream=3m') });
    assert.deepEqual((await n.proxier.sync()).report.failures, []);
    assert.equal(await n.sysctl.read('net/netfilter/nf_conntrack_tcp_be_liberal'), '1');
    assert.equal(await n.sysctl.read('net/netfilter/nf_conntrack_udp_timeout'), '60');
    assert.equal(await n.sysctl.read('net/netfilter/nf_conntrack_udp_timeout_stream'), '180');
  });

  test('an unchanged second sync writes nothing', async () => {
    const n = fakeNode();
    n.apply({ services: [web()], slices: [webEps('10.244.1.2')] });
    await n.proxier.sync();
    const again = await n.proxier.sync();
    assert.equal(again.full, false);
    assert.equal(again.report.summary(), '');
    const full = await n.proxier.sync({ full: true });
    assert.equal(full.report.summary(), '', 'a full resync of an intact kernel writes nothing either');
  });

  test('one endpoint change touches only that service', async () => {
    const n = fakeNode();
    n.apply({ services: [web(), shop()], slices: [webEps('10.244.1.2')] });
    await n.proxier.sync();
    n.apply({ slices: [webEps('10.244.1.2', '10.244.1.9')] });
    const r = await n.proxier.sync();
    assert.equal(r.full, false);
    assert.equal(r.changedServices, 1);
    assert.equal(r.report.summary(), 'ipset.add=1 ipvs.addDest=1');
    assert.match(n.ipvs.dump(), /-a -t 10\.96\.0\.10:80 -r 10\.244\.1\.9:8080 -m -w 1/);
  });

  test('deleting every service leaves nothing of them (the seed\'s stale-rule bug)', async () => {
    const n = fakeNode();
    n.apply({ services: [web(), shop(), dns()], slices: [webEps('10.244.1.2'), dnsEps('10.244.2.2')] });
    await n.proxier.sync();
    for (const s of ['web', 'shop', 'dns']) n.tracker.deleteService('default', s);
    const r = await n.proxier.sync();
    assert.deepEqual(r.report.failures, []);
    assert.equal(n.ipvs.dump(), '');
    assert.doesNotMatch(n.ipset.dump(), /^add /m);
    assert.doesNotMatch(n.netif.dump(), /kube-ipvs0.*inet/);
    assert.doesNotMatch(n.iptables.dump(), /KUBE-CLUSTER-IP src,dst/, 'rules fed by the now empty set are gone');
  });

  test('tampering (flushed IPVS, flushed set, deleted rule, removed address) is repaired by a full sync', async () => {
    const n = fakeNode();
    n.apply({ services: [web(), shop()], slices: [webEps('10.244.1.2')] });
    await n.proxier.sync();
    const before = n.dumps();
    await n.ipvs.flush();
    await n.ipset.apply([{ kind: 'flush', name: 'KUBE-CLUSTER-IP' }]);
    await n.iptables.restore('*filter\n-D INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER\nCOMMIT\n');
    await n.netif.unbind('kube-ipvs0', '10.96.0.10');
    const r = await n.proxier.sync({ full: true });
    assert.deepEqual(r.report.failures, []);
    const after = n.dumps();
    const sorted = (t: string) => t.split('\n').sort().join('\n');
    assert.deepEqual({ ...after, netif: sorted(after.netif) }, { ...before, netif: sorted(before.netif) });
  });

  test('a failure outside the reconcilers: a dataplane error keeps its subsystem, anything else is a bug with its stack; both resync fully', async () => {
    const n = fakeNode();
    n.apply({ services: [web()], slices: [webEps('10.244.1.2')] });
    const addresses = n.netif.addresses.bind(n.netif);
    n.netif.addresses = () => Promise.reject(new DataplaneError('UNAVAILABLE', 'netif', 'list', 'addresses', 'netlink socket closed'));
    const first = await n.proxier.sync();
    assert.deepEqual(first.report.failures, [{ subsystem: 'netif', op: 'list', object: 'addresses', message: 'netif list addresses: netlink socket closed' }]);
    n.netif.addresses = function readAddressesWithABug() {
      throw new TypeError('x is not iterable');
    };
    const second = await n.proxier.sync();
    const bug = second.report.failures[0];
    assert.deepEqual([bug?.subsystem, bug?.message], ['sync', 'x is not iterable']);
    assert.match(bug?.stack ?? '', /^TypeError: x is not iterable\n[\s\S]*readAddressesWithABug/);
    n.netif.addresses = addresses;
    const third = await n.proxier.sync();
    assert.equal(third.full, true);
    assert.deepEqual(third.report.failures, []);
    assert.match(n.ipvs.dump(), /-a -t 10\.96\.0\.10:80 -r 10\.244\.1\.2:8080 -m -w 1/);
  });

  test('a full sync reads all real servers in one go; if that read fails it dumps each virtual server', async () => {
    const n = fakeNode();
    n.apply({ services: [web(), shop()], slices: [webEps('10.244.1.2', '10.244.1.3')] });
    await n.proxier.sync();
    const reads = countRealServerReads(n);
    await n.ipvs.apply([{ kind: 'deleteDest', vs: WEB_VS, rs: { address: '10.244.1.3', port: 8080, weight: 1, forward: 'masq' } }]);
    const repaired = await n.proxier.sync({ full: true });
    assert.equal(repaired.report.summary(), 'ipvs.addDest=1');
    assert.equal(reads(), 0, 'no dump per virtual server');
    n.ipvs.listRealServerBlocks = () => Promise.reject(new Error('/proc/net/ip_vs: no such file'));
    await n.ipvs.flush();
    const fallback = await n.proxier.sync({ full: true });
    assert.deepEqual(fallback.report.failures, []);
    assert.equal(n.ipvs.dump(), renderIpvs(fallback.state));
    const again = await n.proxier.sync({ full: true });
    assert.equal(again.report.summary(), '');
    assert.ok(reads() > 0, 'each virtual server dumped instead');
  });

  test('a foreign virtual server inside --ipvs-exclude-cidrs survives; one outside is removed', async () => {
    const { config } = await import('../helpers/world.js');
    const n = fakeNode({ config: config('--ipvs-exclude-cidrs=172.16.0.0/12') });
    await n.ipvs.apply([
      { kind: 'addService', vs: { family: 'IPv4', protocol: 'TCP', address: '172.16.0.5', port: 80, scheduler: 'rr', flags: 0, timeout: 0 } },
      { kind: 'addService', vs: { family: 'IPv4', protocol: 'TCP', address: '10.200.0.5', port: 80, scheduler: 'rr', flags: 0, timeout: 0 } },
    ]);
    n.apply({ services: [web()] });
    await n.proxier.sync();
    await n.proxier.sync({ full: true });
    assert.match(n.ipvs.dump(), /172\.16\.0\.5:80/);
    assert.doesNotMatch(n.ipvs.dump(), /10\.200\.0\.5/);
  });

  test('restart: a new proxier adopts the kernel as it is, without flushing, and revives weight-0 servers', async () => {
    const n = fakeNode();
    n.apply({ services: [web()], slices: [webEps('10.244.1.2', '10.244.1.3')] });
    await n.proxier.sync();
    // An earlier process left one server at weight 0.
    await n.ipvs.apply([{ kind: 'updateDest', vs: WEB_VS, rs: { address: '10.244.1.3', port: 8080, weight: 0, forward: 'masq' } }]);
    const { Proxier } = await import('../../src/sync/proxier.js');
    const { ClusterTracker } = await import('../../src/cluster/tracker.js');
    const tracker = new ClusterTracker(NODE, () => {});
    tracker.upsertService(web());
    tracker.upsertEndpointSlice(webEps('10.244.1.2', '10.244.1.3'));
    const second = new Proxier({ config: (await import('../helpers/world.js')).config(), dataplane: n.dataplane, tracker, clock: n.clock, kernelVersion: '6.1.0' });
    const r = await second.sync();
    assert.deepEqual(r.report.failures, []);
    assert.equal(r.report.summary(), 'ipvs.updateDest=1', 'only the weight is fixed: no delete, no re-add');
    assert.match(n.ipvs.dump(), /-r 10\.244\.1\.3:8080 -m -w 1/);
  });
});

describe('graceful termination', () => {
  const vs = '10.96.0.10:80/TCP';
  test('a removed TCP server with connections drains at weight 0 and goes when they end', async () => {
    const n = fakeNode();
    await removeWebServer(n, 2);
    assert.match(n.ipvs.dump(), /-r 10\.244\.1\.3:8080 -m -w 0/);
    assert.equal(n.proxier.drainingServers().length, 1);
    await n.clock.advance(FIRST_DRAIN_CHECK_MS);
    await n.proxier.sync();
    assert.match(n.ipvs.dump(), /-r 10\.244\.1\.3:8080 -m -w 0/, 'still draining while connections remain');
    n.ipvs.setConnections(vs, '10.244.1.3:8080', { active: 0, inactive: 0, persist: 0 });
    await n.clock.advance((n.proxier.nextDrainCheckAt() ?? Infinity) - n.clock.now());
    await n.proxier.sync();
    assert.doesNotMatch(n.ipvs.dump(), /10\.244\.1\.3/);
    assert.equal(n.proxier.drainingServers().length, 0);
    assert.equal(n.proxier.nextDrainCheckAt(), undefined, 'nothing left to check');
  });

  test('a removed TCP server without connections is deleted in the same sync, its counts read first (kube-proxy GracefulDeleteRS)', async () => {
    const n = fakeNode();
    n.apply({ services: [web()], slices: [webEps('10.244.1.2', '10.244.1.3')] });
    await n.proxier.sync();
    const reads = countRealServerReads(n);
    n.apply({ slices: [webEps('10.244.1.2')] });
    const r = await n.proxier.sync();
    assert.equal(r.report.summary(), 'ipset.del=1 ipvs.deleteDest=1', 'no weight-0 step for a server nobody uses');
    assert.equal(reads(), 1, 'one read of the virtual server for its counts');
    assert.doesNotMatch(n.ipvs.dump(), /10\.244\.1\.3/);
    assert.equal(n.proxier.drainingServers().length, 0);
    assert.equal(n.proxier.nextDrainCheckAt(), undefined, 'no drain check asked for');
  });

  test('drain checks of a busy server come at doubling intervals up to a minute, and end at the drain timeout', async () => {
    const n = fakeNode({ drainTimeoutMs: 200_000 });
    const start = n.clock.now();
    await removeWebServer(n, 1);
    const checks: number[] = [];
    const reads = countRealServerReads(n);
    for (let at = n.proxier.nextDrainCheckAt(); at !== undefined && checks.length < 12; at = n.proxier.nextDrainCheckAt()) {
      await n.clock.advance(at - n.clock.now());
      checks.push(at - start);
      await n.proxier.sync();
    }
    assert.deepEqual(checks, [1000, 2000, 4000, 8000, 16000, 32000, 64000, 124000, 184000, 200000]);
    assert.equal(reads(), checks.length, 'one read of the virtual server per check');
    assert.doesNotMatch(n.ipvs.dump(), /10\.244\.1\.3/, 'deleted at the timeout');
  });

  test('a draining server removed behind our back (or with its virtual server) is no longer checked', async () => {
    for (const tamper of ['deleteDest', 'deleteService'] as const) {
      const n = fakeNode();
      await removeWebServer(n, 1);
      assert.equal(n.proxier.drainingServers().length, 1);
      if (tamper === 'deleteDest') await n.ipvs.apply([{ kind: 'deleteDest', vs: WEB_VS, rs: { address: '10.244.1.3', port: 8080, weight: 0, forward: 'masq' } }]);
      else await n.ipvs.flush();
      await n.clock.advance(FIRST_DRAIN_CHECK_MS);
      await n.proxier.sync({ full: tamper === 'deleteService' });
      assert.equal(n.proxier.drainingServers().length, 0, `${tamper}: the record goes`);
      assert.equal(n.proxier.nextDrainCheckAt(), undefined, `${tamper}: no more syncs asked for it`);
    }
  });

  test('partial syncs diff against what they wrote; only a TCP removal reads the kernel (for counts); a full sync re-reads and repairs', async () => {
    const n = fakeNode();
    n.apply({ services: [web(), shop()], slices: [webEps('10.244.1.2')] });
    await n.proxier.sync();
    const reads = countRealServerReads(n);
    n.apply({ slices: [webEps('10.244.1.2', '10.244.1.9')] });
    await n.proxier.sync();
    assert.equal(reads(), 0, 'no dump when endpoints are only added');
    n.apply({ slices: [webEps('10.244.1.9')] });
    await n.proxier.sync();
    assert.equal(reads(), 1, 'a removal reads the one virtual server');
    // Behind our back: the real server we wrote is deleted. The next partial sync does not see it;
    // the full one does.
    await n.ipvs.apply([{ kind: 'deleteDest', vs: WEB_VS, rs: { address: '10.244.1.9', port: 8080, weight: 1, forward: 'masq' } }]);
    const full = await n.proxier.sync({ full: true });
    assert.match(full.report.summary(), /ipvs\.addDest=1/);
    assert.match(n.ipvs.dump(), /-a -t 10\.96\.0\.10:80 -r 10\.244\.1\.9:8080 -m -w 1/);
  });

  test('a draining server is deleted after the drain timeout even with connections', async () => {
    const n = fakeNode({ drainTimeoutMs: 60000 });
    await removeWebServer(n, 5);
    await n.clock.advance(60000);
    await n.proxier.sync();
    assert.doesNotMatch(n.ipvs.dump(), /10\.244\.1\.3/);
  });

  test('a server that comes back while draining returns to weight 1 in place', async () => {
    const n = fakeNode();
    await removeWebServer(n, 1);
    n.apply({ slices: [webEps('10.244.1.2', '10.244.1.3')] });
    const r = await n.proxier.sync();
    assert.equal(r.report.summary(), 'ipset.add=1 ipvs.updateDest=1', 'no delete and re-add: connections survive');
    assert.match(n.ipvs.dump(), /-r 10\.244\.1\.3:8080 -m -w 1/);
  });

  test('a removed UDP server goes at once and its conntrack flows are flushed', async () => {
    const n = fakeNode();
    n.apply({ services: [dns()], slices: [dnsEps('10.244.1.2', '10.244.2.2')] });
    await n.proxier.sync();
    n.conntrack.addFlow({ protocol: 'udp', origSrc: '10.244.3.3', origDst: '10.96.0.53', origDstPort: 53, replySrc: '10.244.2.2' });
    n.conntrack.addFlow({ protocol: 'udp', origSrc: '10.244.3.3', origDst: '10.96.0.53', origDstPort: 53, replySrc: '10.244.1.2' });
    n.apply({ slices: [dnsEps('10.244.1.2')] });
    await n.proxier.sync();
    assert.doesNotMatch(n.ipvs.dump(), /10\.244\.2\.2/);
    assert.deepEqual(n.conntrack.flows().map((f) => f.replySrc), ['10.244.1.2']);
  });
});

describe('convergence with failing writes', () => {
  test('with 10% of IPVS, ipset and iptables writes failing, repeated syncs reach the plan', async () => {
    const n = fakeNode({ faultRate: 0.1 });
    const services = Array.from({ length: 40 }, (_, i) => service(`s${i}`, { type: i % 3 === 0 ? 'NodePort' : 'ClusterIP', clusterIP: `10.96.2.${i}`, ports: [{ name: 'p', port: 80, ...(i % 3 === 0 ? { nodePort: 30100 + i } : {}) }] }));
    const slices = Array.from({ length: 40 }, (_, i) => slice(`s${i}`, [{ name: 'p', port: 8080 }], [{ ip: `10.244.7.${i}`, node: NODE }, { ip: `10.244.8.${i}` }]));
    n.apply({ services, slices });
    let failedSyncs = 0;
    let r = await n.proxier.sync();
    for (let i = 0; i < 40 && !r.ok; i++) {
      failedSyncs++;
      r = await n.proxier.sync();
    }
    assert.ok(failedSyncs > 0, 'faults were injected');
    assert.ok(r.ok, 'converged');
    n.ipvs.setFaults(undefined);
    assert.equal(n.ipvs.dump(), renderIpvs(r.state));
    const kernelSets = n.ipset.dump();
    for (const line of renderIpsets(r.state).split('\n').filter((l) => l.startsWith('add '))) assert.ok(kernelSets.includes(`${line}\n`), line);
  });

  test('with 10% of IPVS writes failing throughout, repeated syncs reach the plan and report every failed write', async () => {
    const n = fakeNode();
    n.ipvs.setFaults({ rate: 0.1, seed: 7 });
    const services = Array.from({ length: 30 }, (_, i) => service(`s${i}`, { clusterIP: `10.96.1.${i}`, ports: [{ name: 'p', port: 80 }] }));
    const slices = Array.from({ length: 30 }, (_, i) => slice(`s${i}`, [{ name: 'p', port: 8080 }], [{ ip: `10.244.5.${i}` }, { ip: `10.244.6.${i}` }]));
    n.apply({ services, slices });
    let reported = 0;
    const syncOnce = async () => {
      const injectedBefore = n.ipvs.injectedFaults;
      const r = await n.proxier.sync();
      const injected = n.ipvs.injectedFaults - injectedBefore;
      // Each failed write is in the sync's report, named, and nothing else fails: no failure is
      // hidden, and none is a side effect of an earlier one.
      const failures = r.report.failures;
      assert.equal(failures.length, injected, JSON.stringify(failures));
      for (const f of failures) {
        assert.equal(f.subsystem, 'ipvs');
        assert.match(f.message, /injected fault/);
        assert.notEqual(f.object, '');
      }
      assert.equal(r.ok, injected === 0);
      reported += failures.length;
      return r;
    };
    let r = await syncOnce();
    assert.ok(!r.ok, 'the first sync met failed writes');
    for (let i = 0; i < 20 && !r.ok; i++) r = await syncOnce();
    // Converged with the faults still on: the kernel holds the plan, and a later sync (faults
    // still on) finds nothing to write.
    assert.ok(r.ok, 'converged while writes keep failing');
    assert.ok(reported > 0);
    assert.equal(n.ipvs.dump(), renderIpvs(r.state));
    const injectedBefore = n.ipvs.injectedFaults;
    const again = await syncOnce();
    assert.ok(again.ok);
    assert.equal(n.ipvs.injectedFaults, injectedBefore, 'nothing left to write');
    assert.equal(n.ipvs.dump(), renderIpvs(again.state));
  });
});

describe('the API server first (kubernetes#133773)', () => {
  const kubernetes = () => service('kubernetes', { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443 }] });
  const kubernetesEps = () => slice('kubernetes', [{ name: 'https', port: 6443 }], [{ ip: '192.168.0.2' }], { name: 'kubernetes' });
  const many = (n: number) => ({
    services: Array.from({ length: n }, (_, i) => service(`svc-${i}`, { clusterIP: `10.96.1.${i + 1}`, ports: [{ name: 'http', port: 80 }] })),
    slices: Array.from({ length: n }, (_, i) => slice(`svc-${i}`, [{ name: 'http', port: 8080 }], [{ ip: `10.244.2.${i + 1}` }])),
  });

  /** The kernel writes of the sync loop in order: IPVS ops, bound addresses, iptables restores. */
  function timeline(n: FakeNode, events: string[] = []): string[] {
    const apply = n.ipvs.apply.bind(n.ipvs);
    n.ipvs.apply = (ops) => {
      for (const op of ops) events.push(`ipvs ${op.kind} ${op.vs.address}:${op.vs.port}${'rs' in op && op.rs ? ` ${op.rs.address}` : ''}`);
      return apply(ops);
    };
    const bind = n.netif.bindMany.bind(n.netif);
    n.netif.bindMany = (ops) => {
      for (const op of ops) events.push(`bind ${op.ip}`);
      return bind(ops);
    };
    const restore = n.iptables.restore.bind(n.iptables);
    n.iptables.restore = (payload) => {
      events.push('iptables restore');
      return restore(payload);
    };
    return events;
  }

  /** default/kubernetes alone, as the early pass gets it from its own lists. */
  function kubernetesAlone() {
    const own = new ClusterTracker(NODE, () => {});
    own.upsertService(kubernetes());
    own.upsertEndpointSlice(kubernetesEps());
    return own.drain(['default/kubernetes']).snapshot;
  }

  /** A restarted daemon's proxier on the same node: a fresh Proxier over the same dataplane. */
  function restarted(n: FakeNode, tracker: ClusterTracker): Proxier {
    return new Proxier({ config: config(), dataplane: n.dataplane, tracker, clock: n.clock, kernelVersion: '6.1.0' });
  }

  test('on a node holding nothing of ours, default/kubernetes is reachable before any other service is touched', async () => {
    const n = fakeNode();
    const cluster = many(30);
    n.apply({ services: [...cluster.services, kubernetes()], slices: [...cluster.slices, kubernetesEps()] });
    const events = timeline(n);
    const r = await n.proxier.sync();
    assert.deepEqual(r.report.failures, []);
    assert.equal(n.ipvs.dump(), renderIpvs(r.state), 'the sync still ends with the whole plan');
    assert.notEqual(r.firstServicesMs, undefined, 'the sync says when they were in');
    const firstOther = events.findIndex((e) => /^ipvs addService 10\.96\.1\./.test(e) || /^bind 10\.96\.1\./.test(e));
    assert.ok(firstOther > 0, events.join('\n'));
    const before = events.slice(0, firstOther);
    // What a client on the node needs: the virtual server with its real server, its address on
    // kube-ipvs0, and the rules that masquerade it.
    for (const needed of ['ipvs addService 10.96.0.1:443', 'ipvs addDest 10.96.0.1:443 192.168.0.2', 'bind 10.96.0.1', 'iptables restore']) {
      assert.ok(before.includes(needed), `${needed} comes before the other services:\n${events.join('\n')}`);
    }
  });

  test('its pass comes before the rest of the cluster is even derived from the API objects', async () => {
    // Deriving thousands of Services takes seconds; a malformed Service shows when it happens.
    const events: string[] = [];
    const n = fakeNode({ problems: (p) => events.push(`problem ${p.namespace}/${p.name}`) });
    const cluster = many(5);
    n.apply({ services: [...cluster.services, service('broken', { clusterIP: '10.96.0.999', ports: [{ name: 'http', port: 80 }] }), kubernetes()], slices: [...cluster.slices, kubernetesEps()] });
    timeline(n, events);
    const r = await n.proxier.sync();
    assert.notEqual(r.firstServicesMs, undefined);
    const problem = events.findIndex((e) => e.startsWith('problem'));
    assert.ok(problem > 0 && events.slice(0, problem).includes('iptables restore'), events.join('\n'));
    assert.equal(r.serviceChanges, 7, 'both drains are counted');
    assert.equal(r.changedServices, 6);
  });

  test('programmed ahead of the whole lists (programFirstServices): the first sync then skips the pass, never writes them again, and ends with the whole plan', async () => {
    const n = fakeNode();
    const events = timeline(n);
    const report = await n.proxier.programFirstServices(kubernetesAlone());
    assert.deepEqual(report?.failures, []);
    for (const needed of ['ipvs addService 10.96.0.1:443', 'ipvs addDest 10.96.0.1:443 192.168.0.2', 'bind 10.96.0.1', 'iptables restore']) assert.ok(events.includes(needed), `${needed}:\n${events.join('\n')}`);
    assert.equal(events.some((e) => e.includes('10.96.1.')), false);

    const cluster = many(10);
    n.apply({ services: [...cluster.services, kubernetes()], slices: [...cluster.slices, kubernetesEps()] });
    events.length = 0;
    const r = await n.proxier.sync();
    assert.deepEqual(r.report.failures, []);
    assert.equal(r.firstServicesMs, undefined, 'no second pass');
    assert.equal(n.ipvs.dump(), renderIpvs(r.state));
    assert.equal(events.filter((e) => e.includes('10.96.0.1')).length, 0, events.join('\n'));
    assert.equal(r.report.drift.size, 0, 'the addresses the pass bound are not drift');
  });

  test('programFirstServices on a node already programmed does nothing (a restart keeps its no-write first sync)', async () => {
    const n = fakeNode();
    n.apply({ services: [web(), kubernetes()], slices: [webEps('10.244.1.2'), kubernetesEps()] });
    await n.proxier.sync();
    const second = restarted(n, new ClusterTracker(NODE, () => {}));
    const events = timeline(n);
    assert.equal(await second.programFirstServices(kubernetesAlone()), undefined);
    assert.deepEqual(events, []);
  });

  test('a node already programmed (a restart) gets no such pass: its first sync writes nothing', async () => {
    const n = fakeNode();
    n.apply({ services: [web(), kubernetes()], slices: [webEps('10.244.1.2'), kubernetesEps()] });
    await n.proxier.sync();
    const tracker = new ClusterTracker(NODE, () => {});
    for (const s of [web(), kubernetes()]) tracker.upsertService(s);
    for (const s of [webEps('10.244.1.2'), kubernetesEps()]) tracker.upsertEndpointSlice(s);
    const second = restarted(n, tracker);
    const events = timeline(n);
    const r = await second.sync();
    assert.deepEqual(r.report.failures, []);
    assert.equal(r.report.summary(), '');
    assert.deepEqual(events, []);
    assert.equal(r.firstServicesMs, undefined);
  });
});
