// The differential fidelity harness: upstream kube-proxy v1.36.3 in IPVS mode is the judge.
//   npm run fidelity [-- --random N] [--seed S] [--services N] [--only id,id] [--no-curated]
//                    [--schedulers] [--check]
// (--check only puts every scenario into the API server, without a VM.)
//
// On the host: a real kube-apiserver (test/helpers/apiserver.ts) holds each scenario's Node,
// Services and EndpointSlices, and a small HTTP conductor tells the guest what to run. In ONE VM
// boot (user network: the host's loopback is 10.0.2.2), test/fidelity/guest.sh runs, per scenario,
// upstream `kube-proxy --proxy-mode=ipvs` and then `kube-ipvs run` with the same flags, each on a
// clean kernel until it has synced, dumps the kernel state after the initial sync and after each
// change step, and cleans up. The host then compares the normalised dumps category by category
// and fails on any difference that deliberate-differences.yaml does not list.
import { spawnSync } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { apiRequest, startTestApiServer } from '../helpers/apiserver.js';
import { bootVm, GUEST_HOST, readBody, startConductor, writeGuestKubeconfig } from '../helpers/guest-conductor.js';
import type { Conductor } from '../helpers/guest-conductor.js';
import type { TestApiServer } from '../helpers/apiserver.js';
import { must, projectRoot } from '../api/support.js';
import { curatedScenarios, schedulerScenarios } from './curated.js';
import { evidenceFromKubeProxyLog, explain, loadDifferences } from './differences.js';
import type { DeliberateDifference } from './differences.js';
import { compareDumps, normalizeDump } from './normalize.js';
import type { LineDiff } from './normalize.js';
import { randomScenario } from './random-cluster.js';
import type { Scenario } from './scenario.js';
import { NODE, scenarioAtStep } from './scenario.js';
import { ClusterState } from './cluster-state.js';

const K8S_VERSION = 'v1.36.3';
const PROXIES = ['kube-proxy', 'kube-ipvs'] as const;
type Proxy = (typeof PROXIES)[number];

function log(msg: string): void {
  process.stderr.write(`fidelity: ${msg}\n`);
}

