// bench/startup: how fast the CLI starts, natively. Prints; asserts nothing.
//   npm run bench:startup [-- --runs N] [--entry dist/kube-ipvs.mjs]
// - `node -e 0`: the floor any Node.js command pays on this machine, measured in the same run;
// - `kube-ipvs --help`: process start to exit; CPU and peak RSS when GNU time is installed;
// - `kube-ipvs run --kubeconfig ...`: process start to its first connection to the API server (a
//   real kube-apiserver, test/helpers/apiserver.ts, behind a counting TCP relay), i.e. to its first
//   API request. The process is stopped there (this host may have no IPVS for the rest).
// Targets (issue 11): --help ≤ 0.15 s, first API request ≤ 0.3 s. On a shared machine the wall
// times move with the load: the floor's figures beside them say how much, and the CPU seconds
// (GNU time's user + sys; /proc for the running daemon) move far less.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import { startTestApiServer } from '../test/helpers/apiserver.js';
import type { TestApiServer } from '../test/helpers/apiserver.js';
import { projectRoot } from '../test/api/support.js';

interface Options {
  readonly runs: number;
  readonly entry: string;
}

function parseArgs(argv: readonly string[]): Options {
  let runs = 10;
  let entry = join(projectRoot(), 'dist', 'kube-ipvs.mjs');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') runs = Number(argv[++i]);
    else if (a === '--entry') entry = resolve(argv[++i] ?? '');
    else if (a !== '--') throw new Error(`unknown argument ${a} (see the header of bench/startup.ts)`);
  }
  if (!(runs >= 1)) throw new Error('--runs must be at least 1');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build`);
  return { runs, entry };
}

const GNU_TIME = '/usr/bin/time';

interface Sample {
  readonly wallS: number;
  readonly cpuS?: number;
  readonly maxRssMB?: number;
}

/** One run to exit, under GNU time when it is there (for CPU and peak RSS). */
function timeToExit(cmd: readonly string[]): Sample {
  const withTime = existsSync(GNU_TIME);
  const argv = withTime ? [GNU_TIME, '-f', 'KUBE_IPVS_TIME %U %S %M', ...cmd] : [...cmd];
  const t0 = performance.now();
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' });
  const wallS = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited ${r.status}: ${r.stderr.slice(-300)}`);
  const m = /KUBE_IPVS_TIME (\S+) (\S+) (\d+)/.exec(r.stderr);
  return m ? { wallS, cpuS: Number(m[1]) + Number(m[2]), maxRssMB: Number(m[3]) / 1024 } : { wallS };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

function summary(name: string, samples: readonly Sample[], target?: string): string {
  const wall = samples.map((s) => s.wallS);
  const cpu = samples.flatMap((s) => (s.cpuS === undefined ? [] : [s.cpuS]));
  const rss = samples.flatMap((s) => (s.maxRssMB === undefined ? [] : [s.maxRssMB]));
  const parts = [`wall median ${median(wall).toFixed(3)} s, min ${Math.min(...wall).toFixed(3)} s`];
  if (cpu.length > 0) parts.push(`CPU median ${median(cpu).toFixed(3)} s`);
  if (rss.length > 0) parts.push(`peak RSS ${median(rss).toFixed(0)} MB`);
  return `| ${name} | ${parts.join('; ')} | ${target ?? '—'} |`;
}

/** The CPU seconds a live process has used so far (utime + stime from /proc). */
function cpuOf(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tck = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    return (Number(f[11]) + Number(f[12])) / tck;
  } catch {
    return undefined;
  }
}

/** Spawn → the child's first TCP connection to the relay in front of the API server. */
async function timeToFirstRequest(entry: string, kubeconfig: string, connections: { onFirst?: () => void }): Promise<Sample> {
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [entry, 'run', `--kubeconfig=${kubeconfig}`, '--hostname-override=startup-bench', '--metrics-bind-address=', '--healthz-bind-address='], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`no API request within 60 s; stderr: ${stderr.slice(-500)}`));
    }, 60_000);
    connections.onFirst = () => {
      const wallS = (performance.now() - t0) / 1000;
      const cpuS = cpuOf(child.pid);
      clearTimeout(timer);
      child.kill('SIGKILL');
      child.once('exit', () => done(cpuS === undefined ? { wallS } : { wallS, cpuS }));
    };
    child.once('exit', (code) => {
      if (connections.onFirst) {
        clearTimeout(timer);
        fail(new Error(`kube-ipvs run exited ${code} before any API request: ${stderr.slice(-500)}`));
      }
    });
  });
}

/** One `run` against the API server through a fresh relay that reports the first connection. */
async function relayedRun(entry: string, server: TestApiServer, dir: string): Promise<Sample> {
  const relay = createServer();
  const sockets = new Set<Socket>();
  const connections: { onFirst?: () => void } = {};
  relay.on('connection', (c) => {
    const first = connections.onFirst;
    connections.onFirst = undefined;
    first?.();
    const upstream = connect(server.port, '127.0.0.1');
    for (const s of [c, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    c.pipe(upstream).pipe(c);
  });
  try {
    await new Promise<void>((done) => relay.listen(0, '127.0.0.1', done));
    const address = relay.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const kubeconfig = join(dir, `kubeconfig-${port}`);
    writeFileSync(kubeconfig, stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'relay', cluster: { server: `https://127.0.0.1:${port}`, 'certificate-authority': server.caFile } }],
      users: [{ name: 'admin', user: { token: server.tokenFor('admin') } }],
      contexts: [{ name: 'relay', context: { cluster: 'relay', user: 'admin' } }],
      'current-context': 'relay',
    }));
    return await timeToFirstRequest(entry, kubeconfig, connections);
  } finally {
    for (const s of sockets) s.destroy();
    relay.close();
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const load = loadavg()[0]?.toFixed(1);
  const floor: Sample[] = [];
  const help: Sample[] = [];
  for (let i = 0; i < o.runs; i++) {
    floor.push(timeToExit([process.execPath, '-e', '0']));
    help.push(timeToExit([process.execPath, o.entry, '--help']));
  }

  const server = await startTestApiServer({ bindAddress: '127.0.0.1' });
  const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-startup-'));
  const first: Sample[] = [];
  try {
    // A relay (and kubeconfig) per run: a killed run's late connections cannot count for the next.
    for (let i = 0; i < o.runs; i++) first.push(await relayedRun(o.entry, server, dir));
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`bench/startup: ${o.entry}, ${o.runs} runs each, Node ${process.version}, load average ${load} before (2 cores)\n`);
  console.log('| figure | measured | target |');
  console.log('|---|---|---|');
  console.log(summary('`node -e 0` (the floor)', floor));
  console.log(summary('`kube-ipvs --help`', help, '≤ 0.15 s'));
  console.log(summary('`kube-ipvs run`: process start → first API request', first, '≤ 0.3 s'));
}

main().catch((e: unknown) => {
  console.error(`bench/startup: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
