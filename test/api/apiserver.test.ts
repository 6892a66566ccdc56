// The test API server itself: objects round-trip, RBAC denies, etcd outlives an apiserver crash,
// and compaction turns old resourceVersions into 410 Gone — what the informer tests rely on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { apiRequest, apiServerBinaries, startTestApiServer, type TestApiServer } from '../helpers/apiserver.js';

const skip = apiServerBinaries() === undefined && 'kube-apiserver not built: run test/apiserver/build.sh';
const NS = 'api-test';

interface Meta { metadata: { name: string; resourceVersion: string } }
interface List<T> { metadata: { resourceVersion: string }; items: T[] }
interface Service extends Meta { spec: { clusterIP: string; clusterIPs: string[]; ipFamilies: string[] } }
interface WatchEvent { type: string; object: { code?: number; reason?: string } }

const service = (name: string, dual = false): object => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: NS },
  spec: {
    ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    selector: { app: name },
    ...(dual ? { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] } : {}),
  },
});

const slice = {
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'web-abc', namespace: NS, labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: [{ addresses: ['10.244.1.2'], conditions: { ready: true }, nodeName: 'node-a' }],
};

describe('test kube-apiserver', { skip }, () => {
  let server: TestApiServer;
  before(async () => {
    server = await startTestApiServer({ watchCache: false });
  });
  after(async () => {
    await server?.stop();
  });

  const ok = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await apiRequest<T>(server, method, path, body);
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
    return r.body;
  };

  test('creates and lists services (one dual-stack) and an EndpointSlice', async () => {
    await ok('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    const web = await ok<Service>('POST', `/api/v1/namespaces/${NS}/services`, service('web'));
    assert.match(web.spec.clusterIP, /^10\.96\./);
    const dual = await ok<Service>('POST', `/api/v1/namespaces/${NS}/services`, service('dual', true));
    assert.deepEqual(dual.spec.ipFamilies, ['IPv4', 'IPv6']);
    assert.match(dual.spec.clusterIPs[1] ?? '', /^fd00:10:96::/);
    await ok('POST', `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`, slice);

    const services = await ok<List<Service>>('GET', `/api/v1/namespaces/${NS}/services`);
    assert.deepEqual(services.items.map((s) => s.metadata.name).sort(), ['dual', 'web']);
    const slices = await ok<List<Meta>>('GET', `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`);
    assert.deepEqual(slices.items.map((s) => s.metadata.name), ['web-abc']);
  });

  test('server-side dry run validates without storing', async () => {
    const r = await apiRequest<Service>(server, 'POST', `/api/v1/namespaces/${NS}/services?dryRun=All`, service('dry'));
    assert.equal(r.status, 201, r.text);
    assert.equal((await apiRequest(server, 'GET', `/api/v1/namespaces/${NS}/services/dry`)).status, 404);
  });

  test('a user without RBAC gets 403, and RBAC granted through the API lets it list', async () => {
    const path = '/apis/discovery.k8s.io/v1/endpointslices';
    assert.equal((await apiRequest(server, 'GET', path, undefined, 'limited')).status, 403);
    assert.equal((await apiRequest(server, 'GET', path, undefined, 'kube-ipvs-node')).status, 403);
    await ok('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'kube-ipvs-node-proxier' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:node-proxier' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'kube-ipvs-node' }],
    });
    // RBAC caches are updated by an informer, so the grant takes effect within moments.
    for (let i = 0; ; i++) {
      const status = (await apiRequest(server, 'GET', path, undefined, 'kube-ipvs-node')).status;
      if (status === 200) break;
      assert.ok(i < 50, `kube-ipvs-node still gets ${status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await apiRequest(server, 'GET', path, undefined, 'limited')).status, 403);
  });

  test('the kubeconfig files work with @kubernetes/client-node', async () => {
    const api = (user: string): CoreV1Api => {
      const kc = new KubeConfig();
      kc.loadFromFile(user === 'admin' ? server.adminKubeconfig : server.kubeconfigFor(user));
      return kc.makeApiClient(CoreV1Api);
    };
    const list = await api('admin').listNamespacedService({ namespace: NS });
    assert.deepEqual(list.items.map((s) => s.metadata?.name).sort(), ['dual', 'web']);
    await assert.rejects(api('limited').listNamespacedService({ namespace: NS }), (e: { code?: number }) => e.code === 403);
  });

  test('objects survive a SIGKILLed apiserver and its restart', async () => {
    await server.kill();
    await assert.rejects(apiRequest(server, 'GET', '/readyz'));
    await server.restart();
    const services = await ok<List<Service>>('GET', `/api/v1/namespaces/${NS}/services`);
    assert.deepEqual(services.items.map((s) => s.metadata.name).sort(), ['dual', 'web']);
  });

  test('after etcd compaction, a watch from an old resourceVersion is 410 Gone', async () => {
    const list = await ok<List<Service>>('GET', `/api/v1/namespaces/${NS}/services`);
    const oldRv = list.metadata.resourceVersion;
    await ok('POST', `/api/v1/namespaces/${NS}/services`, service('later'));
    await ok('DELETE', `/api/v1/namespaces/${NS}/services/later`);
    const watch = (rv: string, seconds: number) =>
      apiRequest<WatchEvent[]>(server, 'GET', `/api/v1/namespaces/${NS}/services?watch=1&resourceVersion=${rv}&timeoutSeconds=${seconds}`);
    const before = await watch(oldRv, 1);
    assert.deepEqual(before.body.map((e) => e.type), ['ADDED', 'DELETED'], before.text);
    await server.compactEtcd();
    const r = await watch(oldRv, 5);
    const gone = r.status === 410 || (Array.isArray(r.body) && r.body.some((e) => e.type === 'ERROR' && e.object.code === 410));
    assert.ok(gone, `expected 410, got ${r.status} ${r.text}`);
  });
});
