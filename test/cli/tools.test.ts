// The operator commands as a user runs them against a daemon over the in-memory kernel:
// `kube-ipvs status` (text, wide, JSON, filters, --metrics-bind-address), `kube-ipvs diff` with
// the daemon (exit 1 after tampering, 0 once a full sync repaired it) and without it
// (--manifests), and `kube-ipvs trace --live` naming the Service and the pods.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { daemonBaseUrl } from '../../src/cli/daemon-client.js';
import { runDiff } from '../../src/cli/diff.js';
import { UsageError } from '../../src/cli/errors.js';
import { statusFilter } from '../../src/cli/status.js';
import { runLiveTrace } from '../../src/cli/trace-live.js';
import { wantsLive } from '../../src/cli/trace.js';
import { kernelRelease } from '../../src/dataplane/netif/real.js';
import type { StatusDocument } from '../../src/observe/status-document.js';
import { ZERO_TRAFFIC } from '../../src/observe/status-document.js';
import { namesFromStatus } from '../../src/cli/trace-names.js';
import { ManualClock } from '../../src/model/clock.js';
import { Proxier } from '../../src/sync/proxier.js';
import { runCliAsync } from '../helpers/cli.js';
import { fakeNode } from '../helpers/fake-dataplane.js';
import type { FakeDaemon } from '../helpers/fake-daemon.js';
import { shopCluster, startFakeDaemon } from '../helpers/fake-daemon.js';
import { freePort } from '../helpers/net.js';
import { config, NODE } from '../helpers/world.js';

const WEB = '10.96.0.10:80/TCP';

