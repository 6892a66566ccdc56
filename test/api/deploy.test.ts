// deploy/kube-ipvs.yaml is accepted by a real kube-apiserver (server-side dry run of every
// document), and the KubeProxyConfiguration in its ConfigMap loads with our own loader.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import type { TestApiServer } from '../helpers/apiserver.js';
import { apiRequest, startTestApiServer } from '../helpers/apiserver.js';
import { projectRoot } from './support.js';

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
}

const COLLECTIONS: Record<string, (ns: string) => string> = {
  ServiceAccount: (ns) => `/api/v1/namespaces/${ns}/serviceaccounts`,
  ConfigMap: (ns) => `/api/v1/namespaces/${ns}/configmaps`,
  DaemonSet: (ns) => `/apis/apps/v1/namespaces/${ns}/daemonsets`,
  ClusterRole: () => '/apis/rbac.authorization.k8s.io/v1/clusterroles',
  ClusterRoleBinding: () => '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
};

function manifests(file = 'kube-ipvs.yaml'): Manifest[] {
  const docs = parseAllDocuments(readFileSync(join(projectRoot(), 'deploy', file), 'utf8'));
  return docs.map((d) => d.toJSON() as Manifest | null).filter((m): m is Manifest => m !== null);
}

interface PodSpec {
  initContainers: Array<{ name: string; args: string[]; securityContext: Record<string, unknown> }>;
  containers: Array<{ name: string; securityContext: Record<string, unknown> }>;
}

function daemonSet(file: string): Manifest & { spec: { template: { spec: PodSpec } } } {
  const ds = manifests(file).find((m) => m.kind === 'DaemonSet');
  assert.ok(ds, `${file} has a DaemonSet`);
  return ds as Manifest & { spec: { template: { spec: PodSpec } } };
}

describe('deploy/kube-ipvs.yaml', () => {
  let server: TestApiServer;
  before(async () => {
    server = await startTestApiServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('holds the objects a kube-proxy replacement needs', () => {
    const kinds = manifests().map((m) => m.kind).sort();
    assert.deepEqual(kinds, ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'ServiceAccount']);
  });

  test('every document passes a server-side dry run (strict field validation)', async () => {
    for (const m of manifests()) {
      const collection = COLLECTIONS[m.kind];
      assert.ok(collection, `no collection known for ${m.kind}`);
      const r = await apiRequest(server, 'POST', `${collection(m.metadata.namespace ?? 'default')}?dryRun=All&fieldValidation=Strict`, m);
      assert.ok(r.status === 201 || r.status === 200, `${m.kind}/${m.metadata.name}: HTTP ${r.status} ${r.text.slice(0, 400)}`);
    }
  });

  test('the unprivileged variant: the same DaemonSet, its proxy container not privileged and reduced to NET_ADMIN and NET_RAW; it passes a dry run', async () => {
    const base = daemonSet('kube-ipvs.yaml');
    const lean = daemonSet('kube-ipvs-unprivileged.yaml');
    assert.deepEqual(manifests('kube-ipvs-unprivileged.yaml').map((m) => m.kind), ['DaemonSet'], 'it replaces the DaemonSet only');
    const main = lean.spec.template.spec.containers.find((c) => c.name === 'kube-ipvs');
    assert.deepEqual(main?.securityContext, { privileged: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] } });
    assert.deepEqual(lean.spec.template.spec.initContainers[0]?.securityContext, { privileged: true }, 'the init container writes /proc/sys and loads modules');
    assert.match(lean.spec.template.spec.initContainers[0]?.args[0] ?? '', /modprobe -a ip_vs nf_conntrack ip_tables ip6_tables/);
    // Everything else is the default DaemonSet's, so the two cannot drift apart.
    const strip = (ds: typeof base): unknown => {
      const c = structuredClone(ds);
      for (const k of c.spec.template.spec.containers) k.securityContext = {};
      for (const k of c.spec.template.spec.initContainers) k.args = [];
      return c;
    };
    assert.deepEqual(strip(lean), strip(base));
    const r = await apiRequest(server, 'POST', `${COLLECTIONS.DaemonSet?.('kube-system')}?dryRun=All&fieldValidation=Strict`, lean);
    assert.ok(r.status === 201 || r.status === 200, `HTTP ${r.status} ${r.text.slice(0, 400)}`);
  });

  test("the ConfigMap's KubeProxyConfiguration loads as an IPVS-mode config", () => {
    const cm = manifests().find((m) => m.kind === 'ConfigMap');
    const file = Object.values(cm?.data ?? {})[0];
    assert.ok(file, 'the ConfigMap carries a config file');
    const loaded = loadConfig(['--config', '/etc/kube-ipvs/config.conf', '--hostname-override', 'node-a'], { extraFlags: [], hostname: 'node-a', readFile: () => file });
    assert.equal(loaded.config.mode, 'ipvs');
    assert.equal(loaded.config.hostnameOverride, 'node-a');
  });
});