interface Options {
  readonly random: number;
  readonly seed: number;
  readonly only: readonly string[];
  readonly curated: boolean;
  readonly schedulers: boolean;
  readonly services: number;
  /** Only put each scenario's objects into the API server and report refusals (no VM). */
  readonly check: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  let random = 0;
  let seed = Date.now() % 100000;
  let only: string[] = [];
  let curated = true;
  let schedulers = false;
  let services = 200;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--random') random = Number(value());
    else if (a === '--seed') seed = Number(value());
    else if (a === '--services') services = Number(value());
    else if (a === '--only') only = value().split(',');
    else if (a === '--no-curated') curated = false;
    else if (a === '--schedulers') schedulers = true;
    else if (a === '--check') check = true;
    else if (a === '--') continue;
    else throw new Error(`unknown argument ${a} (see the header of test/fidelity/harness.ts)`);
  }
  for (const [name, n] of [['--random', random], ['--seed', seed], ['--services', services]] as const) {
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`);
  }
  return { random, seed, only, curated, schedulers, services, check };
}

function scenariosFor(o: Options): Scenario[] {
  const all: Scenario[] = [];
  if (o.curated) all.push(...curatedScenarios());
  if (o.schedulers) all.push(...schedulerScenarios());
  for (let i = 0; i < o.random; i++) all.push(randomScenario(o.seed + i, o.services));
  return o.only.length > 0 ? all.filter((s) => o.only.includes(s.id)) : all;
}

interface Run {
  readonly scenario: Scenario;
  /** Why the run has no dumps (its log tail, or the API server's refusal). */
  readonly proxy: Proxy;
  nextStep: number;
  readonly dumps: Map<number, string>;
  readonly seconds: Map<number, number>;
  /** The proxy's whole log, posted when it stopped. */
  finalLog?: string;
  log?: string;
}

/** Answers the guest: what to run next, the next change step, and takes the dumps. */
function conductor(runs: Run[], cluster: ClusterState, argsFor: (s: Scenario, p: Proxy) => string[], keepDir: string | undefined) {
  let index = -1;
  const current = (): Run | undefined => runs[index];
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://conductor');
    const reply = (code: number, text: string): void => {
      res.writeHead(code, { 'Content-Type': 'text/plain' });
      res.end(text);
    };
    try {
      if (url.pathname === '/next') {
        index++;
        const run = current();
        if (!run) return reply(200, 'done\n');
        log(`${run.scenario.id}: ${run.proxy}`);
        try {
          await cluster.reset(run.scenario.objects, run.scenario.node);
        } catch (e) {
          // The scenario cannot be set up: record it and go on with the next run.
          run.log = `the API server refused the scenario: ${e instanceof Error ? e.message : String(e)}`;
          log(`${run.scenario.id}: ${run.log}`);
          return reply(200, `skip ${run.scenario.id}\n`);
        }
        const addrs = (run.scenario.node.guestAddresses ?? []).map((a) => `addr ${a}`);
        return reply(200, [`run ${run.scenario.id} ${run.proxy}`, ...argsFor(run.scenario, run.proxy), ...addrs].join('\n') + '\n');
      }
      const run = current();
      if (!run || url.searchParams.get('id') !== run.scenario.id) return reply(409, 'not the current run\n');
      if (url.pathname === '/step') {
        const step = run.scenario.steps?.[run.nextStep];
        if (!step) return reply(200, 'end\n');
        run.nextStep++;
        log(`${run.scenario.id}: ${run.proxy}: step ${run.nextStep}: ${step.description}`);
        await cluster.apply(step);
        return reply(200, `step ${run.nextStep}\n`);
      }
      if (url.pathname === '/dump') {
        const step = Number(url.searchParams.get('step') ?? '0');
        const dump = await readBody(req);
        run.dumps.set(step, dump);
        if (keepDir) writeFileSync(join(keepDir, `${run.scenario.id}.${run.proxy}.${step}.dump`), dump);
        run.seconds.set(step, Number(url.searchParams.get('seconds') ?? 'NaN'));
        return reply(200, 'ok\n');
      }
      if (url.pathname === '/log') {
        const text = await readBody(req);
        if (url.searchParams.get('final') === '1') {
          run.finalLog = text;
          // Every run's log is kept beside the dumps when KUBE_IPVS_KEEP_FIDELITY=1.
          if (keepDir) writeFileSync(join(keepDir, `${run.scenario.id}.${run.proxy}.log`), text);
        } else {
          run.log = text;
          log(`${run.scenario.id}: ${run.proxy} did not sync; its log:\n${text.split('\n').slice(-40).join('\n')}`);
        }
        return reply(200, 'ok\n');
      }
      return reply(404, 'unknown\n');
    } catch (e) {
      log(`conductor: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      return reply(500, `${e instanceof Error ? e.message : String(e)}\n`);
    }
  };
}

/** kube-proxy --write-config-to on the host: upstream's own configuration file. */
function upstreamConfigFile(kubeProxy: string, dir: string, s: Scenario, kubeconfig: string): string {
  const file = join(dir, `${s.id}.config.yaml`);
  const r = spawnSync(kubeProxy, [...(s.configFromUpstream ?? []), `--kubeconfig=${kubeconfig}`, `--hostname-override=${NODE}`, `--write-config-to=${file}`], { encoding: 'utf8' });
  if (!existsSync(file)) throw new Error(`kube-proxy --write-config-to wrote nothing (exit ${r.status}): ${r.stderr.slice(-500)}`);
  return file;
}

interface Verdict {
  readonly scenario: string;
  readonly step: number;
  readonly undocumented: LineDiff[];
  readonly documented: { diff: LineDiff; by: DeliberateDifference }[];
  readonly missing?: string;
}

