// bench/plan: planner speed and memory at 10,000 services x 10 endpoints (a mix of ClusterIP,
// NodePort and LoadBalancer). Prints figures; asserts nothing. Run: npm run bench:plan
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { buildNodeInfo } from '../src/cluster/node.js';
import { IP_FAMILIES } from '../src/model/types.js';
import { ClusterTracker } from '../src/cluster/tracker.js';
import { Planner } from '../src/plan/planner.js';
import { BENCH_NODE, benchConfig, endpointIp, mixedService, mostlyRemote, syntheticSlice } from './synthetic-cluster.js';

const SERVICES = Number(process.env['BENCH_SERVICES'] ?? 10000);
const ENDPOINTS = Number(process.env['BENCH_ENDPOINTS'] ?? 10);
const NODE = BENCH_NODE;

function makeCluster(): { services: V1Service[]; slices: V1EndpointSlice[] } {
  const services: V1Service[] = [];
  const slices: V1EndpointSlice[] = [];
  for (let i = 0; i < SERVICES; i++) {
    services.push(mixedService(i));
    slices.push(sliceFor(i, 0));
  }
  return { services, slices };
}

function sliceFor(i: number, generation: number): V1EndpointSlice {
  return syntheticSlice(i, (e) => endpointIp(i, e, generation, ENDPOINTS), { endpoints: ENDPOINTS, nodeOf: mostlyRemote });
}

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function main(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  const config = benchConfig();
  const node = buildNodeInfo({ name: NODE, node: undefined, addresses: ['192.168.0.10', '10.0.0.10'], nodeIPs: ['192.168.0.10'], families: IP_FAMILIES, kernelVersion: '6.1.0' });
  const { services, slices } = makeCluster();
  gc?.();
  const rssBefore = process.memoryUsage().rss;

  const t0 = process.hrtime.bigint();
  const tracker = new ClusterTracker(NODE, () => {});
  for (const s of services) tracker.upsertService(s);
  for (const s of slices) tracker.upsertEndpointSlice(s);
  const { snapshot, changed } = tracker.drain();
  const tIngest = ms(t0);
  const t1 = process.hrtime.bigint();
  const planner = new Planner({ node, config });
  planner.update(snapshot, changed);
  const state = planner.state();
  const tPlan = ms(t1);
  let vs = 0;
  let rs = 0;
  for (const f of state.families) for (const spec of f.virtualServers.values()) { vs++; rs += spec.realServers.length; }
  const rssPeak = process.memoryUsage().rss;

  // One endpoint change: a slice update, drained and re-planned, as the sync loop would.
  const rounds = 200;
  const samples: number[] = [];
  for (let r = 1; r <= rounds; r++) {
    const i = (r * 7919) % SERVICES;
    const s = process.hrtime.bigint();
    tracker.upsertEndpointSlice(sliceFor(i, r));
    const c = tracker.drain();
    planner.update(c.snapshot, c.changed);
    planner.state();
    samples.push(ms(s));
  }
  samples.sort((a, b) => a - b);
  const p = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;

  const mb = (b: number): string => `${(b / 1048576).toFixed(0)} MB`;
  console.log(`bench/plan: ${SERVICES} services x ${ENDPOINTS} endpoints -> ${vs} virtual servers, ${rs} real servers (node ${process.version}, ${process.arch})`);
  console.log(`  ingest (tracker, validate, merge slices): ${tIngest.toFixed(0)} ms`);
  console.log(`  full plan:                               ${tPlan.toFixed(0)} ms   (target < 300 ms)`);
  console.log(`  RSS: ${mb(rssBefore)} with the objects loaded, ${mb(rssPeak)} after planning   (target < 200 MB)`);
  console.log(`  one endpoint change, re-plan: p50 ${p(0.5).toFixed(3)} ms, p99 ${p(0.99).toFixed(3)} ms over ${rounds} changes   (target < 1 ms)`);
}

main();
