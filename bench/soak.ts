// The soak: hours of compressed churn through the daemon's own sync loop (startSyncLoop, the
// bounded-frequency runner, run's reportingSync and observability) over the fake kernel, on an
// injected clock. 1,000 Services; every simulated second three of them change endpoints, every
// ten seconds one is deleted or comes back, and one real server a second gets connections, so
// removed endpoints drain (up to a 5 min drain timeout); 10 % of kernel writes fail (ipset, IPVS,
// iptables);
// every 90 s the state of a Service that never churns is tampered with (a virtual server
// deleted, an ipset entry deleted, the INPUT jump deleted, a VIP unbound, or all of IPVS
// flushed). Samples heap (after a GC with --expose-gc), RSS, external memory, open handles, timers and drain
// records; at the end, with faults off, the kernel must equal the plan.
//
//   npm run soak                       4 simulated hours (prints figures; exits 1 if a check fails)
//   npm run soak -- --minutes 30       shorter; --services, --seed, --fault-rate too
//   node --expose-gc dist/bench/soak.js --short    the CI version (10 simulated minutes)
//   --inject-leak-kb N                 keeps N KB of Buffer per slice change: the memory checks must fail
//
// Prints one line per sample and the checks; ends with "soak: 1 passed, 0 failed" or the reverse.
import { parseArgs } from 'node:util';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { startSyncLoop } from '../src/cli/daemon.js';
import type { DaemonSource } from '../src/cli/daemon.js';
import { startObservability } from '../src/cli/observability.js';
import { reportingSync } from '../src/cli/run.js';
import { loadConfig } from '../src/config/load.js';
import type { ProxyConfig } from '../src/config/types.js';
import { DataplaneError } from '../src/dataplane/errors.js';
import { seededRandom } from '../src/dataplane/prng.js';
import { createLogger } from '../src/observe/log.js';
import { renderIpsets, renderIpvs } from '../src/plan/render.js';
import type { DesiredState } from '../src/plan/desired.js';
import { fakeNode } from '../test/helpers/fake-dataplane.js';
import type { FakeNode } from '../test/helpers/fake-dataplane.js';
import { BENCH_NODE, clusterIp, endpointIp, mixedService } from './synthetic-cluster.js';

const SYNC_PERIOD_MS = 30_000;
const MIN_SYNC_PERIOD_MS = 1_000;
/** Real servers that keep connections drain until this timeout (run's --drain-timeout). */
const DRAIN_TIMEOUT_MS = 5 * 60_000;
const TAMPER_EVERY_MS = 90_000;
/** Real time a sample waits after its collections before it reads RSS (see sample). */
const UNMAP_WAIT_MS = 200;
const ENDPOINTS = 4;
/** Services 0..STABLE-1 never churn: tampering targets them, so its repair can be checked. */
const STABLE = 100;
const INPUT_JUMP = '-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER';

export interface SoakOptions {
  readonly minutes: number;
  readonly services: number;
  readonly faultRate: number;
  readonly seed: number;
  /** Keeps this many KB of Buffer per slice change: proves the memory checks catch a native leak. */
  readonly leakKbPerChange?: number;
  readonly log?: (line: string) => void;
}

export interface Sample {
  readonly minute: number;
  readonly heapMB: number;
  readonly rssMB: number;
  /** Memory outside V8's heap that Node accounts for (Buffers, ArrayBuffers): where a native leak of ours would sit. */
  readonly externalMB: number;
  readonly handles: number;
  readonly timers: number;
  readonly draining: number;
  readonly syncs: number;
  readonly failedSyncs: number;
}

export interface SoakResult {
  readonly samples: readonly Sample[];
  readonly checks: ReadonlyArray<{ readonly what: string; readonly ok: boolean; readonly detail: string }>;
  readonly figures: Readonly<Record<string, number | string>>;
  readonly ok: boolean;
}

function soakConfig(): ProxyConfig {
  const c = loadConfig(['--hostname-override', BENCH_NODE, `--ipvs-sync-period=${SYNC_PERIOD_MS / 1000}s`, `--ipvs-min-sync-period=${MIN_SYNC_PERIOD_MS / 1000}s`], { extraFlags: [], hostname: BENCH_NODE, readFile: () => '' }).config;
  return { ...c, healthzBindAddress: '', metricsBindAddress: '' };
}