function judge(runs: readonly Run[], differences: readonly DeliberateDifference[]): Verdict[] {
  const out: Verdict[] = [];
  const byScenario = new Map<string, Partial<Record<Proxy, Run>>>();
  for (const r of runs) byScenario.set(r.scenario.id, { ...byScenario.get(r.scenario.id), [r.proxy]: r });
  for (const [id, pair] of byScenario) {
    const steps = (pair['kube-proxy']?.scenario.steps?.length ?? 0) + 1;
    for (let step = 0; step < steps; step++) {
      const up = pair['kube-proxy']?.dumps.get(step);
      const ours = pair['kube-ipvs']?.dumps.get(step);
      if (up === undefined || ours === undefined) {
        const who = up === undefined ? 'kube-proxy' : 'kube-ipvs';
        const why = pair[who]?.log?.split('\n').filter((l) => l.trim() !== '').slice(-3).join(' | ');
        out.push({ scenario: id, step, undocumented: [], documented: [], missing: why ? `${who} (${why})` : who });
        continue;
      }
      const diffs = compareDumps(normalizeDump(up), normalizeDump(ours));
      const scenario = pair['kube-proxy']?.scenario;
      const atStep = scenario ? scenarioAtStep(scenario, step) : undefined;
      const nodeHasZone = atStep?.node.labels?.['topology.kubernetes.io/zone'] !== undefined;
      const evidence = evidenceFromKubeProxyLog(pair['kube-proxy']?.finalLog ?? '', nodeHasZone, atStep?.services ?? []);
      const undocumented: LineDiff[] = [];
      const documented: { diff: LineDiff; by: DeliberateDifference }[] = [];
      for (const d of diffs) {
        const by = explain(d, id, differences, evidence);
        if (by) documented.push({ diff: d, by });
        else undocumented.push(d);
      }
      out.push({ scenario: id, step, undocumented, documented });
    }
  }
  return out;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const root = projectRoot();
  const scenarios = scenariosFor(opts);
  if (scenarios.length === 0) throw new Error('no scenario selected');
  const differences = loadDifferences(join(root, 'test', 'fidelity', 'deliberate-differences.yaml'));
  const cache = process.env.KUBE_IPVS_CACHE ?? join(homedir(), '.cache', 'kube-ipvs');
  const kubeProxy = join(cache, 'apiserver', K8S_VERSION, 'bin', 'kube-proxy');
  if (!existsSync(kubeProxy)) throw new Error(`${kubeProxy} is missing: run test/apiserver/build.sh`);
  if (!existsSync(join(root, 'dist', 'kube-ipvs.mjs'))) throw new Error('dist/kube-ipvs.mjs is missing: run npm run build');
  const dir = join(cache, 'fidelity', String(process.pid));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const t0 = Date.now();
  let server: TestApiServer | undefined;
  let http: Conductor | undefined;
  try {
    server = await startTestApiServer({ bindAddress: '127.0.0.1' });
    log(`kube-apiserver at ${server.url}; ${scenarios.length} scenario(s)${opts.random > 0 ? `, random seeds ${opts.seed}..${opts.seed + opts.random - 1}` : ''}`);
    await must(apiRequest(server, 'POST', '/api/v1/namespaces', { metadata: { name: 'fidelity' } }), 'create namespace');
    if (opts.check) return await checkScenarios(server, scenarios);
    const { kubeconfig } = writeGuestKubeconfig(server, dir);

    const configFiles = new Map<string, string>();
    for (const s of scenarios) if (s.configFromUpstream) configFiles.set(s.id, upstreamConfigFile(kubeProxy, dir, s, kubeconfig));
    const argsFor = (s: Scenario, p: Proxy): string[] => {
      const file = configFiles.get(s.id);
      const common = file ? [`--config=${file}`, `--hostname-override=${NODE}`] : [`--kubeconfig=${kubeconfig}`, `--hostname-override=${NODE}`, ...s.flags];
      // kube-ipvs logs as JSON here so its log is easy to read back when a run fails.
      return p === 'kube-ipvs' ? [...common, '--log-format=json'] : [...common, '--v=2'];
    };
    const runs: Run[] = scenarios.flatMap((scenario) => PROXIES.map((proxy) => ({ scenario, proxy, nextStep: 0, dumps: new Map<number, string>(), seconds: new Map<number, number>() })));
    const cluster = new ClusterState(server);
    const keep = process.env.KUBE_IPVS_KEEP_FIDELITY === '1';
    http = await startConductor(conductor(runs, cluster, argsFor, keep ? dir : undefined));
    const port = http.port;

    const env = {
      ...process.env,
      KUBE_IPVS_VM_NET: 'user',
      KUBE_IPVS_VM_HOSTNAME: NODE,
      KUBE_IPVS_VM_MEM: process.env.KUBE_IPVS_VM_MEM ?? '2G',
      KUBE_IPVS_FIDELITY_CONDUCTOR: `http://${GUEST_HOST}:${port}`,
      KUBE_IPVS_FIDELITY_KUBE_PROXY: kubeProxy,
      // How long the guest waits for a sync: kube-proxy's IPv4 sync of a 200-Service random cluster
      // took 550 s in a TCG guest on a loaded host (2026-12-05), and its IPv6 sync follows it.
      KUBE_IPVS_FIDELITY_SYNC_TIMEOUT: process.env.KUBE_IPVS_FIDELITY_SYNC_TIMEOUT ?? String(Math.max(600, 600 + 6 * Math.max(0, ...scenarios.map((s) => s.objects.services.length)))),
    };
    // Generous: upstream kube-proxy's first sync of 100 Services took 539 s in a loaded TCG guest.
    const timeout = String(scenarios.reduce((t, s) => t + 900 + 20 * s.objects.services.length, 600));
    const code = await bootVm(root, ['--timeout', timeout, '--', 'bash', 'test/fidelity/guest.sh'], env);
    log(`VM exited ${code} after ${((Date.now() - t0) / 1000).toFixed(0)} s${keep ? `; dumps and logs kept in ${dir}` : ''}`);

    const verdicts = judge(runs, differences);
    printReport(verdicts, runs);
    const bad = verdicts.filter((v) => v.missing !== undefined || v.undocumented.length > 0);
    const services = scenarios.reduce((n, s) => n + s.objects.services.length, 0);
    log(`${scenarios.length} scenario(s), ${services} services, ${verdicts.length} comparison(s): ${bad.length === 0 ? 'no undocumented difference' : `${bad.length} with undocumented differences or missing dumps`}`);
    console.log(`fidelity: ${verdicts.length - bad.length} passed, ${bad.length} failed`);
    return bad.length === 0 && code === 0 ? 0 : 1;
  } finally {
    http?.close();
    await server?.stop();
    if (process.env.KUBE_IPVS_KEEP_FIDELITY !== '1') rmSync(dir, { recursive: true, force: true });
  }
}

