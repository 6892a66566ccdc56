// bench/ipset-netlink: the ipset backends on this host's kernel, in a throw-away network namespace:
//   unshare -n node --import tsx bench/ipset-netlink.ts
// Prints, for NetlinkIpset and RealIpset (`ipset restore` / `ipset save`), the CPU of one endpoint
// change (2 dels + 2 adds in a hash:ip,port set holding BENCH_ENTRIES entries) and of observe() of
// that set: our process (process.cpuUsage: user + sys, sys includes the kernel work our netlink
// requests cause) and the reaped ipset children (/proc/self/stat, 10 ms ticks, so only their mean
// over all rounds means anything). Asserts nothing; the goal (issue 3) is ≤ 10 ms of our CPU.
// Env: BENCH_ENTRIES (10000), BENCH_ROUNDS (200), BENCH_OBSERVE_ROUNDS (30).
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { IpsetBackend, IpsetOp } from '../src/dataplane/ipset/backend.js';
import { NetlinkIpset } from '../src/dataplane/ipset/netlink.js';
import { netnsAllowed } from './calibrate.js';
import { RealIpset } from '../src/dataplane/ipset/real.js';
import type { IpsetSpec } from '../src/model/kernel.js';

const ENTRIES = Number(process.env['BENCH_ENTRIES'] ?? 10000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 200);
const OBSERVE_ROUNDS = Number(process.env['BENCH_OBSERVE_ROUNDS'] ?? 30);
/** Linux USER_HZ, the unit of cutime/cstime. */
const CLK_TCK = 100;

// Sets are per netns: refuse to create and destroy sets in the host's namespace.
if (!netnsAllowed()) {
  console.error('bench/ipset-netlink: run it in a private network namespace: unshare -n node --import tsx bench/ipset-netlink.ts');
  process.exit(2);
}

const SET: IpsetSpec = { name: 'KUBE-CLUSTER-IP', type: 'hash:ip,port', family: 'inet', hashSize: 1024, maxElem: 65536, range: '0-65535' };

function entry(i: number): string {
  return `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255},tcp:${80 + (i % 7)}`;
}

function childCpuMs(): number {
  const rest = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(rest[13]) + Number(rest[14])) * 1000) / CLK_TCK;
}

interface Sample {
  /** Our CPU (user + sys), µs. */
  readonly cpu: number;
  readonly wall: number;
}

async function measure(fn: () => Promise<void>): Promise<Sample> {
  const t = performance.now();
  const c = process.cpuUsage();
  await fn();
  const d = process.cpuUsage(c);
  return { cpu: d.user + d.system, wall: (performance.now() - t) * 1000 };
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

function ms(us: number): string {
  return `${(us / 1000).toFixed(3)} ms`;
}

async function rounds(label: string, n: number, step: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < Math.min(5, n); i++) await step(i); // warm-up (JIT, kernel caches)
  const samples: Sample[] = [];
  const child0 = childCpuMs();
  for (let i = 0; i < n; i++) samples.push(await measure(() => step(i)));
  const child = (childCpuMs() - child0) / n;
  const cpu = samples.map((s) => s.cpu);
  const mean = cpu.reduce((a, b) => a + b, 0) / n;
  console.log(
    `  ${label.padEnd(34)} our CPU p50 ${ms(pct(cpu, 50)).padStart(10)}  p99 ${ms(pct(cpu, 99)).padStart(10)}  mean ${ms(mean).padStart(10)}` +
      `  | wall p50 ${ms(pct(samples.map((s) => s.wall), 50)).padStart(10)}  | ipset children mean ${child.toFixed(2)} ms`,
  );
}

async function mustApply(b: IpsetBackend, ops: readonly IpsetOp[]): Promise<void> {
  const r = await b.apply(ops);
  if (r.error) throw r.error;
}

/** One endpoint change per call, keeping the set at ENTRIES: the i-th round replaces two entries. */
function change(i: number): IpsetOp[] {
  // Round i deletes entries a, b and adds c, d; the next round puts them back the other way.
  const k = Math.abs(i) % 500;
  const [a, b, c, d] = [k * 2, k * 2 + 1, ENTRIES + k * 2, ENTRIES + k * 2 + 1].map(entry) as [string, string, string, string];
  const forward = Math.floor(Math.abs(i) / 500) % 2 === 0;
  const [gone, come] = forward ? [[a, b], [c, d]] : [[c, d], [a, b]];
  return [
    { kind: 'del', name: SET.name, entry: gone[0] ?? '' },
    { kind: 'del', name: SET.name, entry: gone[1] ?? '' },
    { kind: 'add', name: SET.name, entry: come[0] ?? '' },
    { kind: 'add', name: SET.name, entry: come[1] ?? '' },
  ];
}

const netlink = await NetlinkIpset.open();
const tool = new RealIpset();
console.log(
  `bench/ipset-netlink: ${ENTRIES} entries, ${ROUNDS} change rounds, ${OBSERVE_ROUNDS} observe rounds; node ${process.version}, ` +
    `kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, ${cpus().length} CPUs, ipset ${await tool.version()}, netlink protocol ${netlink.protocol}`,
);

// The set, loaded once each way (figures for information: the initial sync's ipset part).
const load: IpsetOp[] = [{ kind: 'create', spec: SET }, ...Array.from({ length: ENTRIES }, (_, i): IpsetOp => ({ kind: 'add', name: SET.name, entry: entry(i) }))];
console.log('load of the set (create + adds):');
for (const [label, b] of [
  ['ipset restore', tool],
  ['netlink', netlink],
] as const) {
  await mustApply(netlink, [{ kind: 'destroy', name: SET.name }]);
  const c0 = childCpuMs();
  const s = await measure(() => mustApply(b, load));
  console.log(`  ${label.padEnd(34)} our CPU ${ms(s.cpu).padStart(10)}  | wall ${ms(s.wall).padStart(10)}  | ipset children ${(childCpuMs() - c0).toFixed(0)} ms`);
}

// One counter across both backends, so every round really removes two entries and adds two.
console.log(`one endpoint change (2 dels + 2 adds) in a set of ${ENTRIES}:`);
let seq = 0;
await rounds('ipset restore (RealIpset.apply)', ROUNDS, () => mustApply(tool, change(seq++)));
await rounds('netlink (NetlinkIpset.apply)', ROUNDS, () => mustApply(netlink, change(seq++)));

console.log(`observe([set]) of ${ENTRIES} entries:`);
const sizes = new Set<number>();
await rounds('ipset save + parse (RealIpset)', OBSERVE_ROUNDS, async () => {
  sizes.add((await tool.observe([SET.name]))[0]?.entries.size ?? -1);
});
await rounds('netlink dump + decode (NetlinkIpset)', OBSERVE_ROUNDS, async () => {
  sizes.add((await netlink.observe([SET.name]))[0]?.entries.size ?? -1);
});
if (sizes.size !== 1 || !sizes.has(ENTRIES)) console.log(`  (!) observed sizes ${[...sizes].join(', ')}, expected ${ENTRIES}`);

await mustApply(netlink, [{ kind: 'destroy', name: SET.name }]);
netlink.close();
