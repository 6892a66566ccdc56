// bench/api: event-to-kernel latency through a real kube-apiserver at 10,000 services. The API
// source lists and watches them; the sync loop (bounded-frequency runner, kube-proxy's default
// --ipvs-min-sync-period 1s) programs the in-memory kernel. A worker thread then writes a burst of
// EndpointSlice changes stamped with endpoints.kubernetes.io/last-change-trigger-time, and we
// print the p50/p99 of kube-proxy's network_programming_duration (stamp → synced) and memory.
// The writer runs on its own thread so its HTTP work does not slow the proxy's event loop.
// Run: npm run bench:api (BENCH_SERVICES, BENCH_BURST to change the sizes). Prints; asserts nothing.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { ApiSource } from '../src/cluster/api-source.js';
import { loadKubeConfig } from '../src/cluster/api/kubeconfig.js';
import { TRIGGER_TIME_ANNOTATION } from '../src/cluster/tracker.js';
import { createLogger } from '../src/observe/log.js';
import { realClock } from '../src/model/clock.js';
import { BoundedFrequencyRunner } from '../src/sync/runner.js';
import type { TestApiServer } from '../test/helpers/apiserver.js';
import { apiRequest, startTestApiServer } from '../test/helpers/apiserver.js';
import { fakeNode } from '../test/helpers/fake-dataplane.js';
import { grant, shippedProxyRules } from '../test/api/support.js';
import { config as makeConfig, NODE } from '../test/helpers/world.js';
import { endpointIp, ip4, syntheticSlice } from './synthetic-cluster.js';

const SERVICES = Number(process.env['BENCH_SERVICES'] ?? 10000);
const BURST = Number(process.env['BENCH_BURST'] ?? 500);
const ENDPOINTS = 10;
const NAMESPACES = 20;

function serviceFor(i: number): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i}`, namespace: `ns-${i % NAMESPACES}` },
    spec: { clusterIP: ip4(10, 0x600000 + 0x100 + i), ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
  };
}

function sliceFor(i: number, generation: number, stamp?: string): V1EndpointSlice {
  return syntheticSlice(i, (e) => endpointIp(i, e, generation, ENDPOINTS), { endpoints: ENDPOINTS, namespaces: NAMESPACES, ...(stamp ? { annotations: { [TRIGGER_TIME_ANNOTATION]: stamp } } : {}) });
}

/** Runs `jobs` with at most `width` in flight. */
async function pool(jobs: Array<() => Promise<void>>, width: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) await (jobs[next++] as () => Promise<void>)();
  }));
}

async function must(server: TestApiServer, method: string, path: string, body: unknown): Promise<void> {
  const r = await apiRequest(server, method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text.slice(0, 200)}`);
}

// ---- the writer thread --------------------------------------------------------------------------
interface WriterJob {
  readonly server: Pick<TestApiServer, 'url' | 'caFile'> & { token: string };
  readonly what: 'populate' | 'burst';
}

async function writer(job: WriterJob): Promise<void> {
  const server = { ...job.server, tokenFor: () => job.server.token } as unknown as TestApiServer;
  if (job.what === 'populate') {
    await pool(Array.from({ length: NAMESPACES }, (_, n) => () => must(server, 'POST', '/api/v1/namespaces', { metadata: { name: `ns-${n}` } })), 8);
    await pool(Array.from({ length: SERVICES }, (_, i) => () => must(server, 'POST', `/api/v1/namespaces/ns-${i % NAMESPACES}/services`, serviceFor(i))), 32);
    await pool(Array.from({ length: SERVICES }, (_, i) => () => must(server, 'POST', `/apis/discovery.k8s.io/v1/namespaces/ns-${i % NAMESPACES}/endpointslices`, sliceFor(i, 0))), 32);
  } else {
    const targets = Array.from({ length: BURST }, (_, k) => (k * 7919) % SERVICES);
    await pool(targets.map((i) => () => must(server, 'PUT', `/apis/discovery.k8s.io/v1/namespaces/ns-${i % NAMESPACES}/endpointslices/svc-${i}-abc`, sliceFor(i, 1, new Date().toISOString()))), 16);
  }
}