describe('kube-ipvs status and diff against a running daemon', () => {
  let d: FakeDaemon;
  let addr: string[];
  before(async () => {
    d = await startFakeDaemon();
    d.node.apply(shopCluster());
    await d.sync(true);
    d.node.ipvs.setConnections(WEB, '10.244.1.11:8080', { active: 7, inactive: 2, persist: 0 });
    addr = ['--metrics-bind-address', d.url.replace('http://', '')];
  });
  after(() => d.close());

  test('status prints every service port with its pods, counts and the daemon\'s state', async () => {
    const r = await runCliAsync(['status', ...addr]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^node node-a: IPv4, healthy; source manifests \/etc\/kube-ipvs\/cluster: connected$/m);
    assert.match(r.stdout, /^last sync: full, .* ok, /m);
    assert.match(r.stdout, /^shop\/web:http\/TCP {2}ClusterIP {2}rr {2}10\.96\.0\.10:80$/m);
    assert.match(r.stdout, /^ {2}10\.244\.1\.11:8080 +web-7d9c5-x2kqp +node-a\* +ready +1 +7 +2 /m);
    assert.match(r.stdout, /^ {2}10\.244\.2\.12:8080 +web-7d9c5-m8rtz +node-b +ready +1 +0 +0 /m);
    assert.match(r.stdout, /^shop\/checkout:http\/TCP {2}NodePort {2}rr {2}10\.96\.0\.20:80 192\.168\.0\.10:30080$/m);
    assert.match(r.stdout, /^invalid objects:\n {2}Service default\/broken: spec\.ports\[0\]\.port: /m);
  });

  test('status filters and formats: a service, -n, --node-port, -o json, -o wide', async () => {
    const json = await runCliAsync(['status', 'shop/web', '-o', 'json', ...addr]);
    assert.equal(json.code, 0);
    const doc = JSON.parse(json.stdout) as StatusDocument;
    assert.deepEqual(doc.services.map((s) => s.key), ['shop/web:http/TCP']);
    assert.deepEqual(doc.filter, { namespace: 'shop', service: 'web', nodePort: false, draining: false });
    const np = JSON.parse((await runCliAsync(['status', '--node-port', '-n', 'shop', '-o', 'json', ...addr])).stdout) as StatusDocument;
    assert.deepEqual(np.services.map((s) => s.key), ['shop/checkout:http/TCP']);
    const wide = await runCliAsync(['status', 'kube-dns', '-o', 'wide', ...addr]);
    assert.match(wide.stdout, /ZONE/);
    assert.match(wide.stdout, /^ {2}ClusterIP {4}10\.96\.0\.53:53\/UDP: 2 real servers/m);
    assert.doesNotMatch(wide.stdout, /shop\/web/);
  });

  test('status says what to do when no daemon answers, or when the address is off', async () => {
    const port = await freePort();
    const r = await runCliAsync(['status', '--metrics-bind-address', `127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^kube-ipvs: status: cannot reach the kube-ipvs daemon at http://127\\.0\\.0\\.1:${port} \\(.*\\): is it running, and is --metrics-bind-address the address it listens on\\?\\n$`));
    const off = await runCliAsync(['status', '--metrics-bind-address=']);
    assert.equal(off.code, 2);
    assert.match(off.stderr, /--metrics-bind-address is empty/);
    const bad = await runCliAsync(['status', '-o', 'yaml', ...addr]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid value "yaml" for --output: expected one of text, wide, json/);
  });

  test('diff: 0 while the kernel is as planned, 1 with the tampering grouped by Service, 0 again after a full sync', async () => {
    const clean = await runCliAsync(['diff', ...addr]);
    assert.deepEqual([clean.code, clean.stdout], [0, 'no differences: the kernel holds what kube-ipvs wants\n']);
    await d.node.ipvs.apply([{ kind: 'deleteDest', vs: { family: 'IPv4', protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'rr', flags: 0, timeout: 0 }, rs: { address: '10.244.2.12', port: 8080, weight: 1, forward: 'masq' } }]);
    await d.node.netif.unbind('kube-ipvs0', '10.96.0.20');
    const r = await runCliAsync(['diff', ...addr]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      [
        '### Service shop/checkout (shop/checkout:http/TCP)',
        '# kube-ipvs0 addresses',
        '+ 10.96.0.20/32',
        '### Service shop/web (shop/web:http/TCP)',
        '# ipvsadm -Sn',
        '+ -a -t 10.96.0.10:80 -r 10.244.2.12:8080 -m -w 1',
        '2 differences (ipvs 1, netif 1)',
        '',
      ].join('\n'),
    );
    const json = JSON.parse((await runCliAsync(['diff', '-o', 'json', ...addr])).stdout) as { differs: boolean; counts: Record<string, number> };
    assert.deepEqual([json.differs, json.counts.ipvs, json.counts.netif], [true, 1, 1]);
    const fixed = await d.sync(true);
    assert.deepEqual(Object.fromEntries(fixed.report.drift), { netif: 1, ipvs: 1 });
    const metrics = await (await fetch(`${d.url}/metrics`)).text();
    assert.match(metrics, /^kube_ipvs_drift_detected_total\{subsystem="ipvs"\} 1$/m);
    assert.match(metrics, /^kube_ipvs_drift_detected_total\{subsystem="netif"\} 1$/m);
    assert.equal((await runCliAsync(['diff', ...addr])).code, 0);
  });

  test('diff mentions changes the daemon has not synced yet', async () => {
    d.node.apply({ services: [shopCluster().services[0] as never] });
    d.obs.queued();
    const r = await runCliAsync(['diff', ...addr]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /^note: 1 service and 0 endpoint changes are waiting for the daemon's next sync and are not in this diff$/m);
    await d.sync();
  });
});

describe('kube-ipvs diff and trace --live without a daemon, over the in-memory kernel', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-tools-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const cluster = shopCluster();
  writeFileSync(join(dir, 'cluster.yaml'), [...cluster.services, ...cluster.slices].map((o) => stringify(o)).join('---\n'));

  /** A node `run --manifests` synced from the same files: node IPs from its interfaces. */
  async function syncedNode() {
    const cfg = config();
    const n = fakeNode({ config: cfg });
    n.apply(cluster);
    const proxier = new Proxier({ config: cfg, dataplane: n.dataplane, tracker: n.tracker, clock: new ManualClock(), nodeIPsFromInterfaces: true, kernelVersion: await kernelRelease(), cpuCount: 1 });
    assert.deepEqual((await proxier.sync()).report.failures, []);
    return { n, open: async () => ({ ...n.dataplane, close: () => undefined }) };
  }
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, sink: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) } };
  };

  test('diff --manifests plans here: 0 on the node it describes, 1 after tampering', async () => {
    const { n, open } = await syncedNode();
    const args = ['--manifests', dir, '--hostname-override', NODE];
    const a = io();
    assert.equal(await runDiff(args, { ...a.sink, openDataplane: open }), 0, a.out.join('') + a.err.join(''));
    assert.match(a.err.join(''), /warning: Service default\/broken: spec\.ports\[0\]\.port/);
    await n.ipset.apply([{ kind: 'del', name: 'KUBE-NODE-PORT-TCP', entry: '30080' }]);
    const b = io();
    assert.equal(await runDiff(args, { ...b.sink, openDataplane: open }), 1);
    assert.match(b.out.join(''), /^### Service shop\/checkout \(shop\/checkout:http\/TCP\)\n# ipset save\n\+ add KUBE-NODE-PORT-TCP 30080\n/m);
  });

  test('diff exits 2 on trouble, which never reads as "differs"', async () => {
    const a = io();
    assert.equal(await runDiff(['--manifests', join(dir, 'missing.yaml')], { ...a.sink, openDataplane: (await syncedNode()).open }), 2);
    assert.match(a.err.join(''), /^kube-ipvs: diff: .*missing\.yaml/);
    const b = io();
    assert.equal(await runDiff(['--metrics-bind-address', `127.0.0.1:${await freePort()}`], b.sink), 2);
    assert.match(b.err.join(''), /cannot reach the kube-ipvs daemon .*\? Without a daemon, give --manifests or --kubeconfig to plan here\./);
    assert.equal(await runDiff(['extra'], io().sink), 2);
  });

  test('trace --live walks the kernel and names the Service and pods (from --manifests)', async () => {
    const { n, open } = await syncedNode();
    n.ipvs.setConnections(WEB, '10.244.1.13:8080', { active: 1, inactive: 0, persist: 0 });
    // A drained server at weight 0, as the kernel would hold it: not picked for a new connection.
    await n.ipvs.apply([{ kind: 'updateDest', vs: { family: 'IPv4', protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'rr', flags: 0, timeout: 0 }, rs: { address: '10.244.1.13', port: 8080, weight: 0, forward: 'masq' } }]);
    const a = io();
    const code = await runLiveTrace(['--live', '--from', '10.244.1.5', '--to', '10.96.0.10:80', '--origin', 'pod', '--manifests', dir, '--hostname-override', NODE], { ...a.sink, openDataplane: open });
    assert.equal(code, 0, a.err.join(''));
    const out = a.out.join('');
    assert.match(out, /^verdict: load-balanced$/m);
    assert.match(out, /^virtual server: 10\.96\.0\.10:80\/TCP \(Service shop\/web:http\/TCP\)$/m);
    assert.match(out, /^ {2}10\.244\.1\.11:8080 \(pod web-7d9c5-x2kqp on node-a\) {2}/m);
    assert.match(out, /^ {2}10\.244\.2\.12:8080 \(pod web-7d9c5-m8rtz on node-b\) {2}/m);
    assert.doesNotMatch(out, /^ {2}10\.244\.1\.13:8080/m);
    assert.match(out, /^note: not picked for a new connection \(weight 0, draining\): 10\.244\.1\.13:8080$/m);

    const est = io();
    await runLiveTrace(['--live', '--established', '--from', '10.244.1.5', '--to', '10.96.0.10:80', '--origin', 'pod', '-o', 'json', '--metrics-bind-address='], { ...est.sink, openDataplane: open });
    const doc = JSON.parse(est.out.join('')) as { realServers: string[] };
    assert.deepEqual(doc.realServers.sort(), ['10.244.1.11:8080', '10.244.1.13:8080', '10.244.2.12:8080'], 'an established connection may sit on the drained one');
  });

  test('trace --live names from the running daemon\'s /status', async () => {
    const daemon = await startFakeDaemon();
    try {
      daemon.node.apply(shopCluster());
      await daemon.sync(true);
      const a = io();
      const code = await runLiveTrace(['--live', '--from', '10.244.1.5', '--to', '10.96.0.53:53', '--protocol', 'udp', '--origin', 'pod', '--metrics-bind-address', daemon.url.replace('http://', '')], { ...a.sink, openDataplane: async () => ({ ...daemon.node.dataplane, close: () => undefined }) });
      assert.equal(code, 0, a.err.join(''));
      assert.match(a.out.join(''), /^virtual server: 10\.96\.0\.53:53\/UDP \(Service kube-system\/kube-dns:dns\/UDP\)$/m);
      assert.match(a.out.join(''), /^ {2}10\.244\.1\.5:53 \(pod coredns-76f75-4vx9n on node-a\) {2}/m);
    } finally {
      await daemon.close();
    }
  });
});

