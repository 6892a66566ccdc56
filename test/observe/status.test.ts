// /status and its renderings: the document a node serves after real syncs over the in-memory
// kernel (what each field says comes from the cluster objects and from what the kernel holds),
// its filters, and the text `kube-ipvs status` prints (golden files, the width limit).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeStatus } from '../../src/cli/node-status.js';
import { parseFilterQuery, STATUS_PER_VS_LIMIT } from '../../src/observe/status-document.js';
import { SyncHistory } from '../../src/observe/sync-history.js';
import type { RealServerStatus, ServicePortStatus, StatusDocument } from '../../src/observe/status-document.js';
import { podsOf, splitHostPort } from '../../src/observe/status-build.js';
import { renderStatus, shortNumber } from '../../src/observe/status-table.js';
import { repoRoot } from '../helpers/cli.js';
import { fakeNode } from '../helpers/fake-dataplane.js';
import { statusFixture, T0, WEB_VS } from '../helpers/status-fixture.js';
import { config, NODE, service, slice } from '../helpers/world.js';

function golden(name: string, actual: string): void {
  const path = join(repoRoot(), 'test', 'golden', name);
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, 'utf8'), `${name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it after review)`);
}

function port(doc: StatusDocument, key: string): ServicePortStatus {
  const p = doc.services.find((s) => s.key === key);
  if (!p) throw new Error(`no service port ${key} in ${doc.services.map((s) => s.key).join(', ')}`);
  return p;
}

function rs(p: ServicePortStatus, endpoint: string): RealServerStatus {
  const r = p.realServers.find((x) => x.endpoint === endpoint);
  if (!r) throw new Error(`no real server ${endpoint} in ${p.key}`);
  return r;
}

