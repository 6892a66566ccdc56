// bench:compare — kube-ipvs side by side with upstream kube-proxy v1.36.3 in IPVS and nftables
// modes: the same VM boot, the same kernel (scrubbed between runs), the same cluster in the same
// kube-apiserver on the host. Prints figures and ratios; asserts nothing. Usage: USAGE below
// (`--help` prints it); bench/README.md says what each figure is.
//
// On the host: a real kube-apiserver (test/helpers/apiserver.ts) holds the cluster
// (bench/compare-cluster.ts) and a small HTTP conductor tells the guest what to run, writes the
// churn and takes the results. In ONE VM boot (user network; the host's loopback is 10.0.2.2),
// bench/compare-guest.sh runs each proxy in turn and measures cold start, default/kubernetes
// reachability, churn, idle and restart; bench/compare-report.ts turns that into the tables.
import { spawnSync } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { startTestApiServer } from '../test/helpers/apiserver.js';
import { bootVm, GUEST_HOST, readBody, startConductor, writeGuestKubeconfig } from '../test/helpers/guest-conductor.js';
import type { Conductor } from '../test/helpers/guest-conductor.js';
import type { TestApiServer } from '../test/helpers/apiserver.js';
import { DAEMON_NODE_FLAGS } from '../src/cli/daemon-node-flags.js';
import { projectRoot } from '../test/api/support.js';
import { NODE } from '../test/fidelity/scenario.js';
import { ChurnWriter, expectedCounts, loadCluster, NODE_PORT_RANGE, shapeLabel } from './compare-cluster.js';
import type { Shape } from './compare-cluster.js';
import { figuresOf, table } from './compare-report.js';
import type { HostCpu } from './host-cpu.js';
import { readHostCpu, stealPercent } from './host-cpu.js';
import type { Figures } from './compare-report.js';

const K8S_VERSION = 'v1.36.3';
const PROXIES = ['ipvs', 'nftables', 'kube-ipvs'] as const;
type ProxyId = (typeof PROXIES)[number];
const LABELS: Record<ProxyId, string> = { ipvs: 'kube-proxy ipvs', nftables: 'kube-proxy nftables', 'kube-ipvs': 'kube-ipvs' };

function log(msg: string): void {
  process.stderr.write(`compare: ${msg}\n`);
}

interface Options {
  readonly shape: Shape;
  readonly proxies: readonly ProxyId[];
  readonly churnSeconds: number;
  readonly churnRate: number;
  readonly idleSeconds: number;
  readonly coldTimeout: number;
  /**
   * Cold starts tried before a proxy is given up (default 2: a retry on a clean kernel covers the
   * kube-proxy that stops after "Caches are synced" under TCG; 1 where a timeout means too slow).
   */
  readonly coldAttempts: number;
  readonly syncPeriod: string;
  readonly minSyncPeriod: string;
  readonly vmMem: string;
  readonly vmTimeout: number | undefined;
  readonly json: string | undefined;
  readonly cpuProf: string | undefined;
  /** Node flags of the kube-ipvs process: the image's (DAEMON_NODE_FLAGS), then each --node-flag, so one can undo a shipped one. */
  readonly nodeFlags: readonly string[];
  /** Another build's dist/kube-ipvs.mjs, whose --help the guest times beside this one's. */
  readonly startupBaseline: string | undefined;
}

const USAGE = `usage: npm run bench:compare -- [--services N] [--endpoints N] [--proxies ipvs,nftables,kube-ipvs]
    [--churn-seconds S] [--churn-rate R] [--idle-seconds S] [--cold-timeout S] [--cold-attempts 1|2]
    [--sync-period 30s] [--min-sync-period 1s] [--vm-mem 3G] [--vm-timeout S]
    [--json FILE] [--cpu-prof DIR] [--node-flag FLAG]... [--startup-baseline OTHER/dist/kube-ipvs.mjs]
  npm run bench:compare -- --merge A.json B.json    one table from runs of one size split over VM boots
Defaults: 50 Services x 10 endpoints (the size CI runs), all three proxies, 60 s of churn at
2 changes/s, 90 s idle. Where several VMs share a machine, run one at a time (e.g. under flock).
See bench/README.md.`;

