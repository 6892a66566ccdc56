// Fuzzing the cluster input: thousands of arbitrary and malformed Services, EndpointSlices and
// Nodes per run, through the manifest path (YAML files → ManifestSource → tracker → proxier over
// the fake kernel) and the API path (lists and watch events from an HTTP server on loopback →
// ApiSource → tracker → proxier; objects there keep the schema's field types, as the API server
// guarantees, with arbitrary values). Nothing throws; every fuzzed Service is planned, ignored for
// a reason kube-proxy has (ExternalName, headless, another proxy's), or named in a problem; and
// the well-formed Services beside them keep exactly their kernel state.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import type { V1Node } from '@kubernetes/client-node';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { ApiSource } from '../../src/cluster/api-source.js';
import { loadKubeConfig } from '../../src/cluster/api/kubeconfig.js';
import { ManifestSource } from '../../src/cluster/manifest-source.js';
import { createLogger } from '../../src/observe/log.js';
import type { Problem } from '../../src/cluster/problems.js';
import { Label } from '../../src/model/names.js';
import { nodeEligibility } from '../../src/observe/proxy-health.js';
import { fakeNode } from '../helpers/fake-dataplane.js';
import { NODE, service, slice } from '../helpers/world.js';
import { FUZZ_NS, objectArbitraries } from './arbitrary-objects.js';

const RUNS = Number(process.env.KUBE_IPVS_FUZZ_RUNS ?? 60);
const FUZZ_NAMES = ['f0', 'f1', 'f2', 'f3'];

// The well-formed neighbours: namespace "aaa" sorts before "fuzz", so a fuzzed Service claiming
// the same address:port loses the conflict (first by name wins) and the neighbour's plan stands.
const GOOD = [
  service('web', { clusterIP: '10.96.0.10', externalIPs: ['198.51.100.10'], ports: [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }] }, {}, 'aaa'),
  service('np', { type: 'NodePort', clusterIP: '10.96.0.11', ports: [{ name: 'http', port: 80, nodePort: 30011 }] }, {}, 'aaa'),
  service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.12', externalTrafficPolicy: 'Local', healthCheckNodePort: 32012, loadBalancerSourceRanges: ['203.0.113.0/24'], ports: [{ name: 'http', port: 443, nodePort: 30012 }] }, { status: { loadBalancer: { ingress: [{ ip: '198.51.100.12' }] } } }, 'aaa'),
  slice('web', [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }], [{ ip: '10.244.1.2', node: NODE }, { ip: '10.244.2.2', node: 'node-b' }], { namespace: 'aaa' }),
  slice('np', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.3', node: NODE }], { namespace: 'aaa' }),
  slice('lb', [{ name: 'http', port: 8443 }], [{ ip: '10.244.1.4', node: NODE }], { namespace: 'aaa' }),
];

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function manifestDir(objects: readonly unknown[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-fuzz-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'good.yaml'), GOOD.map((o) => stringify(o)).join('---\n'));
  if (objects.length > 0) writeFileSync(join(dir, 'fuzz.yaml'), objects.map((o) => stringify(o)).join('---\n'));
  return dir;
}


type Baseline = Record<'ipvs' | 'ipset' | 'iptables' | 'netif', Set<string>>;