function runWriter(job: WriterJob): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: job });
    w.once('message', (m: { error?: string }) => (m.error ? reject(new Error(m.error)) : resolve()));
    w.once('error', reject);
  });
}

// ---- the proxy (main thread) --------------------------------------------------------------------
function pct(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const mb = (b: number): string => `${(b / 1048576).toFixed(0)} MB`;
  const t0 = Date.now();
  const server = await startTestApiServer();
  try {
    await grant(server, 'kube-ipvs-node', shippedProxyRules());
    const job = { url: server.url, caFile: server.caFile, token: server.tokenFor('admin') };
    const tPop = Date.now();
    await runWriter({ server: job, what: 'populate' });
    const populateS = (Date.now() - tPop) / 1000;

    const config = makeConfig();
    const node = fakeNode({ config });
    const latencies: number[] = [];
    let syncs = 0;
    let lastSyncMs = 0;
    const runner = new BoundedFrequencyRunner({
      minIntervalMs: config.ipvs.minSyncPeriodMs,
      maxIntervalMs: config.ipvs.syncPeriodMs,
      retryIntervalMs: 5000,
      clock: realClock,
      run: async () => {
        const r = await node.proxier.sync();
        const now = Date.now();
        for (const t of r.triggerTimes.values()) latencies.push((now - t) / 1000);
        syncs++;
        lastSyncMs = r.durationMs;
        return r.ok;
      },
    });
    const log = createLogger('text', (l) => void process.stderr.write(l));
    const source = new ApiSource({ connection: loadKubeConfig({ kubeconfig: server.kubeconfigFor('kube-ipvs-node'), master: '' }), tracker: node.tracker, nodeName: NODE, log, onChange: () => runner.request() });
    const tList = Date.now();
    source.start();
    await source.waitForInitialSync(300_000);
    const listS = (Date.now() - tList) / 1000;
    const tFirst = Date.now();
    runner.start();
    while (syncs === 0) await new Promise((r) => setTimeout(r, 20));
    const firstSyncS = (Date.now() - tFirst) / 1000;
    const vs = node.ipvs.dump().split('\n').filter((l) => l.startsWith('-A ')).length;
    const rssAfterSync = process.memoryUsage().rss;

    const before = latencies.length;
    const tBurst = Date.now();
    await runWriter({ server: job, what: 'burst' });
    const burstWriteS = (Date.now() - tBurst) / 1000;
    const deadline = Date.now() + 120_000;
    while (latencies.length - before < BURST && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const burst = latencies.slice(before).sort((a, b) => a - b);
    const mem = process.memoryUsage();
    runner.stop();
    source.close();

    console.log(`bench/api: ${SERVICES} services x ${ENDPOINTS} endpoints through kube-apiserver v1.36.3 (node ${process.version}; proxy and writer on 2 cores with the API server and etcd)`);
    console.log(`  populate the API server (writer thread, 32 in flight): ${populateS.toFixed(1)} s`);
    console.log(`  initial list of services + endpointslices + node:     ${listS.toFixed(1)} s`);
    console.log(`  first sync (fake kernel): ${firstSyncS.toFixed(1)} s -> ${vs} virtual servers`);
    console.log(`  burst: ${BURST} EndpointSlice updates written in ${burstWriteS.toFixed(1)} s (16 in flight), ${burst.length} programmed over ${syncs - 1} syncs (min sync period ${config.ipvs.minSyncPeriodMs / 1000} s; last sync ${lastSyncMs.toFixed(0)} ms)`);
    console.log(`  network_programming_duration: p50 ${pct(burst, 0.5).toFixed(3)} s, p99 ${pct(burst, 0.99).toFixed(3)} s, max ${pct(burst, 1).toFixed(3)} s`);
    console.log(`  memory: RSS ${mb(rssAfterSync)} after the first sync, ${mb(mem.rss)} after the burst (heap used ${mb(mem.heapUsed)})`);
    console.log(`  total bench time: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  } finally {
    await server.stop();
  }
}

if (isMainThread) {
  await main();
} else {
  try {
    await writer(workerData as WriterJob);
    parentPort?.postMessage({});
  } catch (e) {
    parentPort?.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
}