/** A command line this tool cannot run: said with the usage, without a stack. */
class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Options {
  const o = {
    services: 50, endpoints: 10, proxies: [...PROXIES] as ProxyId[], churnSeconds: 60, churnRate: 2, idleSeconds: 90, coldTimeout: 3600, coldAttempts: 2,
    syncPeriod: '30s', minSyncPeriod: '1s', vmMem: '3G', vmTimeout: undefined as number | undefined, json: undefined as string | undefined, cpuProf: undefined as string | undefined, nodeFlags: [...DAEMON_NODE_FLAGS] as string[],
    startupBaseline: undefined as string | undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    const num = (): number => {
      const v = Number(value());
      if (!(v > 0)) throw new UsageError(`${a} must be a positive number`);
      return v;
    };
    if (a === '--services') o.services = Math.round(num());
    else if (a === '--endpoints') o.endpoints = Math.round(num());
    else if (a === '--churn-seconds') o.churnSeconds = num();
    else if (a === '--churn-rate') o.churnRate = num();
    else if (a === '--idle-seconds') o.idleSeconds = num();
    else if (a === '--cold-timeout') o.coldTimeout = Math.round(num());
    else if (a === '--cold-attempts') {
      const v = value();
      if (v !== '1' && v !== '2') throw new UsageError(`--cold-attempts must be 1 or 2, not ${v}`);
      o.coldAttempts = Number(v);
    } else if (a === '--sync-period') o.syncPeriod = value();
    else if (a === '--min-sync-period') o.minSyncPeriod = value();
    else if (a === '--vm-mem') o.vmMem = value();
    else if (a === '--vm-timeout') o.vmTimeout = Math.round(num());
    else if (a === '--json') o.json = resolve(value());
    else if (a === '--cpu-prof') o.cpuProf = resolve(value());
    else if (a === '--node-flag') o.nodeFlags = [...o.nodeFlags, value()];
    else if (a === '--startup-baseline') o.startupBaseline = resolve(value());
    else if (a === '--proxies') {
      const list = value().split(',');
      for (const p of list) if (!(PROXIES as readonly string[]).includes(p)) throw new UsageError(`--proxies: unknown proxy ${p} (${PROXIES.join(', ')})`);
      o.proxies = list as ProxyId[];
    } else if (a === '--') continue;
    else throw new UsageError(`unknown argument ${a}`);
  }
  if (o.services > 12000) throw new UsageError('--services: at most 12,000 (node ports 20256 + i must stay inside the API server range)');
  return { shape: { services: o.services, endpoints: o.endpoints }, ...o };
}

interface Paths {
  readonly root: string;
  readonly kubeProxy: string;
  readonly kubeconfig: string;
}