/** The run's invariants: the neighbours' kernel lines all stand; each fuzzed Service is accounted for. */
function checkRun(fuzz: readonly unknown[], r: { problems: Problem[]; dumps: Record<keyof Baseline, string>; n: { tracker: { current(): { services: ReadonlyMap<string, unknown> } } } }, base: Baseline): void {
  for (const [what, want] of Object.entries(base) as Array<[keyof typeof base, Set<string>]>) {
    const got = lines(r.dumps[what]);
    const lost = [...want].filter((l) => !got.has(l));
    assert.deepEqual(lost, [], `${what}: the neighbours' lines are all still there`);
  }
  // The last object of each name is the one that counts (later documents replace earlier ones).
  const last = new Map<string, Record<string, unknown>>();
  for (const o of fuzz) {
    if (!isRecord(o) || o.kind !== 'Service' || o.apiVersion !== 'v1') continue;
    const md = isRecord(o.metadata) ? o.metadata : {};
    // Not String(): a fuzzed name such as {"toString": null} has no string form and throws.
    last.set(`${typeof md.namespace === 'string' ? md.namespace : 'default'}/${typeof md.name === 'string' ? md.name : JSON.stringify(md.name ?? '')}`, o);
  }
  const planned = r.n.tracker.current().services;
  for (const [key, svc] of last) {
    const md = isRecord(svc.metadata) ? svc.metadata : {};
    if (typeof md.name !== 'string' || md.name === '') {
      assert.ok(r.problems.some((p) => p.kind === 'Service' && p.field === 'metadata.name'), `an unnamed Service is reported: ${JSON.stringify(svc).slice(0, 200)}`);
      continue;
    }
    if (planned.has(key) || ignoredByKubeProxy(svc)) continue;
    assert.ok(
      r.problems.some((p) => p.kind === 'Service' && `${p.namespace}/${p.name}` === key && p.effect === 'skipped'),
      `${key} is neither planned nor named in a problem: ${JSON.stringify(svc).slice(0, 300)}`,
    );
  }
}

const lines = (text: string): Set<string> => new Set(text.split('\n').filter((l) => l !== ''));

