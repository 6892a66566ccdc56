// bench/calibrate: two fixed workloads whose CPU cost per unit, measured on two machines (this
// host and the TCG VM of bench/sync.sh), gives how much slower the VM runs each kind of work. The
// VM's figures divided by these factors estimate what the same sync would cost on a real core.
//   js:      one endpoint change of one service in a 1,000-service cluster, drained from the
//            tracker and re-planned (ClusterTracker + Planner, as the sync loop does): pure JS.
//   netlink: NetlinkIpset.apply([del x, add y]) in a 100-entry hash:ip,port set: one netlink
//            round trip with the kernel's work in our sys time (the host has ipset but no IPVS).
// Each: a warm-up, then BATCHES batches of a fixed number of units; the result is the median
// batch's CPU (process.cpuUsage user + sys) per unit.
//   unshare -n npx tsx bench/calibrate.ts         # prints one JSON line (a Calibration)
// The netlink workload creates and destroys a set, so it refuses the host's network namespace
// (only `lo` may be there) unless inside the VM (KUBE_IPVS_VM=1) or with BENCH_ALLOW_HOST_NETNS=1.
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { buildNodeInfo } from '../src/cluster/node.js';
import { IP_FAMILIES } from '../src/model/types.js';
import { ClusterTracker } from '../src/cluster/tracker.js';
import type { IpsetOp } from '../src/dataplane/ipset/backend.js';
import { NetlinkIpset } from '../src/dataplane/ipset/netlink.js';
import type { IpsetSpec } from '../src/model/kernel.js';
import { Planner } from '../src/plan/planner.js';
import { BENCH_NODE, benchConfig, endpointIp, ip4, mixedService, mostlyRemote, syntheticSlice } from './synthetic-cluster.js';

export interface WorkloadResult {
  /** CPU ms per unit of the median batch. */
  readonly ms: number;
  /** CPU ms per unit of every batch, in run order (their spread shows how stable the figure is). */
  readonly batches: readonly number[];
  readonly unitsPerBatch: number;
}

export interface Calibration {
  /** Per update (tracker drain + Planner.update + state()). */
  readonly js: WorkloadResult;
  /** Per NetlinkIpset.apply of one del and one add. */
  readonly netlink: WorkloadResult;
}

const BATCHES = 9;
const JS_SERVICES = 1000;
const JS_ENDPOINTS = 10;
const JS_WARMUP = 3000;
const JS_UNITS = 500;
const NL_ENTRIES = 100;
const NL_WARMUP = 200;
const NL_UNITS = 100;
const CALIBRATION_SET: IpsetSpec = { name: 'KUBE-IPVS-CALIBRATE', type: 'hash:ip,port', family: 'inet', hashSize: 1024, maxElem: 65536, range: '0-65535' };

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/**
 * Warm-up, then BATCHES timed batches; `step` gets a counter that never repeats. The warm-ups are
 * long because in trials the js figure kept falling for about 2,000 updates (JIT tiers, the young
 * generation growing) and netlink's first hundred applies were slower too.
 */
async function measure(warmup: number, units: number, step: (k: number) => void | Promise<void>): Promise<WorkloadResult> {
  let k = 0;
  // Only a promise is awaited, so the js workload stays free of microtask hops.
  const run = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const p = step(k++);
      if (p) await p;
    }
  };
  await run(warmup);
  const batches: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const c = process.cpuUsage();
    await run(units);
    batches.push(cpuMs(c) / units);
  }
  return { ms: median(batches), batches, unitsPerBatch: units };
}

