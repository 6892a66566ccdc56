// Finding the API server: --kubeconfig, --master, the pod's service account; every failure says
// which file or setting and what to do; kubeadm's tokenFile users authenticate with the file.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestOptions } from 'node:https';
import { KubeConfigError, loadKubeConfig, serverOf } from '../../src/cluster/api/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));

function kubeconfig(user: Record<string, unknown>): string {
  const path = join(dir, `kc-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: 'https://10.0.0.1:6443', 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    }),
  );
  return path;
}

async function authHeader(path: string): Promise<unknown> {
  const kc = loadKubeConfig({ kubeconfig: path, master: '' });
  const opts: RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(opts);
  return (opts.headers as Record<string, unknown>).Authorization;
}

describe('loadKubeConfig', () => {
  test('a missing kubeconfig names the file and the alternatives', () => {
    assert.throws(() => loadKubeConfig({ kubeconfig: '/nonexistent/kc', master: '' }), (e: unknown) => e instanceof KubeConfigError && /--kubeconfig \/nonexistent\/kc: no such file.*--manifests/.test(e.message));
  });

  test('a file that is not a kubeconfig says so', () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'clusters: 7\n');
    assert.throws(() => loadKubeConfig({ kubeconfig: path, master: '' }), /not a valid kubeconfig|names no cluster/);
  });

  test('nothing given outside a pod: say how to point at a server', () => {
    assert.throws(() => loadKubeConfig({ kubeconfig: '', master: '', env: {} }), /no API server given: use --kubeconfig FILE or --master URL.*--manifests/);
  });

  test('in a pod: the service account token and CA, at KUBERNETES_SERVICE_HOST', () => {
    const root = mkdtempSync(join(tmpdir(), 'sa-'));
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'pod-token');
    writeFileSync(join(sa, 'ca.crt'), '');
    const kc = loadKubeConfig({ kubeconfig: '', master: '', env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountPrefix: root });
    assert.equal(serverOf(kc), 'https://[fd00::1]:443');
    assert.throws(
      () => loadKubeConfig({ kubeconfig: '', master: '', env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountPrefix: join(root, 'nothing') }),
      /token is not readable; mount the service account token/,
    );
  });

  test('--master overrides the kubeconfig server, as in kube-proxy', () => {
    const kc = loadKubeConfig({ kubeconfig: kubeconfig({ token: 't' }), master: 'https://192.0.2.9:6443' });
    assert.equal(serverOf(kc), 'https://192.0.2.9:6443');
  });

  test("kubeadm's tokenFile user sends the file's token, re-read by the token-file provider", async () => {
    const tokenPath = join(dir, 'token');
    writeFileSync(tokenPath, 'rotating-token');
    assert.equal(await authHeader(kubeconfig({ tokenFile: tokenPath })), 'Bearer rotating-token');
    assert.equal(await authHeader(kubeconfig({ token: 'inline' })), 'Bearer inline');
  });
});