/** Syncs a fake node from a manifest directory; returns its kernel dumps and the problems. */
async function syncFrom(objects: readonly unknown[], withNode = false) {
  const problems: Problem[] = [];
  const ref: { source?: ManifestSource } = {};
  const n = fakeNode({ problems: (p) => void problems.push(p), ...(withNode ? { nodeObject: () => ref.source?.node(NODE) } : {}) });
  const source = new ManifestSource([manifestDir(objects)], n.tracker);
  ref.source = source;
  const loaded = source.reload();
  assert.ok(loaded.ok, `the fuzzed manifests load: ${loaded.error}`);
  const outcome = await n.proxier.sync({ full: true });
  return { n, problems, outcome, source, dumps: n.dumps() };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** kube-proxy's reasons to leave a Service alone, read independently of src/cluster/service.ts. */
function ignoredByKubeProxy(svc: Record<string, unknown>): boolean {
  const labels = isRecord(svc.metadata) && isRecord(svc.metadata.labels) ? svc.metadata.labels : {};
  if (Label.SERVICE_PROXY_NAME in labels || Label.HEADLESS in labels) return true;
  const spec = isRecord(svc.spec) ? svc.spec : {};
  if (spec.type === 'ExternalName') return true;
  const ips = Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0 ? spec.clusterIPs : [spec.clusterIP];
  return ips[0] === 'None';
}

describe('fuzzed cluster objects through the manifest path', () => {
  const arbs = objectArbitraries({ typed: false, serviceNames: FUZZ_NAMES });
  const junk = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom({ kind: 'List', apiVersion: 'v1', items: 'x' }, { kind: 'Service' }, { kind: 'Service', apiVersion: 'v1' }));
  let baseline: Baseline | undefined;

  test(`${RUNS} runs of up to 60 objects: nothing throws, bad Services are named, the neighbours' kernel state stands`, async () => {
    const b = await syncFrom([]);
    assert.ok(b.outcome.ok, 'the neighbours alone sync');
    baseline = { ipvs: lines(b.dumps.ipvs), ipset: lines(b.dumps.ipset), iptables: lines(b.dumps.iptables), netif: lines(b.dumps.netif) };
    let objects = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof({ weight: 3, arbitrary: arbs.service }, { weight: 3, arbitrary: arbs.slice }, { weight: 1, arbitrary: junk }), { minLength: 20, maxLength: 60 }), async (fuzz) => {
        objects += fuzz.length;
        const r = await syncFrom(fuzz);
        checkRun(fuzz, r, baseline as Baseline);
      }),
      { numRuns: RUNS },
    );
    // Said so the test log shows the volume.
    console.log(`fuzz: ${objects} objects in ${RUNS} runs`);
  });

  test('fuzzed Nodes: the sync and /healthz eligibility never throw', async () => {
    await fc.assert(
      fc.asyncProperty(arbs.node(NODE), async (nodeObj) => {
        const r = await syncFrom([nodeObj], true);
        assert.equal(typeof r.outcome.ok, 'boolean');
        const eligible = nodeEligibility(() => r.source.node(NODE) as V1Node | undefined, { required: true });
        assert.equal(typeof eligible(), 'boolean');
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzzed cluster objects through the API path', () => {
  const arbs = objectArbitraries({ typed: true, serviceNames: FUZZ_NAMES });
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });

  /** Every object the API would hold has a name; each kind's list and an open, silent watch. */
  async function apiServer(objects: { services: unknown[]; slices: unknown[]; nodes: unknown[] }): Promise<string> {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.searchParams.get('watch')) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        return; // held open until the source stops
      }
      const items = url.pathname.endsWith('/services') ? objects.services : url.pathname.endsWith('/endpointslices') ? objects.slices : objects.nodes;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items }));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  const named = (objs: readonly unknown[], prefix: string): Record<string, unknown>[] =>
    objs.map((o, i) => {
      const r = isRecord(o) ? o : {};
      const md = isRecord(r.metadata) ? r.metadata : {};
      return { ...r, metadata: { ...md, namespace: FUZZ_NS, name: typeof md.name === 'string' && md.name !== '' ? md.name : `${prefix}-${i}`, resourceVersion: '1' } };
    });

  test(`${Math.ceil(RUNS / 3)} runs of up to 90 typed objects from an API server: the same invariants`, async () => {
    const goodServices = GOOD.filter((o) => o.kind === 'Service');
    const goodSlices = GOOD.filter((o) => o.kind === 'EndpointSlice');
    const base = await syncFrom([]);
    const baseline: Baseline = { ipvs: lines(base.dumps.ipvs), ipset: lines(base.dumps.ipset), iptables: lines(base.dumps.iptables), netif: lines(base.dumps.netif) };
    let objects = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(arbs.service, { minLength: 10, maxLength: 40 }), fc.array(arbs.slice, { minLength: 10, maxLength: 40 }), fc.option(arbs.node(NODE), { nil: undefined }), async (svcs, sls, nodeObj) => {
        // Names are unique per kind in the API; keep the last of each, as the manifest path does.
        const services = [...new Map(named(svcs, 's').map((o) => [String((o.metadata as { name: string }).name), o])).values()];
        const slices = [...new Map(named(sls, 'e').map((o) => [String((o.metadata as { name: string }).name), o])).values()];
        const nodes = nodeObj === undefined ? [] : named([nodeObj], NODE).map((o) => ({ ...o, metadata: { ...(o.metadata as object), name: NODE, namespace: undefined } }));
        objects += services.length + slices.length + nodes.length;
        const url = await apiServer({ services: [...goodServices, ...services], slices: [...goodSlices, ...slices], nodes });
        const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-fuzz-kc-'));
        dirs.push(dir);
        writeFileSync(join(dir, 'kubeconfig'), `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${url}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`);
        const problems: Problem[] = [];
        const ref: { source?: ApiSource } = {};
        // The node only when it is the only fuzz: a Node legitimately changes every Service's plan.
        const n = fakeNode({ problems: (p) => void problems.push(p), nodeObject: () => ref.source?.node() });
        const source = new ApiSource({ connection: loadKubeConfig({ kubeconfig: join(dir, 'kubeconfig'), master: '' }), tracker: n.tracker, nodeName: NODE, log: createLogger('text', () => undefined), onChange: () => undefined });
        ref.source = source;
        source.start();
        try {
          await source.waitForInitialSync(20_000);
          const outcome = await n.proxier.sync({ full: true });
          assert.equal(typeof outcome.ok, 'boolean');
          assert.equal(typeof nodeEligibility(() => source.node(), { required: true })(), 'boolean');
          const r = { problems, dumps: n.dumps(), n };
          if (nodes.length === 0) checkRun(services, r, baseline);
        } finally {
          source.close();
        }
      }),
      { numRuns: Math.ceil(RUNS / 3) },
    );
    console.log(`fuzz (API): ${objects} objects in ${Math.ceil(RUNS / 3)} runs`);
  });
});
