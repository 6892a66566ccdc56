// The API source against a real kube-apiserver and etcd: objects created, changed and deleted
// through the API reach the plan; selectors, dual-stack and topology behave as kube-proxy's;
// the API server going away, a watch expiring and RBAC refusing a list are survived and said.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1PolicyRule } from '@kubernetes/client-node';
import { ApiSource } from '../../src/cluster/api-source.js';
import { loadKubeConfig } from '../../src/cluster/api/kubeconfig.js';
import { ClusterTracker } from '../../src/cluster/tracker.js';
import { startHealthzServer } from '../../src/observe/http-servers.js';
import { createLogger } from '../../src/observe/log.js';
import { nodeEligibility, ProxyHealth } from '../../src/observe/proxy-health.js';
import { planCluster } from '../../src/plan/planner.js';
import { realClock } from '../../src/model/clock.js';
import { renderIpvs } from '../../src/plan/render.js';
import type { TestApiServer } from '../helpers/apiserver.js';
import { apiRequest, startTestApiServer } from '../helpers/apiserver.js';
import { config, node as nodeInfo, NODE, service, slice } from '../helpers/world.js';
import { eventually, grant, must, shippedProxyRules, watchedNode } from './support.js';

const SVC = '/api/v1/namespaces/default/services';
const SLICES = '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices';