/** Every scenario and step as the API server takes it, without a VM: a quick check of scenarios. */
async function checkScenarios(server: TestApiServer, scenarios: readonly Scenario[]): Promise<number> {
  const cluster = new ClusterState(server);
  let failed = 0;
  for (const s of scenarios) {
    try {
      await cluster.reset(s.objects, s.node);
      for (const step of s.steps ?? []) await cluster.apply(step);
      console.log(`ok   ${s.id}: ${s.objects.services.length} services, ${s.objects.slices.length} slices, ${s.steps?.length ?? 0} steps`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${s.id}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  console.log(`fidelity check: ${scenarios.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

function printReport(verdicts: readonly Verdict[], runs: readonly Run[]): void {
  for (const v of verdicts) {
    const label = `${v.scenario} step ${v.step}`;
    const times = PROXIES.map((p) => `${p} ${runs.find((r) => r.scenario.id === v.scenario && r.proxy === p)?.seconds.get(0) ?? '?'} s`).join(', ');
    if (v.missing) {
      console.log(`FAIL ${label}: no dump from ${v.missing}`);
      continue;
    }
    const status = v.undocumented.length === 0 ? 'ok  ' : 'FAIL';
    console.log(`${status} ${label}: ${v.undocumented.length} undocumented, ${v.documented.length} documented difference(s)${v.step === 0 ? ` (first sync: ${times})` : ''}`);
    for (const d of v.undocumented) console.log(`    ${d.side === 'upstream' ? '-' : '+'} [${d.category}] ${d.line}`);
    const ids = new Map<string, number>();
    for (const d of v.documented) ids.set(d.by.id, (ids.get(d.by.id) ?? 0) + 1);
    for (const [id, n] of ids) console.log(`    documented: ${id} (${n} line${n === 1 ? '' : 's'})`);
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    log(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(125);
  },
);
