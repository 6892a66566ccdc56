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

function manifests(): Manifest[] {
  const docs = parseAllDocuments(readFileSync(join(projectRoot(), 'deploy', 'kube-ipvs.yaml'), 'utf8'));
  return docs.map((d) => d.toJSON() as Manifest | null).filter((m): m is Manifest => m !== null);
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

  test("the ConfigMap's KubeProxyConfiguration loads as an IPVS-mode config", () => {
    const cm = manifests().find((m) => m.kind === 'ConfigMap');
    const file = Object.values(cm?.data ?? {})[0];
    assert.ok(file, 'the ConfigMap carries a config file');
    const loaded = loadConfig(['--config', '/etc/kube-ipvs/config.conf', '--hostname-override', 'node-a'], { extraFlags: [], hostname: 'node-a', readFile: () => file });
    assert.equal(loaded.config.mode, 'ipvs');
    assert.equal(loaded.config.hostnameOverride, 'node-a');
  });
});