describe('command-line details', () => {
  test('the daemon is reached on loopback when it binds a wildcard', () => {
    const table: Array<[string, string]> = [
      ['127.0.0.1:10249', 'http://127.0.0.1:10249'],
      ['0.0.0.0:10249', 'http://127.0.0.1:10249'],
      [':10249', 'http://127.0.0.1:10249'],
      ['[::]:10249', 'http://[::1]:10249'],
      ['[fd00::5]:9999', 'http://[fd00::5]:9999'],
    ];
    for (const [bind, want] of table) assert.equal(daemonBaseUrl(bind), want, bind);
    assert.throws(() => daemonBaseUrl(''), UsageError);
    assert.throws(() => daemonBaseUrl('10249'), UsageError);
  });

  test('SERVICE may carry its namespace; -n must then agree', () => {
    const extra = (o: Record<string, unknown>) => new Map(Object.entries(o));
    assert.deepEqual(statusFilter(['shop/web'], extra({})), { namespace: 'shop', service: 'web', nodePort: false, draining: false });
    assert.deepEqual(statusFilter(['web'], extra({ namespace: 'shop', draining: true })), { namespace: 'shop', service: 'web', nodePort: false, draining: true });
    assert.deepEqual(statusFilter([], extra({ 'node-port': true })), { nodePort: true, draining: false });
    assert.throws(() => statusFilter(['shop/web'], extra({ namespace: 'other' })), /-n other and shop\/web name different namespaces/);
    assert.throws(() => statusFilter(['a', 'b'], extra({})), /at most one SERVICE/);
    assert.throws(() => statusFilter(['a/b/c'], extra({})), /expected NAME or NAMESPACE\/NAME/);
  });

  test('a trace names a real server by its Service\'s slices, even when another Service names the address otherwise', () => {
    const rsOf = (pod: string) => ({ endpoint: '10.244.1.2:8080', address: '10.244.1.2', port: 8080, pod, node: NODE, local: true, ready: true, serving: true, terminating: false, inKernel: true, weight: 1, activeConnections: 0, inactiveConnections: 0, stats: ZERO_TRAFFIC });
    const port = (key: string, vs: string, pod: string) => ({ key, virtualServers: [{ key: vs }], realServers: [rsOf(pod)] });
    const doc = { services: [port('default/web:http/TCP', '10.96.0.10:80/TCP', 'web-a'), port('store/shop:http/TCP', '10.96.0.20:80/TCP', 'shop-a')] } as unknown as StatusDocument;
    const names = namesFromStatus(doc);
    assert.equal(names.service('10.96.0.20:80/TCP'), 'store/shop:http/TCP');
    assert.deepEqual(names.pod('10.244.1.2:8080', 'store/shop:http/TCP'), { pod: 'shop-a', node: NODE });
    assert.deepEqual(names.pod('10.244.1.2:8080', 'default/web:http/TCP'), { pod: 'web-a', node: NODE });
    assert.deepEqual(names.pod('10.244.1.2:8080', undefined), { pod: 'web-a', node: NODE }, 'without a Service, the first that names it');
  });

  test('trace goes live on --live only', () => {
    assert.equal(wantsLive(['--from', '1.2.3.4', '--live']), true);
    assert.equal(wantsLive(['--live=false']), false);
    assert.equal(wantsLive(['--live', '--live=false']), false);
    assert.equal(wantsLive(['--', '--live']), false);
  });
});