/** Service i's slice at a generation: a varying subset of its endpoints, some not ready, half local. */
function sliceAt(i: number, generation: number, rnd: () => number): V1EndpointSlice {
  const endpoints = [];
  for (let e = 0; e < ENDPOINTS; e++) {
    if (generation > 0 && rnd() < 0.3) continue;
    endpoints.push({ addresses: [endpointIp(i, e, generation % 3, ENDPOINTS)], nodeName: e % 2 === 0 ? BENCH_NODE : `node-${e}`, conditions: { ready: generation === 0 || rnd() < 0.9 } });
  }
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `svc-${i}-abc`, namespace: `ns-${i % 50}`, labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints,
  };
}

const mb = (bytes: number): number => Math.round((bytes / (1024 * 1024)) * 10) / 10;
const gc = (globalThis as { gc?: () => void }).gc;

async function sample(minute: number, n: FakeNode, counts: { syncs: number; failed: number }): Promise<Sample> {
  gc?.();
  gc?.();
  // V8 hands the pages a collection freed back to the system from a background task: read RSS once
  // it has (sampled at once, RSS swung by 40 MB between samples, whichever happened to catch it).
  await new Promise((resolve) => setTimeout(resolve, UNMAP_WAIT_MS));
  const resources = process.getActiveResourcesInfo();
  const m = process.memoryUsage();
  return {
    minute,
    heapMB: mb(m.heapUsed),
    rssMB: mb(m.rss),
    externalMB: mb(m.external),
    handles: resources.filter((r) => r !== 'Timeout' && r !== 'Immediate').length,
    timers: resources.filter((r) => r === 'Timeout').length + n.clock.pendingTimers,
    draining: n.proxier.drainingServers().length,
    syncs: counts.syncs,
    failedSyncs: counts.failed,
  };
}