function commandOf(p: ProxyId, o: Options, paths: Paths): { cmd: string[]; cleanup: string[] } {
  const common = [`--kubeconfig=${paths.kubeconfig}`, `--hostname-override=${NODE}`];
  if (p === 'kube-ipvs') {
    const node = ['node', ...o.nodeFlags, ...(o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProf}`] : [])];
    // Without its per-Service IPVS counters, which upstream has no match for: with them each of the
    // guest's own /metrics polls (every 0.5-5 s while it waits for a catch-up) would cost a kernel
    // listing and about 1 MB of text per 1,000 Services, a cost of the measuring, not of the churn.
    return {
      cmd: [...node, join(paths.root, 'dist', 'kube-ipvs.mjs'), 'run', ...common, `--ipvs-sync-period=${o.syncPeriod}`, `--ipvs-min-sync-period=${o.minSyncPeriod}`, '--service-metrics=false'],
      cleanup: ['node', join(paths.root, 'dist', 'kube-ipvs.mjs'), 'cleanup'],
    };
  }
  // kube-proxy takes the sync periods of nftables mode from the --iptables-* flags (options.go).
  const periods = p === 'ipvs' ? [`--ipvs-sync-period=${o.syncPeriod}`, `--ipvs-min-sync-period=${o.minSyncPeriod}`] : [`--iptables-sync-period=${o.syncPeriod}`, `--iptables-min-sync-period=${o.minSyncPeriod}`];
  return { cmd: [paths.kubeProxy, `--proxy-mode=${p}`, ...common, ...periods, '--v=1'], cleanup: [paths.kubeProxy, '--cleanup'] };
}

/**
 * The host's 1-minute load average when a proxy's run started and when its result came, and its
 * CPU times then: the steal between them (CPU other tenants took) slows the VM unevenly.
 */
interface HostLoad {
  start?: number;
  end?: number;
  cpuStart?: HostCpu | undefined;
  stealPct?: number | undefined;
}

/** Answers the guest: the next proxy to run, the host's time, the churn, and the results. */
function conductor(o: Options, paths: Paths, churn: ChurnWriter, results: Map<ProxyId, string>, startup: string[], loads: Map<ProxyId, HostLoad>) {
  let index = -1;
  const expected = expectedCounts(o.shape);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://conductor');
    const reply = (code: number, text: string): void => {
      res.writeHead(code, { 'Content-Type': 'text/plain' });
      res.end(text);
    };
    try {
      if (url.pathname === '/time') return reply(200, `${Date.now() / 1000}\n`);
      if (url.pathname === '/next') {
        // Each proxy starts from the same cluster: the slices the last churn changed go back.
        await churn.reset();
        const p = o.proxies[++index];
        if (!p) return reply(200, 'done\n');
        log(`${LABELS[p]}: start (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
        loads.set(p, { start: loadavg()[0], cpuStart: readHostCpu() });
        const { cmd, cleanup } = commandOf(p, o, paths);
        const mode = p === 'nftables' ? 'nftables' : 'ipvs';
        const lines = [
          `run ${p}`,
          `mode ${mode}`,
          ...cmd.map((w) => `cmd ${w}`),
          ...cleanup.map((w) => `cleanup ${w}`),
          ...Object.entries(expected[mode]).map(([k, n]) => `expect ${k} ${n}`),
          `churn ${o.churnSeconds}`,
          `idle ${o.idleSeconds}`,
          `cold-timeout ${o.coldTimeout}`,
          `cold-attempts ${o.coldAttempts}`,
        ];
        return reply(200, lines.join('\n') + '\n');
      }
      if (url.pathname === '/startup') {
        startup.push(...(await readBody(req)).split('\n').filter((l) => l.trim() !== ''));
        return reply(200, 'ok\n');
      }
      const p = url.searchParams.get('label') as ProxyId | null;
      if (!p || !o.proxies.includes(p)) return reply(409, 'unknown label\n');
      if (url.pathname === '/churn') {
        const offset = Number(url.searchParams.get('offset') ?? '0');
        log(`${LABELS[p]}: churn ${o.churnSeconds} s at ${o.churnRate}/s (guest clock ${offset >= 0 ? '+' : ''}${offset.toFixed(3)} s)`);
        const r = await churn.run(o.churnSeconds, o.churnRate, Number.isFinite(offset) ? offset : 0);
        if (r.failed > 0) log(`${LABELS[p]}: ${r.failed} of ${r.changes} churn writes failed`);
        if (r.lateMs > 1000) log(`${LABELS[p]}: the churn writer fell up to ${(r.lateMs / 1000).toFixed(1)} s behind`);
        return reply(200, `ok ${r.changes - r.failed}\n`);
      }
      if (url.pathname === '/result') {
        results.set(p, await readBody(req));
        const load = loads.get(p) ?? {};
        load.end = loadavg()[0];
        load.stealPct = stealPercent(load.cpuStart, readHostCpu());
        loads.set(p, load);
        const steal = load.stealPct === undefined ? '' : `; host CPU steal since its start ${load.stealPct.toFixed(0)} %`;
        log(`${LABELS[p]}: result received (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}${steal})`);
        return reply(200, 'ok\n');
      }
      return reply(404, 'unknown\n');
    } catch (e) {
      log(`conductor: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      return reply(500, `${e instanceof Error ? e.message : String(e)}\n`);
    }
  };
}

/** `--help` in the guest: median wall, CPU and peak RSS per build. */
function startupTable(lines: readonly string[], ours: string): string[] {
  const byEntry = new Map<string, number[][]>();
  for (const l of lines) {
    const [entry, ...nums] = l.trim().split(/\s+/);
    if (!entry || nums.length < 4) continue;
    byEntry.set(entry, [...(byEntry.get(entry) ?? []), nums.map(Number)]);
  }
  if (byEntry.size === 0) return [];
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const out = ['', '`kube-ipvs --help` in the guest (median of 3):', '', '| build | wall (s) | CPU (s) | peak RSS (MB) |', '|---|---|---|---|'];
  for (const [entry, runs] of byEntry) {
    const label = entry === ours ? 'this build' : entry;
    out.push(`| ${label} | ${median(runs.map((r) => r[0] ?? NaN)).toFixed(2)} | ${median(runs.map((r) => (r[1] ?? 0) + (r[2] ?? 0))).toFixed(2)} | ${(median(runs.map((r) => r[3] ?? NaN)) / 1024).toFixed(0)} |`);
  }
  return out;
}

/** What one invocation measured: kept with --json, printed together by --merge. */
interface RunRecord {
  readonly shape: Shape;
  readonly options: Pick<Options, 'vmMem' | 'churnSeconds' | 'churnRate' | 'idleSeconds' | 'syncPeriod' | 'minSyncPeriod'> & { readonly nodeFlags?: readonly string[] };
  readonly started: string;
  readonly version?: string;
  readonly node?: string;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  readonly figures: Figures[];
}

/** One table for runs of the same shape: one VM boot, or several when the proxies were split. */
function report(runs: readonly RunRecord[], extra: readonly string[] = []): string {
  const first = runs[0];
  if (!first) throw new Error('nothing to report');
  const shape = first.shape;
  if (runs.some((r) => r.shape.services !== shape.services || r.shape.endpoints !== shape.endpoints)) throw new UsageError('--merge: the runs are of different sizes');
  const expected = expectedCounts(shape);
  const boots = runs.map((r) => {
    const o = r.options;
    return `${r.started.slice(0, 16).replace('T', ' ')} UTC: ${r.figures.map((f) => f.label).join(', ')}; kube-ipvs ${r.version ?? 'unknown'}, Node ${r.node ?? '?'}${o.nodeFlags?.length ? ` (${o.nodeFlags.join(' ')})` : ''}; ` +
      `qemu TCG, 2 vCPUs, ${o.vmMem}; churn ${o.churnSeconds} s at ${o.churnRate} EndpointSlice changes/s, idle ${o.idleSeconds} s, ` +
      `--*-sync-period ${o.syncPeriod}, --*-min-sync-period ${o.minSyncPeriod}; host load average ${r.loadBefore[0]?.toFixed(1)} before, ${r.loadAfter[0]?.toFixed(1)} after (2 cores)`;
  });
  const figs = runs.flatMap((r) => r.figures).sort((a, b) => order(a.label) - order(b.label));
  const text = [
    `### ${shapeLabel(shape)} (${(expected.ipvs.vs ?? 0).toLocaleString('en')} IPVS virtual servers, ${(expected.ipvs.rs ?? 0).toLocaleString('en')} real servers)`,
    '',
    `kube-proxy ${K8S_VERSION}. ${runs.length === 1 ? 'One VM boot' : `${runs.length} VM boots`}: ${boots.join('. ')}. Times are TCG-emulated: compare the columns, not with real machines.`,
    '',
    table(figs, LABELS['kube-ipvs']),
    '',
  ];
  for (const f of figs) {
    const notes = [...f.notes, ...(f.kernelCounts ? [`kernel: ${f.kernelCounts}`] : []), ...(f.status !== 'ok' ? [`status: ${f.status}`] : [])];
    if (notes.length > 0) text.push(`- ${f.label}: ${notes.join('; ')}`);
  }
  return [...text, ...extra].join('\n');
}

const order = (label: string): number => Object.values(LABELS).indexOf(label);

/**
 * The commit measured (KUBE_IPVS_COMPARE_VERSION names it when running from a copy of the tree),
 * read before the VM boots: a commit made during an hour-long run is not what it measured.
 */
function version(root: string): string {
  const r = spawnSync('git', ['describe', '--always', '--dirty'], { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : (process.env.KUBE_IPVS_COMPARE_VERSION ?? 'unknown');
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2).filter((a) => a !== '--');
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (argv[0] === '--merge') {
    // Runs of one size split over several VM boots (--proxies), kept with --json: one table.
    const files = argv.slice(1);
    if (files.length === 0) throw new UsageError('--merge needs the --json files of earlier runs');
    const clkTck = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    const runs = files.map((f) => {
      const run = JSON.parse(readFileSync(f, 'utf8')) as RunRecord & { raw?: Record<string, string> };
      // The figures again from what the guest sent, with this version's report (host notes kept).
      const figures = run.figures.map((old) => {
        const p = PROXIES.find((id) => LABELS[id] === old.label);
        const raw = p ? run.raw?.[p] : undefined;
        if (raw === undefined) return old;
        const f = figuresOf(old.label, raw, clkTck);
        f.notes.push(...old.notes.filter((n) => n.startsWith('host load')));
        return f;
      });
      return { ...run, figures };
    });
    console.log(report(runs));
    return 0;
  }
  const o = parseArgs(process.argv.slice(2));
  const root = projectRoot();
  const cache = process.env.KUBE_IPVS_CACHE ?? join(homedir(), '.cache', 'kube-ipvs');
  const kubeProxy = join(cache, 'apiserver', K8S_VERSION, 'bin', 'kube-proxy');
  if (!existsSync(kubeProxy)) throw new Error(`${kubeProxy} is missing: run test/apiserver/build.sh`);
  if (!existsSync(join(root, 'dist', 'kube-ipvs.mjs'))) throw new Error('dist/kube-ipvs.mjs is missing: run npm run build');
  if (o.proxies.includes('nftables') && spawnSync('nft', ['--version']).status !== 0) throw new Error('nft is missing (the guest runs the host\'s): apt-get install nftables');
  // The guest sees the host's / read-only but has its own /tmp: its files live in the cache.
  const dir = join(cache, 'compare', String(process.pid));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (o.cpuProf) mkdirSync(o.cpuProf, { recursive: true });
  const started = new Date();
  const loadBefore = loadavg();
  const t0 = Date.now();
  const measured = version(root);
  let server: TestApiServer | undefined;
  let http: Conductor | undefined;
  try {
    // 10.96.0.1 in the certificate: the guest checks it reached this API server through the
    // ClusterIP of default/kubernetes and not something else.
    server = await startTestApiServer({ bindAddress: '127.0.0.1', extraSANs: ['10.96.0.1'], serviceNodePortRange: NODE_PORT_RANGE });
    log(`kube-apiserver at ${server.url}; loading ${shapeLabel(o.shape)}`);
    await loadCluster(server, o.shape);
    log(`cluster loaded in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const { kubeconfig, caFile } = writeGuestKubeconfig(server, dir);
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, server.tokenFor('admin'), { mode: 0o600 });

    const results = new Map<ProxyId, string>();
    const startup: string[] = [];
    const loads = new Map<ProxyId, HostLoad>();
    http = await startConductor(conductor(o, { root, kubeProxy, kubeconfig }, new ChurnWriter(server, o.shape), results, startup, loads));
    const port = http.port;

    const env = {
      ...process.env,
      KUBE_IPVS_VM_NET: 'user',
      KUBE_IPVS_VM_HOSTNAME: NODE,
      KUBE_IPVS_COMPARE_CONDUCTOR: `http://${GUEST_HOST}:${port}`,
      KUBE_IPVS_COMPARE_CA: caFile,
      KUBE_IPVS_COMPARE_TOKEN_FILE: tokenFile,
      ...(o.startupBaseline ? { KUBE_IPVS_COMPARE_BASELINE: o.startupBaseline } : {}),
    };
    // Per proxy: each cold-start attempt and the restart's sync (a cold timeout each), the churn and
    // its catch-up, the idle time; then margin.
    const timeout = o.vmTimeout ?? Math.round(600 + o.proxies.length * ((1 + o.coldAttempts) * o.coldTimeout + o.churnSeconds + o.idleSeconds));
    const vmArgs = ['--mem', o.vmMem, '--cpus', '2', '--timeout', String(timeout), ...(o.cpuProf ? ['--rw', o.cpuProf] : []), '--', 'bash', 'bench/compare-guest.sh'];
    const code = await bootVm(root, vmArgs, env, ['ignore', 'inherit', 'inherit']);
    const loadAfter = loadavg();
    log(`VM exited ${code} after ${((Date.now() - t0) / 1000).toFixed(0)} s`);

    const clkTck = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    const figs: Figures[] = o.proxies.map((p) => {
      const f = figuresOf(LABELS[p], results.get(p) ?? '### status\nno result from the guest\n', clkTck);
      const load = loads.get(p);
      if (load?.start !== undefined) f.notes.push(`host load average ${load.start.toFixed(1)} at its start, ${load.end?.toFixed(1) ?? '?'} at its end`);
      if (load?.stealPct !== undefined) f.notes.push(`host CPU steal ${load.stealPct.toFixed(0)} % over its run`);
      return f;
    });
    const run: RunRecord = { shape: o.shape, options: o, started: started.toISOString(), version: measured, node: process.version, loadBefore, loadAfter, figures: figs };
    console.log(report([run], startupTable(startup, join(root, 'dist', 'kube-ipvs.mjs'))));
    if (o.json) writeFileSync(o.json, JSON.stringify({ ...run, raw: Object.fromEntries(results) }, null, 1));
    const missing = o.proxies.filter((p) => !results.has(p));
    if (missing.length > 0) log(`no result from: ${missing.map((p) => LABELS[p]).join(', ')}`);
    // The comparison means nothing if a proxy never held the whole cluster (or the check of it
    // no longer matches what the proxy writes): CI fails on that, not on the figures.
    const incomplete = figs.filter((f) => f.coldComplete === undefined);
    if (incomplete.length > 0) log(`never complete in the kernel: ${incomplete.map((f) => f.label).join(', ')}`);
    const cut = figs.filter((f) => results.has(PROXIES.find((p) => LABELS[p] === f.label) ?? 'kube-ipvs') && f.status !== 'ok');
    if (cut.length > 0) log(`not measured to the end: ${cut.map((f) => `${f.label} (${f.status})`).join(', ')}`);
    return code === 0 && missing.length === 0 && incomplete.length === 0 && cut.length === 0 ? 0 : 1;
  } finally {
    http?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError) {
      log(`error: ${e.message}\n${USAGE}`);
      process.exit(2);
    }
    log(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(125);
  },
);