describe('/status after real syncs', () => {
  test('the JSON document matches its golden file', async () => {
    const doc = await (await statusFixture()).status();
    golden('status.json', `${JSON.stringify(doc, null, 2)}\n`);
  });

  test('each service port shows its type, virtual servers and pods as the objects and the kernel say', async () => {
    const doc = await (await statusFixture()).status();
    const web = port(doc, 'shop/web:http/TCP');
    assert.equal(web.type, 'ClusterIP');
    assert.deepEqual(web.virtualServers.map((v) => [v.kind, v.key, v.inKernel]), [['ClusterIP', WEB_VS, true]]);
    // The kernel's counters and rate estimates, as set on the virtual server.
    assert.equal(web.virtualServers[0]?.stats.connections, 5120);
    assert.equal(web.virtualServers[0]?.stats.connectionsPerSecond, 14);
    assert.equal(web.virtualServers[0]?.stats.bytesOutPerSecond, 410_000);

    const kept = rs(web, '10.244.1.11:8080');
    assert.equal(kept.pod, 'web-7d9c5-x2kqp', 'the EndpointSlice targetRef');
    assert.equal(kept.node, 'node-a');
    assert.equal(kept.zone, 'eu-west-1a');
    assert.equal(kept.local, true);
    assert.deepEqual([kept.ready, kept.serving, kept.terminating, kept.weight], [true, true, false, 1]);
    assert.deepEqual([kept.activeConnections, kept.inactiveConnections, kept.stats.connectionsPerSecond], [4, 11, 8]);
    assert.equal(kept.draining, undefined);

    // The removed pod holds connections: weight 0 in the kernel, draining for 30 s of 15 min.
    const gone = rs(web, '10.244.1.13:8080');
    assert.equal(gone.pod, undefined, 'no EndpointSlice names it any more');
    assert.equal(gone.ready, false);
    assert.equal(gone.inKernel, true);
    assert.equal(gone.weight, 0);
    assert.equal(gone.activeConnections, 2);
    assert.deepEqual(gone.draining, { forSeconds: 30, leftSeconds: 870 });

    const remote = rs(web, '10.244.2.12:8080');
    assert.deepEqual([remote.node, remote.local, remote.zone], ['node-b', false, 'eu-west-1b']);

    const checkout = port(doc, 'shop/checkout:http/TCP');
    assert.equal(checkout.type, 'NodePort');
    assert.equal(checkout.externalTrafficPolicy, 'Local');
    assert.deepEqual(checkout.virtualServers.map((v) => [v.kind, v.key]), [['ClusterIP', '10.96.0.20:80/TCP'], ['NodePort', '192.168.0.10:30080/TCP']]);
    // The new pod's write failed: an endpoint the kernel does not hold.
    const fresh = rs(checkout, '10.244.1.23:8080');
    assert.deepEqual([fresh.pod, fresh.ready, fresh.inKernel, fresh.weight], ['checkout-5f6d8-kl3mn', true, false, undefined]);

    const ingress = port(doc, 'default/ingress:https/TCP');
    assert.equal(ingress.type, 'LoadBalancer');
    assert.equal(ingress.persistenceSeconds, 10800, 'sessionAffinity ClientIP with the default timeout');
    assert.deepEqual(ingress.virtualServers.map((v) => v.kind), ['ClusterIP', 'LoadBalancer', 'NodePort']);
    const terminating = rs(ingress, '10.244.2.32:8443');
    assert.deepEqual([terminating.ready, terminating.serving, terminating.terminating, terminating.inKernel], [false, true, true, false]);

    assert.deepEqual(doc.services.filter((s) => s.name === 'kube-dns').map((s) => s.key), ['kube-system/kube-dns:dns-tcp/TCP', 'kube-system/kube-dns:dns/UDP']);
  });

  test('the daemon part: syncs, drift, failures, invalid objects, conflicts', async () => {
    const doc = await (await statusFixture()).status();
    assert.deepEqual(doc.sync.history.map((r) => [r.full, r.ok]), [[true, true], [false, true], [true, true], [false, false]]);
    assert.equal(doc.sync.history[2]?.drift, 1, 'the full resync put back one set entry');
    assert.deepEqual(doc.sync.drift.last, { ipset: 1 });
    assert.equal(doc.sync.drift.lastAt, new Date(T0 + 35_000).toISOString());
    assert.equal(doc.sync.lastFullAt, new Date(T0 + 35_000).toISOString());
    assert.equal(doc.sync.lastSuccessAt, new Date(T0 + 35_000).toISOString());
    assert.deepEqual(doc.failures.map((f) => [f.subsystem, f.operation, f.object]), [['ipvs', 'addDest', '10.96.0.20:80/TCP/10.244.1.23:8080'], ['ipvs', 'addDest', '192.168.0.10:30080/TCP/10.244.1.23:8080']]);
    assert.deepEqual(doc.problems.map((p) => [p.kind, `${p.namespace}/${p.name}`, p.field, p.effect]), [['Service', 'default/broken', 'spec.ports[0].port', 'skipped']]);
    // Two Services on one VIP:port: the first by name has it.
    assert.deepEqual(doc.conflicts, [{ virtualServer: '10.96.0.77:80/TCP', family: 'IPv4', winner: 'default/legacy-copy:http/TCP', losers: ['default/legacy:http/TCP'] }]);
    assert.equal(doc.totals.draining, 1);
    assert.equal(doc.totals.servicePorts, 7);
  });

  test('filters: namespace, service, node ports, draining', async () => {
    const f = await statusFixture();
    assert.deepEqual((await f.status({ namespace: 'shop' })).services.map((s) => s.key), ['shop/checkout:http/TCP', 'shop/web:http/TCP']);
    assert.deepEqual((await f.status({ service: 'kube-dns' })).services.map((s) => s.key), ['kube-system/kube-dns:dns-tcp/TCP', 'kube-system/kube-dns:dns/UDP']);
    assert.deepEqual((await f.status({ namespace: 'default', service: 'web' })).services, []);
    assert.deepEqual((await f.status({ nodePort: true })).services.map((s) => s.key), ['default/ingress:https/TCP', 'shop/checkout:http/TCP']);
    const draining = await f.status({ draining: true });
    assert.deepEqual(draining.services.map((s) => [s.key, s.realServers.map((r) => r.endpoint)]), [['shop/web:http/TCP', ['10.244.1.13:8080']]]);
    assert.equal(draining.totals.servicePorts, 7, 'totals are the whole node');
  });

  test('past the limit of virtual servers, real servers are read at once: weights and connections, no rates', async () => {
    const cfg = config();
    const n = fakeNode({ config: cfg });
    const count = STATUS_PER_VS_LIMIT + 1;
    for (let i = 0; i < count; i++) {
      n.apply({ services: [service(`s${i}`, { clusterIP: `10.96.${Math.floor(i / 200)}.${(i % 200) + 1}`, ports: [{ name: 'http', port: 80 }] })], slices: [slice(`s${i}`, [{ name: 'http', port: 8080 }], [{ ip: `10.244.9.${(i % 250) + 1}`, node: NODE }])] });
    }
    const r = await n.proxier.sync();
    n.ipvs.setConnections('10.96.0.1:80/TCP', '10.244.9.1:8080', { active: 3, inactive: 1, persist: 0 });
    n.ipvs.setStats('10.96.0.1:80/TCP', '10.244.9.1:8080', { cps: 9 });
    const input = { config: cfg, dataplane: n.dataplane, tracker: n.tracker, history: new SyncHistory(), families: ['IPv4' as const], state: () => r.state, ownerOf: (k: string) => n.proxier.virtualServerOwner(k), draining: () => [], drainTimeoutMs: 1, clock: n.clock, healthy: () => true, eligible: () => true, source: () => ({ kind: 'manifests' as const, target: '-', connected: true, failing: [] }) };
    const reads: string[] = [];
    const dump = n.ipvs.listRealServers.bind(n.ipvs);
    n.ipvs.listRealServers = (vs) => {
      reads.push('dump');
      return dump(vs);
    };
    const all = await nodeStatus(input, { nodePort: false, draining: false });
    assert.equal(all.realServerStats, false);
    assert.deepEqual(reads, [], 'no dump per virtual server');
    const first = rs(port(all, 'default/s0:http/TCP'), '10.244.9.1:8080');
    assert.deepEqual([first.weight, first.activeConnections, first.inactiveConnections, first.stats.connectionsPerSecond], [1, 3, 1, 0]);
    assert.match(renderStatus(all, { wide: false }), /^note: too many virtual servers selected/m);
    const one = await nodeStatus(input, { service: 's0', nodePort: false, draining: false });
    assert.equal(one.realServerStats, true);
    assert.equal(rs(port(one, 'default/s0:http/TCP'), '10.244.9.1:8080').stats.connectionsPerSecond, 9);
    assert.deepEqual(reads, ['dump']);
  });

  test('query parameters: known ones only, booleans spelled true/false', () => {
    const table: Array<[string, unknown]> = [
      ['', { nodePort: false, draining: false }],
      ['namespace=shop&service=web', { namespace: 'shop', service: 'web', nodePort: false, draining: false }],
      ['nodePort=true&draining', { nodePort: true, draining: true }],
      ['nodePort=0', { nodePort: false, draining: false }],
      ['nodeport=true', { error: 'unknown parameter "nodeport": use namespace, service, nodePort or draining' }],
      ['draining=maybe', { error: 'nodePort and draining take true or false' }],
    ];
    for (const [q, want] of table) assert.deepEqual(parseFilterQuery(new URLSearchParams(q)), want, q);
  });

  test('pods come from targetRefs of kind Pod (or of no kind), by endpoint address', () => {
    const pods = podsOf([
      {
        addressType: 'IPv4',
        endpoints: [
          { addresses: ['10.0.0.1'], targetRef: { kind: 'Pod', name: 'a' } },
          { addresses: ['10.0.0.2'], targetRef: { name: 'b' } },
          { addresses: ['10.0.0.3'], targetRef: { kind: 'Node', name: 'c' } },
          { addresses: ['10.0.0.4'] },
        ],
      },
      { addressType: 'IPv6', endpoints: [{ addresses: ['FD00::5'], targetRef: { kind: 'Pod', name: 'd' } }] },
    ]);
    assert.deepEqual([...pods], [['10.0.0.1', 'a'], ['10.0.0.2', 'b'], ['fd00::5', 'd']]);
    assert.deepEqual(splitHostPort('[fd00::5]:80'), ['fd00::5', 80]);
  });
});