/** The kernel equals the plan: IPVS exactly, ipset entries both ways, bound VIPs both ways, the INPUT jump there. */
function kernelEqualsPlan(n: FakeNode, state: DesiredState): string[] {
  const out: string[] = [];
  if (n.ipvs.dump() !== renderIpvs(state)) out.push('ipvs differs from the plan');
  const adds = (text: string): Set<string> => new Set(text.split('\n').filter((l) => l.startsWith('add ')));
  const want = adds(renderIpsets(state));
  const have = adds(n.ipset.dump());
  const missing = [...want].filter((l) => !have.has(l));
  const extra = [...have].filter((l) => !want.has(l));
  if (missing.length + extra.length > 0) out.push(`ipset: ${missing.length} planned entries missing, ${extra.length} unplanned (${[...missing, ...extra].slice(0, 3).join('; ')})`);
  const bound = new Set(n.netif.dump().split('\n').flatMap((l) => (l.includes('kube-ipvs0') ? [...l.matchAll(/inet6? ([0-9a-f.:]+)\//g)].map((m) => m[1] as string) : [])));
  const planned = new Set(state.families.flatMap((f) => [...f.boundAddresses]));
  const unbound = [...planned].filter((a) => !bound.has(a));
  const stray = [...bound].filter((a) => !planned.has(a));
  if (unbound.length + stray.length > 0) out.push(`kube-ipvs0: ${unbound.length} planned addresses unbound, ${stray.length} unplanned bound`);
  if (!n.iptables.dump().includes(INPUT_JUMP)) out.push('the INPUT jump is missing');
  return out;
}

/** At most this many clients hold connections at a time. */
const HELD = 120;

interface Held {
  readonly vs: string;
  readonly rs: string;
}

/** Sets a real server's active connections, if it still exists. */
function setConns(n: FakeNode, h: Held, active: number): void {
  const ref = { family: 'IPv4', protocol: 'TCP', address: h.vs, port: 80 } as const;
  try {
    n.ipvs.setConnections(ref, { address: h.rs, port: 8080 }, { active, inactive: active > 0 ? 1 : 0, persist: 0 });
  } catch {
    // Gone meanwhile (drained to its end, or its Service deleted): nothing holds it.
  }
}

type Tamper = { readonly at: number; readonly what: string; readonly intact: () => boolean };

async function tamper(n: FakeNode, i: number, kind: number): Promise<Tamper | undefined> {
  const ip = clusterIp(i);
  const vs = { family: 'IPv4', protocol: 'TCP', address: ip, port: 80, scheduler: 'rr', flags: 0, timeout: 0 } as const;
  const at = n.clock.now();
  const vsThere = (): boolean => n.ipvs.dump().includes(`-A -t ${ip}:80 `);
  switch (kind % 5) {
    case 0:
      await n.ipvs.apply([{ kind: 'deleteService', vs }]);
      return { at, what: `virtual server ${ip}:80 deleted`, intact: vsThere };
    case 1: {
      const entry = `${ip},tcp:80`;
      await n.ipset.apply([{ kind: 'del', name: 'KUBE-CLUSTER-IP', entry }]);
      return { at, what: `KUBE-CLUSTER-IP ${entry} deleted`, intact: () => n.ipset.dump().includes(`add KUBE-CLUSTER-IP ${entry}\n`) };
    }
    case 2:
      await n.iptables.restore(`*filter\n${INPUT_JUMP.replace('-A', '-D')}\nCOMMIT\n`);
      return { at, what: 'INPUT jump deleted', intact: () => n.iptables.dump().includes(INPUT_JUMP) };
    case 3:
      await n.netif.unbindMany([{ dev: 'kube-ipvs0', ip }]);
      return { at, what: `${ip} unbound`, intact: () => n.netif.dump().includes(` ${ip}/32`) };
    default: {
      const all = await n.ipvs.listServices();
      await n.ipvs.apply(all.map((s) => ({ kind: 'deleteService' as const, vs: s })));
      return { at, what: 'every virtual server deleted (ipvsadm -C)', intact: vsThere };
    }
  }
}

/**
 * The operator's tampering, repeated until it took: the injected write faults are the proxy's
 * adversity, not the operator's (an iptables restore that failed, a virtual server not deleted).
 */
async function tamperUntilTaken(n: FakeNode, i: number, kind: number): Promise<Tamper | undefined> {
  for (let attempt = 0; attempt < 100; attempt++) {
    let t: Tamper | undefined;
    try {
      t = await tamper(n, i, kind);
    } catch (e) {
      if (e instanceof DataplaneError && e.message.includes('injected fault')) continue;
      throw e;
    }
    if (t === undefined || !t.intact()) return t;
  }
  throw new Error(`soak: tampering ${kind % 5} with service ${i} did not take in 100 attempts`);
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const out = o.log ?? (() => undefined);
  const rnd = seededRandom(o.seed);
  const cfg = soakConfig();
  const n = fakeNode({ config: cfg, faultRate: o.faultRate, drainTimeoutMs: DRAIN_TIMEOUT_MS });
  const sampleEvery = Math.max(60_000, Math.floor(o.minutes / 24) * 60_000);
  for (let i = 0; i < o.services; i++) n.apply({ services: [mixedService(i)], slices: [sliceAt(i, 0, rnd)] });
  const counts = { syncs: 0, failed: 0, logLines: 0 };
  const leaked: Buffer[] = [];
  const log = createLogger('json', () => void counts.logLines++);
  const obs = await startObservability({ config: cfg, log, dataplane: n.dataplane, tracker: n.tracker, events: { warn: () => undefined }, nodeEligible: () => true, ownerOf: (k) => n.proxier.virtualServerOwner(k) });
  const inner = reportingSync(n.proxier, log, obs);
  let lastState: DesiredState | undefined;
  const sync = async (full: boolean): Promise<boolean> => {
    counts.syncs++;
    const ok = await inner(full);
    if (!ok) counts.failed++;
    return ok;
  };
  const proxierSync = n.proxier.sync.bind(n.proxier);
  n.proxier.sync = async (opts) => {
    const r = await proxierSync(opts);
    lastState = r.state;
    return r;
  };
  let notify: () => void = () => undefined;
  const source: DaemonSource = { start: (onChange) => void (notify = onChange), beforeResync: () => undefined, hangup: () => undefined, close: () => undefined };
  const loop = startSyncLoop({ log, source, sync, nextSyncBy: () => n.proxier.nextDrainCheckAt(), config: cfg, observer: obs, close: () => undefined, clock: n.clock });

  const endMs = o.minutes * 60_000;
  const generation = new Map<number, number>();
  const deleted = new Set<number>();
  const samples: Sample[] = [];
  const tampers: Tamper[] = [];
  const repairs: Array<{ what: string; ms: number | undefined }> = [];
  const held: Held[] = [];
  const started = performance.now();
  let changes = 0;
  try {
    await n.clock.advance(MIN_SYNC_PERIOD_MS); // the first (full) sync
    out(`soak: ${o.services} services, ${o.minutes} simulated minutes, ${Math.round(o.faultRate * 100)} % write faults, seed ${o.seed}`);
    samples.push(await sample(0, n, counts));
    for (let t = 1000; t <= endMs; t += 1000) {
      for (let k = 0; k < 3; k++) {
        const i = STABLE + Math.floor(rnd() * (o.services - STABLE));
        if (deleted.has(i)) continue;
        const g = (generation.get(i) ?? 0) + 1;
        generation.set(i, g);
        n.apply({ slices: [sliceAt(i, g, rnd)] });
        if (o.leakKbPerChange) leaked.push(Buffer.alloc(o.leakKbPerChange * 1024, 1));
        changes++;
      }
      if (t % 10_000 === 0) {
        const i = STABLE + Math.floor(rnd() * (o.services - STABLE));
        if (deleted.delete(i)) n.apply({ services: [mixedService(i)] });
        else {
          deleted.add(i);
          n.tracker.deleteService(`ns-${i % 50}`, `svc-${i}`);
        }
        changes++;
      }
      notify();
      // A client opens connections to one real server a second, and the oldest of HELD clients
      // closes its: a server removed meanwhile drains until then (or the drain timeout).
      const i = STABLE + Math.floor(rnd() * (o.services - STABLE));
      const rs = n.ipvs.dump().match(new RegExp(`^-a -t ${clusterIp(i).replaceAll('.', '\\.')}:80 -r ([0-9.]+):8080 `, 'm'));
      if (rs?.[1]) {
        held.push({ vs: clusterIp(i), rs: rs[1] });
        setConns(n, held[held.length - 1] as Held, 2);
      }
      if (held.length > HELD) setConns(n, held.shift() as Held, 0);
      if (t % TAMPER_EVERY_MS === 0) {
        const tm = await tamperUntilTaken(n, Math.floor(rnd() * STABLE), Math.floor(rnd() * 5));
        if (tm) tampers.push(tm);
      }
      await n.clock.advance(1000);
      for (const tm of [...tampers]) {
        if (tm.intact()) {
          repairs.push({ what: tm.what, ms: n.clock.now() - tm.at });
          tampers.splice(tampers.indexOf(tm), 1);
        } else if (n.clock.now() - tm.at > 3 * SYNC_PERIOD_MS) {
          repairs.push({ what: tm.what, ms: undefined });
          tampers.splice(tampers.indexOf(tm), 1);
        }
      }
      if (t % sampleEvery === 0) {
        const s = await sample(t / 60_000, n, counts);
        samples.push(s);
        out(`soak: ${String(s.minute).padStart(4)} min  heap ${s.heapMB} MB  rss ${s.rssMB} MB  external ${s.externalMB} MB  handles ${s.handles}  timers ${s.timers}  draining ${s.draining}  syncs ${s.syncs} (${s.failedSyncs} failed)  ${Math.round((performance.now() - started) / 1000)} s`);
      }
    }
    // The end: churn stops (faults go on), drains finish, and full syncs run until one succeeds:
    // then nothing needs writing, and the kernel must equal the plan.
    for (const h of held.splice(0)) setConns(n, h, 0);
    await n.clock.advance(DRAIN_TIMEOUT_MS + SYNC_PERIOD_MS);
    for (let k = 0; k < 20; k++) {
      const before = counts.failed;
      loop.hangup();
      await n.clock.advance(MIN_SYNC_PERIOD_MS);
      if (counts.failed === before) break;
    }
  } finally {
    await loop.stop();
  }
  const final = lastState;
  const diffs = final ? kernelEqualsPlan(n, final) : ['no sync ran'];

  // Flat: after the first fifth (warm-up), the last third's mean is compared with the first third's.
  const steady = samples.slice(Math.max(1, Math.floor(samples.length / 5)));
  const third = Math.max(1, Math.floor(steady.length / 3));
  const early = steady.slice(0, third);
  const late = steady.slice(-third);
  const mean = (xs: readonly Sample[], k: keyof Sample): number => xs.reduce((a, s) => a + (s[k] as number), 0) / Math.max(1, xs.length);
  const checks: Array<{ what: string; ok: boolean; detail: string }> = [];
  const flat = (what: string, k: keyof Sample, slackAbs: number, slackRel: number): void => {
    const a = mean(early, k);
    const b = mean(late, k);
    checks.push({ what: `${what} flat`, ok: b <= a * (1 + slackRel) + slackAbs, detail: `early ${a.toFixed(1)}, late ${b.toFixed(1)} (allowed +${Math.round(slackRel * 100)} % + ${slackAbs})` });
  };
  // Memory: the trend over the steady samples, as growth across them. The slope is Theil-Sen's (the
  // median of the slopes between every two samples): RSS swings by tens of MB from one sample to the
  // next as V8's compiler threads take and give back malloc arenas, and a least-squares line through
  // ten samples follows one late swing; a leak raises most pairs' slopes, a swing only a few.
  const trend = (what: string, k: keyof Sample, allowed: number): void => {
    const xs = steady.map((s) => s.minute);
    const ys = steady.map((s) => s[k] as number);
    const my = ys.reduce((a, y) => a + y, 0) / Math.max(1, ys.length);
    const slopes: number[] = [];
    for (let i = 0; i < xs.length; i++) {
      for (let j = i + 1; j < xs.length; j++) {
        const dx = (xs[j] as number) - (xs[i] as number);
        if (dx > 0) slopes.push(((ys[j] as number) - (ys[i] as number)) / dx);
      }
    }
    slopes.sort((a, b) => a - b);
    const mid = Math.floor(slopes.length / 2);
    const slope = slopes.length === 0 ? 0 : slopes.length % 2 ? (slopes[mid] as number) : ((slopes[mid - 1] as number) + (slopes[mid] as number)) / 2;
    const span = (xs[xs.length - 1] ?? 0) - (xs[0] ?? 0);
    const growth = slope * span;
    const limit = Math.max(allowed, my * 0.05);
    checks.push({ what: `${what} flat`, ok: growth <= limit, detail: `trend ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} over ${span} min (${(slope * 60).toFixed(1)}/h; allowed +${limit.toFixed(1)}), mean ${my.toFixed(1)}` });
  };
  trend('heap (MB)', 'heapMB', 4);
  trend('RSS (MB)', 'rssMB', 32);
  trend('external memory (MB)', 'externalMB', 4);
  flat('open handles', 'handles', 1, 0);
  flat('timers', 'timers', 1, 0);
  flat('drain records', 'draining', 5, 0.5);
  const unrepaired = repairs.filter((r) => r.ms === undefined || r.ms > SYNC_PERIOD_MS + MIN_SYNC_PERIOD_MS + 1000);
  checks.push({ what: 'every tampering repaired within one sync period', ok: repairs.length > 0 && unrepaired.length === 0, detail: `${repairs.length} tamperings, slowest repair ${Math.max(0, ...repairs.map((r) => r.ms ?? Infinity)) / 1000} s${unrepaired.length ? `; not in time: ${unrepaired.map((r) => r.what).join(', ')}` : ''}` });
  checks.push({ what: 'at the end the kernel equals the plan', ok: diffs.length === 0, detail: diffs.join('; ') || 'ipvs, ipset entries, kube-ipvs0 addresses and the INPUT jump' });
  checks.push({ what: 'write faults happened and were reported', ok: counts.failed > 0, detail: `${counts.failed} of ${counts.syncs} syncs reported failed operations` });
  const wall = (performance.now() - started) / 1000;
  const figures = {
    simulated: `${o.minutes} min`,
    wall: `${wall.toFixed(0)} s`,
    services: o.services,
    changes,
    syncs: counts.syncs,
    failedSyncs: counts.failed,
    tamperings: repairs.length,
    logLines: counts.logLines,
    gc: gc ? 'yes' : 'no (run node with --expose-gc for exact heap figures)',
  };
  return { samples, checks, figures, ok: checks.every((c) => c.ok) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '240' },
      services: { type: 'string', default: '1000' },
      'fault-rate': { type: 'string', default: '0.1' },
      seed: { type: 'string', default: '1' },
      short: { type: 'boolean', default: false },
      'inject-leak-kb': { type: 'string', default: '0' },
    },
  });
  const r = await runSoak({
    minutes: values.short ? 10 : Number(values.minutes),
    services: Number(values.services),
    faultRate: Number(values['fault-rate']),
    seed: Number(values.seed),
    leakKbPerChange: Number(values['inject-leak-kb']),
    log: (l) => console.log(l),
  });
  console.log(`soak figures: ${Object.entries(r.figures).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  for (const c of r.checks) console.log(`soak check ${c.ok ? 'ok  ' : 'FAIL'}: ${c.what}: ${c.detail}`);
  console.log(`soak: ${r.ok ? 1 : 0} passed, ${r.ok ? 0 : 1} failed`);
  process.exitCode = r.ok ? 0 : 1;
}

if (process.argv[1]?.endsWith('soak.js')) await main();