async function createNode(server: TestApiServer, labels: Record<string, string>): Promise<void> {
  await must(
    apiRequest(server, 'POST', '/api/v1/nodes', { metadata: { name: NODE, labels }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.10' }] } }),
    'create node',
  );
}

describe('API source against a real kube-apiserver', () => {
  let server: TestApiServer;
  before(async () => {
    server = await startTestApiServer();
    await grant(server, 'kube-ipvs-node', shippedProxyRules());
    await createNode(server, { 'topology.kubernetes.io/zone': 'zone-a' });
  });
  after(async () => {
    await server?.stop();
  });

  test('services and endpoint slices created, changed and deleted through the API follow into the kernel', async () => {
    const w = watchedNode(server, 'kube-ipvs-node');
    try {
      await w.source.waitForInitialSync(20_000);
      await must(apiRequest(server, 'POST', SVC, service('web', { clusterIP: '10.96.10.10', ports: [{ name: 'http', port: 80, targetPort: 8080 as never }] })), 'create web');
      await must(apiRequest(server, 'POST', SLICES, slice('web', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2', node: NODE }], { name: 'web-1' })), 'create slice');
      await w.converge('web with one real server', (t) => t.includes('-a -t 10.96.10.10:80 -r 10.244.1.2:8080'));

      const updated = slice('web', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2' }, { ip: '10.244.1.3' }], { name: 'web-1' });
      await must(apiRequest(server, 'PUT', `${SLICES}/web-1`, updated), 'update slice');
      await w.converge('a second real server', (t) => t.includes('-r 10.244.1.3:8080'));

      await must(apiRequest(server, 'DELETE', `${SVC}/web`), 'delete web');
      await w.converge('web gone', (t) => !t.includes('10.96.10.10'));
      assert.doesNotMatch(w.node.ipset.dump(), /10\.96\.10\.10/, 'no ipset entry of the deleted service is left');
      assert.doesNotMatch(w.node.netif.dump(), /10\.96\.10\.10/, 'its address is unbound from kube-ipvs0');
    } finally {
      w.close();
      await apiRequest(server, 'DELETE', `${SLICES}/web-1`);
    }
  });

  test("default/kubernetes listed on its own, with the shipped role (list, not get) and the API server's own objects; the first-services pass programs it before the whole lists are awaited", async () => {
    const w = watchedNode(server, 'kube-ipvs-node');
    try {
      // kube-apiserver creates default/kubernetes itself, soon after it starts; its endpoints come
      // from here (this test server runs with --endpoint-reconciler-type=none).
      await must(apiRequest(server, 'POST', SLICES, slice('kubernetes', [{ name: 'https', port: 6443 }], [{ ip: '192.168.0.2' }], { name: 'kubernetes' })), 'create the kubernetes slice');
      let objects = await w.source.listFirstServices(['default/kubernetes']);
      await eventually('default/kubernetes listed', async () => {
        objects = await w.source.listFirstServices(['default/kubernetes']);
        return objects.services.length > 0;
      });
      assert.deepEqual(objects.services.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`), ['default/kubernetes']);
      assert.ok(objects.slices.length > 0 && objects.slices.every((s) => s.metadata?.labels?.['kubernetes.io/service-name'] === 'kubernetes'), JSON.stringify(objects.slices.map((s) => s.metadata?.name)));
      const endpoint = objects.slices[0]?.endpoints?.[0]?.addresses[0] ?? '';
      const vip = objects.services[0]?.spec?.clusterIP ?? '';
      const own = new ClusterTracker(NODE, () => undefined);
      for (const s of objects.services) own.upsertService(s);
      for (const s of objects.slices) own.upsertEndpointSlice(s);
      const report = await w.node.proxier.programFirstServices(own.drain(['default/kubernetes']).snapshot);
      assert.deepEqual(report?.failures, []);
      assert.match(w.node.ipvs.dump(), new RegExp(`-a -t ${vip.replaceAll('.', '\\.')}:443 -r ${endpoint.replaceAll('.', '\\.')}:6443 `), w.node.ipvs.dump());
    } finally {
      w.close();
      await apiRequest(server, 'DELETE', `${SLICES}/kubernetes`);
    }
  });

  test('start(listsFrom): the Node is listed at once, Services and EndpointSlices only once listsFrom settles (never after close)', async () => {
    const connection = loadKubeConfig({ kubeconfig: server.kubeconfigFor('kube-ipvs-node'), master: '' });
    const quiet = createLogger('text', () => undefined);
    const sourceWith = (): ApiSource => new ApiSource({ connection, tracker: new ClusterTracker(NODE, () => undefined), nodeName: NODE, log: quiet, onChange: () => undefined });
    let open: () => void = () => undefined;
    const held = sourceWith();
    held.start(new Promise<void>((resolve) => (open = resolve)));
    const closed = sourceWith();
    let openClosed: () => void = () => undefined;
    closed.start(new Promise<void>((resolve) => (openClosed = resolve)));
    try {
      await eventually('the Node listed', () => Promise.resolve(held.listCounts().node >= 1 && closed.listCounts().node >= 1));
      assert.ok(held.node(), 'the Node object arrived');
      // Time for lists that went out too early to come back.
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(held.listCounts(), { services: 0, endpointSlices: 0, node: 1 });
      closed.close();
      openClosed();
      open();
      await held.waitForInitialSync(20_000);
      assert.deepEqual(held.listCounts(), { services: 1, endpointSlices: 1, node: 1 });
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(closed.listCounts(), { services: 0, endpointSlices: 0, node: 1 });
    } finally {
      held.close();
      closed.close();
    }
  });

  test('objects of another proxy (service-proxy-name) and headless ones are not even listed', async () => {
    const w = watchedNode(server, 'kube-ipvs-node');
    try {
      await w.source.waitForInitialSync(20_000);
      const other = service('other', { clusterIP: '10.96.10.20', ports: [{ port: 80 }] }, { metadata: { labels: { 'service.kubernetes.io/service-proxy-name': 'cilium' } } });
      await must(apiRequest(server, 'POST', SVC, other), 'create other');
      await must(apiRequest(server, 'POST', SVC, service('mine', { clusterIP: '10.96.10.21', ports: [{ port: 80 }] })), 'create mine');
      await w.converge('mine programmed', (t) => t.includes('10.96.10.21:80'));
      assert.doesNotMatch(w.node.ipvs.dump(), /10\.96\.10\.20/);
      assert.equal(w.node.tracker.current().services.has('default/other'), false);
    } finally {
      w.close();
      await apiRequest(server, 'DELETE', `${SVC}/other`);
      await apiRequest(server, 'DELETE', `${SVC}/mine`);
    }
  });

  test('a dual-stack service is planned in both families', async () => {
    const w = watchedNode(server, 'kube-ipvs-node');
    try {
      await w.source.waitForInitialSync(20_000);
      const dual = service('dual', { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'], clusterIP: '10.96.10.30', clusterIPs: ['10.96.10.30', 'fd00:10:96::30'], ports: [{ name: 'http', port: 80 }] });
      await must(apiRequest(server, 'POST', SVC, dual), 'create dual');
      await must(apiRequest(server, 'POST', SLICES, slice('dual', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.5' }], { name: 'dual-v4' })), 'v4 slice');
      await must(apiRequest(server, 'POST', SLICES, slice('dual', [{ name: 'http', port: 8080 }], [{ ip: 'fd00:10:244::5' }], { name: 'dual-v6' })), 'v6 slice');
      await eventually('both slices seen', async () => {
        await w.node.proxier.sync();
        return (w.node.tracker.current().endpoints.get('default/dual')?.byPort.get('default/dual:http/TCP')?.length ?? 0) === 2;
      });
      // The fake node is IPv4-only; plan the same snapshot for a dual-stack node.
      const state = planCluster(w.node.tracker.current(), { node: nodeInfo({ addresses: ['192.168.0.10', 'fd00::10'] }), config: config() });
      const text = renderIpvs(state);
      assert.match(text, /-a -t 10\.96\.10\.30:80 -r 10\.244\.1\.5:8080/);
      assert.match(text, /-a -t \[fd00:10:96::30\]:80 -r \[fd00:10:244::5\]:8080/);
    } finally {
      w.close();
      await apiRequest(server, 'DELETE', `${SVC}/dual`);
      await apiRequest(server, 'DELETE', `${SLICES}/dual-v4`);
      await apiRequest(server, 'DELETE', `${SLICES}/dual-v6`);
    }
  });

  test("a change of the node's zone label re-plans topology-aware routing", async () => {
    const w = watchedNode(server, 'kube-ipvs-node');
    try {
      await w.source.waitForInitialSync(20_000);
      await must(apiRequest(server, 'POST', SVC, service('zoned', { clusterIP: '10.96.10.40', ports: [{ name: 'http', port: 80 }] })), 'create zoned');
      const eps = slice('zoned', [{ name: 'http', port: 8080 }], [
        { ip: '10.244.1.6', zone: 'zone-a', zoneHints: ['zone-a'] },
        { ip: '10.244.2.6', zone: 'zone-b', zoneHints: ['zone-b'] },
      ], { name: 'zoned-1' });
      await must(apiRequest(server, 'POST', SLICES, eps), 'create zoned slice');
      await w.converge('zone-a endpoint only', (t) => t.includes('-r 10.244.1.6:8080') && !t.includes('-r 10.244.2.6:8080'));
      await must(apiRequest(server, 'PATCH', `/api/v1/nodes/${NODE}`, { metadata: { labels: { 'topology.kubernetes.io/zone': 'zone-b' } } }), 'relabel node');
      await w.converge('zone-b endpoint only after the relabel', (t) => t.includes('-r 10.244.2.6:8080') && !t.includes('-r 10.244.1.6:8080'));
    } finally {
      w.close();
      await apiRequest(server, 'PATCH', `/api/v1/nodes/${NODE}`, { metadata: { labels: { 'topology.kubernetes.io/zone': 'zone-a' } } });
      await apiRequest(server, 'DELETE', `${SVC}/zoned`);
      await apiRequest(server, 'DELETE', `${SLICES}/zoned-1`);
    }
  });

  test('/healthz follows the Node watch at once, with no sync: the autoscaler taint, a deletion in progress, a deleted Node', async () => {
    // Its own Node, so the other tests' node keeps its state.
    const name = 'node-doomed';
    const path = `/api/v1/nodes/${name}`;
    await must(apiRequest(server, 'POST', '/api/v1/nodes', { metadata: { name }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.20' }] } }), 'create node');
    const kc = loadKubeConfig({ kubeconfig: server.kubeconfigFor('kube-ipvs-node'), master: '' });
    const source = new ApiSource({ connection: kc, tracker: new ClusterTracker(name, () => undefined), nodeName: name, log: createLogger('text', () => undefined), onChange: () => undefined });
    source.start();
    // Wired as run does for the API source; nothing below ever syncs.
    const health = new ProxyHealth({ clock: realClock, syncPeriodMs: 30_000, families: ['IPv4'], nodeEligible: nodeEligibility(() => source.node(), { required: true }) });
    const srv = await startHealthzServer('127.0.0.1:0', health);
    assert.ok(srv);
    const healthz = async (): Promise<{ status: number; eligible: unknown }> => {
      const r = await fetch(`http://${srv.address}/healthz`);
      return { status: r.status, eligible: ((await r.json()) as { nodeEligible?: unknown }).nodeEligible };
    };
    const answers = (status: number) => async () => (await healthz()).status === status;
    try {
      await source.waitForInitialSync(20_000);
      health.updated();
      assert.deepEqual(await healthz(), { status: 200, eligible: true });

      await must(apiRequest(server, 'PATCH', path, { spec: { taints: [{ key: 'ToBeDeletedByClusterAutoscaler', value: '1700000000', effect: 'NoSchedule' }] } }), 'taint');
      await eventually('503 once the autoscaler taint is watched', answers(503), 5000);
      assert.deepEqual(await healthz(), { status: 503, eligible: false });
      await must(apiRequest(server, 'PATCH', path, { spec: { taints: null } }), 'untaint');
      await eventually('200 again without the taint', answers(200), 5000);

      // A finalizer keeps the deleted Node around with its deletionTimestamp.
      await must(apiRequest(server, 'PATCH', path, { metadata: { finalizers: ['kube-ipvs.test/hold'] } }), 'finalizer');
      await must(apiRequest(server, 'DELETE', path), 'delete node');
      await eventually('503 while the Node is being deleted', answers(503), 5000);
      await must(apiRequest(server, 'PATCH', path, { metadata: { finalizers: null } }), 'release');
      await eventually('the Node is gone from the watch', () => source.node() === undefined, 5000);
      assert.deepEqual(await healthz(), { status: 503, eligible: false }, 'a deleted Node stays ineligible');
    } finally {
      await srv.close();
      source.close();
      await apiRequest(server, 'PATCH', path, { metadata: { finalizers: null } });
      await apiRequest(server, 'DELETE', path);
    }
  });

  test('RBAC that forbids EndpointSlices: start-up is refused with a clear message, retries go on, and a later grant recovers', async () => {
    const withoutSlices: V1PolicyRule[] = shippedProxyRules().map((r) => ({ ...r, resources: (r.resources ?? []).filter((x) => x !== 'endpointslices') })).filter((r) => (r.resources ?? []).length > 0);
    await grant(server, 'limited', withoutSlices);
    const w = watchedNode(server, 'limited', { backoff: { initialMs: 100, maxMs: 400 } });
    try {
      await assert.rejects(w.source.waitForInitialSync(20_000), /forbidden to list\/watch endpointslices.*grant/);
      await eventually('a few retries logged', () => w.logs.filter((l) => /ERROR .*forbidden to list\/watch endpointslices/.test(l)).length >= 3);
      assert.deepEqual(w.source.failingResources(), ['endpointslices']);
      await grant(server, 'limited', shippedProxyRules());
      await eventually('endpointslices listed after the grant', () => w.source.listCounts().endpointSlices >= 1 && w.source.failingResources().length === 0);
      assert.ok(w.logs.some((l) => /API source recovered resource=endpointslices/.test(l)));
    } finally {
      w.close();
    }
  });
});

describe('API source when the API server fails', () => {
  let server: TestApiServer;
  before(async () => {
    // Without the watch cache, watches read etcd, so a compaction expires them with 410 Gone.
    server = await startTestApiServer({ watchCache: false });
    await grant(server, 'kube-ipvs-node', shippedProxyRules());
    await createNode(server, {});
  });
  after(async () => {
    await server?.stop();
  });

  test('killed for 30 s: the kernel keeps every service, errors are logged, and after the restart changes flow again', { timeout: 180_000 }, async () => {
    const w = watchedNode(server, 'kube-ipvs-node', { backoff: { initialMs: 500, maxMs: 4000 } });
    try {
      await w.source.waitForInitialSync(20_000);
      await must(apiRequest(server, 'POST', SVC, service('steady', { clusterIP: '10.96.11.10', ports: [{ name: 'http', port: 80 }] })), 'create steady');
      await must(apiRequest(server, 'POST', SLICES, slice('steady', [{ name: 'http', port: 8080 }], [{ ip: '10.244.3.2' }], { name: 'steady-1' })), 'steady slice');
      await w.converge('steady programmed', (t) => t.includes('-r 10.244.3.2:8080'));
      const before = w.node.ipvs.dump();

      await server.kill();
      const downUntil = Date.now() + 30_000;
      while (Date.now() < downUntil) {
        const r = await w.node.proxier.sync({ full: true });
        assert.ok(r.ok, 'syncs go on while the API server is down');
        assert.equal(w.node.ipvs.dump(), before, 'nothing is flushed or changed while the API is unreachable');
        await new Promise((res) => setTimeout(res, 2000));
      }
      assert.ok(w.logs.some((l) => /ERROR .*cannot reach the API server https:\/\/127\.0\.0\.1:\d+ .*check --kubeconfig/.test(l) || /ERROR .*watching (services|endpointslices)/.test(l)), `an error names the server:\n${w.logs.join('')}`);

      await server.restart();
      await must(apiRequest(server, 'POST', SLICES, slice('steady', [{ name: 'http', port: 8080 }], [{ ip: '10.244.3.3' }], { name: 'steady-2' })), 'second slice');
      await w.converge('the change made after the restart arrives', (t) => t.includes('-r 10.244.3.3:8080') && t.includes('-r 10.244.3.2:8080'), 60_000);
    } finally {
      w.close();
    }
  });

  test('a watch that expires (etcd compacted, 410 Gone) leads to a relist, and the state converges', { timeout: 120_000 }, async () => {
    const w = watchedNode(server, 'kube-ipvs-node', { backoff: { initialMs: 200, maxMs: 1000 } });
    try {
      await w.source.waitForInitialSync(20_000);
      const listsBefore = w.source.listCounts();
      // Move etcd's revision on, cut the watches, compact past their versions, and come back.
      for (let i = 0; i < 3; i++) await must(apiRequest(server, 'POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: `churn-${i}` } }), 'churn');
      await server.kill();
      await server.compactEtcd();
      await server.restart();
      await eventually('services and slices relisted', () => {
        const c = w.source.listCounts();
        return c.services > listsBefore.services && c.endpointSlices > listsBefore.endpointSlices;
      }, 60_000);
      await must(apiRequest(server, 'POST', SVC, service('late', { clusterIP: '10.96.11.20', ports: [{ name: 'http', port: 80 }] })), 'create late');
      await w.converge('a service created after the relist', (t) => t.includes('10.96.11.20:80'), 30_000);
      assert.match(w.node.ipvs.dump(), /10\.96\.11\.10:80/, 'services from before are still there');
    } finally {
      w.close();
    }
  });
});
