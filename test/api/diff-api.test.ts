// `kube-ipvs diff --kubeconfig` against a real kube-apiserver: with no daemon, it lists the cluster
// as `kube-ipvs run` would (the ClusterRole we ship, node IPs from the Node object), plans here and
// compares with the node's kernel (the in-memory one, kept in sync from the same API server):
// 0 when they agree, 1 with the tampered object under its Service, 2 when the list is forbidden.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runDiff } from '../../src/cli/diff.js';
import type { TestApiServer } from '../helpers/apiserver.js';
import { apiRequest, startTestApiServer } from '../helpers/apiserver.js';
import { NODE, service, slice } from '../helpers/world.js';
import { eventually, grant, must, shippedProxyRules, watchedNode } from './support.js';

const SVC = '/api/v1/namespaces/default/services';
const SLICES = '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices';

describe('kube-ipvs diff --kubeconfig against a real kube-apiserver', () => {
  let server: TestApiServer;
  // The API server creates default/kubernetes on its own schedule; the node must have programmed
  // it before the first diff, or a diff run later sees a Service the node has not caught up with.
  let kubernetesVip = '';
  before(async () => {
    server = await startTestApiServer();
    await grant(server, 'kube-ipvs-node', shippedProxyRules());
    await must(apiRequest(server, 'POST', '/api/v1/nodes', { metadata: { name: NODE }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.10' }] } }), 'create node');
    await must(apiRequest(server, 'POST', SVC, service('web', { clusterIP: '10.96.20.10', ports: [{ name: 'http', port: 80 }] })), 'create web');
    await must(apiRequest(server, 'POST', SVC, service('shop', { type: 'NodePort', clusterIP: '10.96.20.20', ports: [{ name: 'http', port: 80, nodePort: 30090 }] })), 'create shop');
    await must(apiRequest(server, 'POST', SLICES, slice('web', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2', node: NODE }, { ip: '10.244.2.3', node: 'node-b' }], { name: 'web-1' })), 'web slice');
    await eventually('default/kubernetes has a ClusterIP', async () => {
      const r = await apiRequest<{ spec?: { clusterIP?: string } }>(server, 'GET', `${SVC}/kubernetes`);
      kubernetesVip = r.status === 200 ? (r.body.spec?.clusterIP ?? '') : '';
      return kubernetesVip !== '';
    });
    await must(apiRequest(server, 'POST', SLICES, slice('shop', [{ name: 'http', port: 8080 }], [{ ip: '10.244.2.4', node: 'node-b' }], { name: 'shop-1' })), 'shop slice');
  });
  after(async () => {
    await server?.stop();
  });

  const run = async (argv: string[], open?: () => Promise<never>) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runDiff(argv, { out: (s) => void out.push(s), err: (s) => void err.push(s), ...(open ? { openDataplane: open } : {}) });
    return { code, out: out.join(''), err: err.join('') };
  };

  test('0 on the node the daemon keeps in sync, 1 after tampering, with the object under its Service', async () => {
    const w = watchedNode(server, 'kube-ipvs-node');
    try {
      await w.source.waitForInitialSync(20_000);
      await w.converge('all three services programmed', (t) => t.includes('-r 10.244.2.3:8080') && t.includes('192.168.0.10:30090') && t.includes(`-A -t ${kubernetesVip}:443 `));
      const open = (async () => ({ ...w.node.dataplane, close: () => undefined })) as unknown as () => Promise<never>;
      const args = ['--kubeconfig', server.kubeconfigFor('kube-ipvs-node'), '--hostname-override', NODE];
      const clean = await run(args, open);
      assert.equal(clean.code, 0, clean.out + clean.err);
      await w.node.ipvs.apply([{ kind: 'deleteDest', vs: { family: 'IPv4', protocol: 'TCP', address: '192.168.0.10', port: 30090, scheduler: 'rr', flags: 0, timeout: 0 }, rs: { address: '10.244.2.4', port: 8080, weight: 1, forward: 'masq' } }]);
      const r = await run(args, open);
      assert.equal(r.code, 1);
      assert.equal(r.out, '### Service default/shop (default/shop:http/TCP)\n# ipvsadm -Sn\n+ -a -t 192.168.0.10:30090 -r 10.244.2.4:8080 -m -w 1\n1 difference (ipvs 1)\n');
    } finally {
      w.close();
    }
  });

  test('a user who may not list EndpointSlices gets 2 and the reason', async () => {
    await grant(server, 'limited', shippedProxyRules().filter((r) => !(r.resources ?? []).includes('endpointslices')));
    const r = await run(['--kubeconfig', server.kubeconfigFor('limited'), '--hostname-override', NODE], (async () => {
      throw new Error('the dataplane is not opened before the cluster is listed');
    }) as unknown as () => Promise<never>);
    assert.equal(r.code, 2);
    assert.match(r.err, /^kube-ipvs: diff: forbidden to list\/watch endpointslices\.discovery\.k8s\.io at .*: grant /);
  });
});
