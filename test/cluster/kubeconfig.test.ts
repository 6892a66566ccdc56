// Finding the API server: --kubeconfig, --master, the pod's service account; every failure says
// which file or setting and what to do; kubeadm's tokenFile users authenticate with the file;
// certificates and CAs from files (relative to the kubeconfig) or inline data; exec credential
// plugins through the client library.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestOptions } from 'node:https';
import { KubeConfigError, loadKubeConfig, serverOf } from '../../src/cluster/api/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));

function kubeconfig(user: Record<string, unknown>, cluster: Record<string, unknown> = { 'insecure-skip-tls-verify': true }): string {
  const path = join(dir, `kc-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: 'https://10.0.0.1:6443', ...cluster } }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    }),
  );
  return path;
}

async function requestOptions(path: string): Promise<RequestOptions> {
  return loadKubeConfig({ kubeconfig: path, master: '' }).requestOptions();
}

async function authHeader(path: string): Promise<unknown> {
  return ((await requestOptions(path)).headers as Record<string, unknown>).Authorization;
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

  test('a token file is read again once it may have rotated (client-go: every minute)', async () => {
    const tokenPath = join(dir, 'rotating');
    writeFileSync(tokenPath, 'first\n');
    const c = loadKubeConfig({ kubeconfig: kubeconfig({ tokenFile: tokenPath }), master: '' });
    const auth = async (): Promise<unknown> => ((await c.requestOptions()).headers as Record<string, unknown>).Authorization;
    assert.equal(await auth(), 'Bearer first');
    writeFileSync(tokenPath, 'second\n');
    assert.equal(await auth(), 'Bearer first', 'within the minute the token read is kept');
  });

  test('CA, client certificate and key from files relative to the kubeconfig, or from inline data', async () => {
    const sub = mkdtempSync(join(dir, 'certs-'));
    writeFileSync(join(sub, 'ca.crt'), 'CA PEM');
    writeFileSync(join(sub, 'client.crt'), 'CERT PEM');
    writeFileSync(join(sub, 'client.key'), 'KEY PEM');
    const path = join(sub, 'config');
    writeFileSync(
      path,
      JSON.stringify({
        clusters: [{ name: 'c', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority': 'ca.crt', 'tls-server-name': 'api.internal' } }],
        users: [{ name: 'u', user: { 'client-certificate': 'client.crt', 'client-key': join(sub, 'client.key') } }],
        contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'ctx',
      }),
    );
    const o = await requestOptions(path);
    assert.equal(String(o.ca), 'CA PEM');
    assert.equal(String(o.cert), 'CERT PEM');
    assert.equal(String(o.key), 'KEY PEM');
    assert.equal(o.servername, 'api.internal');
    assert.equal(o.rejectUnauthorized, undefined, 'the server certificate is verified');

    const inline = await requestOptions(
      kubeconfig({ 'client-certificate-data': Buffer.from('CERT DATA').toString('base64'), 'client-key-data': Buffer.from('KEY DATA').toString('base64') }, { 'certificate-authority-data': Buffer.from('CA DATA').toString('base64') }),
    );
    assert.deepEqual([String(inline.ca), String(inline.cert), String(inline.key)], ['CA DATA', 'CERT DATA', 'KEY DATA']);
    assert.equal((await requestOptions(kubeconfig({ token: 't' }))).rejectUnauthorized, false, 'insecure-skip-tls-verify');
  });

  test('a certificate file that cannot be read is named at start-up', () => {
    assert.throws(() => loadKubeConfig({ kubeconfig: kubeconfig({ token: 't' }, { 'certificate-authority': 'missing-ca.crt' }), master: '' }), (e: unknown) => e instanceof KubeConfigError && /certificate-authority .*missing-ca\.crt is not readable/.test(e.message));
  });

  test('basic credentials become an Authorization: Basic header', async () => {
    assert.equal((await requestOptions(kubeconfig({ username: 'admin', password: 'secret' }))).auth, 'admin:secret');
  });

  test('an exec credential plugin is run through the client library and its token sent', async () => {
    const plugin = join(dir, 'plugin.mjs');
    writeFileSync(plugin, `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-plugin' } }));\n`);
    chmodSync(plugin, 0o755);
    const path = kubeconfig({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [plugin], interactiveMode: 'Never' } });
    assert.equal(await authHeader(path), 'Bearer from-plugin');
  });
});
