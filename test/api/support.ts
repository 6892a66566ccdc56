// Shared pieces of the API-server tests: RBAC grants, polling until a condition holds, and a
// node whose plan follows an ApiSource.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { V1PolicyRule } from '@kubernetes/client-node';
import { ApiSource } from '../../src/cluster/api-source.js';
import { loadKubeConfig } from '../../src/cluster/api/kubeconfig.js';
import type { Logger } from '../../src/observe/log.js';
import { createLogger } from '../../src/observe/log.js';
import type { TestApiServer } from '../helpers/apiserver.js';
import { apiRequest } from '../helpers/apiserver.js';
import type { FakeNode } from '../helpers/fake-dataplane.js';
import { fakeNode } from '../helpers/fake-dataplane.js';
import { NODE } from '../helpers/world.js';

/** The project root (tests run from test/ under tsx and from dist/test/ once built). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('/dist')) dir = dirname(dir);
  return dir;
}

/** The ClusterRole we ship (deploy/kube-ipvs.yaml): tests grant exactly what operators grant. */
export function shippedProxyRules(): V1PolicyRule[] {
  const docs = parseAllDocuments(readFileSync(join(projectRoot(), 'deploy', 'kube-ipvs.yaml'), 'utf8'));
  for (const d of docs) {
    const o = d.toJSON() as { kind?: string; rules?: V1PolicyRule[] } | null;
    if (o?.kind === 'ClusterRole' && o.rules) return o.rules;
  }
  throw new Error('deploy/kube-ipvs.yaml has no ClusterRole');
}

export async function must<T>(p: Promise<{ status: number; body: T; text: string }>, what: string): Promise<T> {
  const r = await p;
  if (r.status < 200 || r.status >= 300) throw new Error(`${what}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
  return r.body;
}

/** Binds `rules` to a token user through a ClusterRole named after it. */
export async function grant(server: TestApiServer, user: string, rules: V1PolicyRule[]): Promise<void> {
  const name = `test-${user}`;
  await apiRequest(server, 'DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterroles/${name}`);
  await apiRequest(server, 'DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${name}`);
  await must(apiRequest(server, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { metadata: { name }, rules }), 'create clusterrole');
  await must(
    apiRequest(server, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    }),
    'create clusterrolebinding',
  );
}

export async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface WatchedNode {
  readonly node: FakeNode;
  readonly source: ApiSource;
  readonly logs: string[];
  readonly log: Logger;
  /** Syncs the fake kernel until its `ipvsadm -Sn` text satisfies `check`. */
  converge(what: string, check: (ipvs: string) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** A fake node whose cluster source is the API server, as `user`. */
export function watchedNode(server: TestApiServer, user: string, opts: { backoff?: { initialMs: number; maxMs: number } } = {}): WatchedNode {
  const logs: string[] = [];
  const log = createLogger('text', (l) => void logs.push(l));
  const connection = loadKubeConfig({ kubeconfig: server.kubeconfigFor(user), master: '' });
  const ref: { source?: ApiSource } = {};
  const node = fakeNode({ nodeObject: () => ref.source?.node() });
  const source = new ApiSource({ connection, tracker: node.tracker, nodeName: NODE, log, onChange: () => undefined, ...(opts.backoff ? { backoff: opts.backoff } : {}) });
  ref.source = source;
  source.start();
  return {
    node,
    source,
    logs,
    log,
    async converge(what, check, timeoutMs) {
      await eventually(
        what,
        async () => {
          await node.proxier.sync();
          return check(node.ipvs.dump());
        },
        timeoutMs,
      );
    },
    close: () => source.close(),
  };
}