/** The js workload: re-planning one endpoint change, no kernel I/O. */
export function calibrateJs(): Promise<WorkloadResult> {
  const config = benchConfig();
  const node = buildNodeInfo({ name: BENCH_NODE, node: undefined, addresses: ['192.168.0.10'], nodeIPs: ['192.168.0.10'], families: IP_FAMILIES, kernelVersion: '6.1.0' });
  const tracker = new ClusterTracker(BENCH_NODE, () => undefined);
  const addresses = Array.from({ length: JS_SERVICES }, (_, i) => Array.from({ length: JS_ENDPOINTS }, (_, e) => endpointIp(i, e, 0, JS_ENDPOINTS)));
  const slice = (i: number): ReturnType<typeof syntheticSlice> => syntheticSlice(i, (e) => addresses[i]?.[e] ?? '', { endpoints: JS_ENDPOINTS, nodeOf: mostlyRemote });
  for (let i = 0; i < JS_SERVICES; i++) {
    tracker.upsertService(mixedService(i));
    tracker.upsertEndpointSlice(slice(i));
  }
  const planner = new Planner({ node, config });
  const first = tracker.drain();
  planner.update(first.snapshot, first.changed);
  return measure(JS_WARMUP, JS_UNITS, (k) => {
    // Update k replaces one endpoint (the local one or a remote one, alternately) by a fresh address.
    const i = (k * 7919) % JS_SERVICES;
    const current = addresses[i];
    if (current) current[k % 2] = ip4(11, k);
    tracker.upsertEndpointSlice(slice(i));
    const c = tracker.drain();
    planner.update(c.snapshot, c.changed);
    planner.state();
  });
}

/** Whether this process may create and destroy ipsets in its network namespace. */
export function netnsAllowed(): boolean {
  if (process.env['KUBE_IPVS_VM'] === '1' || process.env['BENCH_ALLOW_HOST_NETNS'] === '1') return true;
  // A fresh namespace (unshare -n) has no link but lo.
  const links = readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]?.trim()).filter((l) => l);
  return links.every((l) => l === 'lo');
}

/** The netlink workload: one del + one add per apply, the set staying at NL_ENTRIES entries. */
export async function calibrateNetlink(): Promise<WorkloadResult> {
  if (!netnsAllowed()) throw new Error('the netlink calibration creates an ipset: run it in a private network namespace (unshare -n), or set BENCH_ALLOW_HOST_NETNS=1');
  const name = CALIBRATION_SET.name;
  const entry = (n: number): string => `10.97.${n >> 8}.${n & 255},tcp:80`;
  const nl = await NetlinkIpset.open();
  const must = async (ops: readonly IpsetOp[]): Promise<void> => {
    const r = await nl.apply(ops);
    if (r.error) throw r.error;
  };
  try {
    await must([{ kind: 'destroy', name }, { kind: 'create', spec: CALIBRATION_SET }, ...Array.from({ length: NL_ENTRIES }, (_, n): IpsetOp => ({ kind: 'add', name, entry: entry(n) }))]);
    return await measure(NL_WARMUP, NL_UNITS, (k) => {
      // Entry j moves to j + NL_ENTRIES on one pass over the set, and back on the next.
      const j = k % NL_ENTRIES;
      const forward = Math.floor(k / NL_ENTRIES) % 2 === 0;
      const [gone, come] = forward ? [j, j + NL_ENTRIES] : [j + NL_ENTRIES, j];
      return must([
        { kind: 'del', name, entry: entry(gone) },
        { kind: 'add', name, entry: entry(come) },
      ]);
    });
  } finally {
    await nl.apply([{ kind: 'destroy', name }]);
    nl.close();
  }
}

export async function calibrate(): Promise<Calibration> {
  const js = await calibrateJs();
  const netlink = await calibrateNetlink();
  return { js, netlink };
}

function isWorkloadResult(v: unknown): v is WorkloadResult {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r['ms'] === 'number' && r['ms'] > 0 && typeof r['unitsPerBatch'] === 'number' && Array.isArray(r['batches']) && r['batches'].every((b) => typeof b === 'number');
}

/** Parses the JSON line this script prints; throws when it is not a Calibration. */
export function parseCalibration(text: string): Calibration {
  const v: unknown = JSON.parse(text);
  if (typeof v === 'object' && v !== null && isWorkloadResult((v as Record<string, unknown>)['js']) && isWorkloadResult((v as Record<string, unknown>)['netlink'])) return v as Calibration;
  throw new Error('not a calibration: expected {"js":{"ms":…},"netlink":{"ms":…}} with positive ms');
}

const script = process.argv[1];
if (script !== undefined && import.meta.url === pathToFileURL(realpathSync(script)).href) {
  try {
    console.log(JSON.stringify(await calibrate()));
  } catch (e) {
    console.error(`bench/calibrate: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
}