describe('kube-ipvs status text', () => {
  const doc = (): StatusDocument => JSON.parse(readFileSync(join(repoRoot(), 'test', 'golden', 'status.json'), 'utf8')) as StatusDocument;

  test('text, wide and an 80-column terminal match their golden files', () => {
    golden('status.text.txt', renderStatus(doc(), { wide: false }));
    golden('status.wide.txt', renderStatus(doc(), { wide: true }));
    golden('status.80.txt', renderStatus(doc(), { wide: false, width: 80 }));
  });

  test('in a narrow terminal no real-server line is wider than the terminal, down to the column titles', () => {
    for (const width of [100, 80, 72]) {
      const text = renderStatus(doc(), { wide: false, width });
      const rows = text.split('\n').filter((l) => l.startsWith('  10.') || l.startsWith('  ENDPOINT'));
      assert.ok(rows.length > 10);
      for (const l of rows) assert.ok(l.length <= width, `${width}: ${JSON.stringify(l)} is ${l.length} wide`);
    }
    // Pod names are shortened with an ellipsis, never dropped; less useful columns go first.
    const narrow = renderStatus(doc(), { wide: false, width: 72 });
    assert.match(narrow, / web-7d9c5-… /);
    assert.doesNotMatch(narrow, /INACTIVE|CONN\/S/);
    assert.match(renderStatus(doc(), { wide: false, width: 100 }), /POD {15}NODE {5}STATE .* CONN\/S\n/);
  });

  test('counts and rates fit five characters', () => {
    const table: Array<[number, string]> = [[0, '0'], [7.25, '7.3'], [999, '999'], [1000, '1.0k'], [1234, '1.2k'], [56_789, '57k'], [1_500_000, '1.5M'], [2e9, '2.0G']];
    for (const [n, want] of table) assert.equal(shortNumber(n), want, String(n));
  });
});
