// A real kube-apiserver + etcd for tests, from the binaries test/apiserver/build.sh caches.
// Each server gets its own temp dir (certificates, tokens, etcd data) and free loopback ports,
// so several test files can run their own at once.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

const K8S_VERSION = process.env.KUBE_IPVS_K8S_VERSION ?? 'v1.36.3';
/** Token users besides `admin` (system:masters): no groups, so tests grant them RBAC themselves. */
const DEFAULT_USERS = ['kube-ipvs-node', 'limited'];
const READY_TIMEOUT_MS = 120_000;
const LOG_LIMIT = 1 << 20;

export interface TestApiServer {
  /** https://127.0.0.1:<port> (or the bind address when it is not a wildcard). */
  url: string;
  port: number;
  etcdUrl: string;
  /** Temp dir with certificates, kubeconfigs and etcd data; removed by stop(). */
  dir: string;
  caFile: string;
  adminKubeconfig: string;
  /** Kubeconfig path for a token user; `server` overrides the URL (e.g. https://10.0.2.2:port in a VM). */
  kubeconfigFor(user: string, server?: string): string;
  tokenFor(user: string): string;
  /** Stops both processes and removes the temp dir. */
  stop(): Promise<void>;
  /** SIGKILLs kube-apiserver only; etcd keeps the data. */
  kill(): Promise<void>;
  /** Starts kube-apiserver again with the same port, certificates and etcd; resolves when ready. */
  restart(): Promise<void>;
  /** Compacts etcd to its current revision, so older resourceVersions answer 410 Gone. */
  compactEtcd(): Promise<void>;
  /** etcd and kube-apiserver output so far (the last MiB of each). */
  logs(): string;
}

export interface TestApiServerOptions {
  extraSANs?: string[];
  /** --bind-address; 127.0.0.1 unless told. */
  bindAddress?: string;
  /** false → --watch-cache=false, so watches read etcd and compaction gives 410. */
  watchCache?: boolean;
  /** More token users (no groups) besides admin, kube-ipvs-node and limited. */
  users?: string[];
  /** --service-node-port-range (the API server's default, 30000-32767, holds 2,768 ports). */
  serviceNodePortRange?: string;
}

export function apiServerBinaries(): { kubeApiserver: string; etcd: string } | undefined {
  const cache = process.env.KUBE_IPVS_CACHE ?? join(homedir(), '.cache', 'kube-ipvs');
  const bin = join(cache, 'apiserver', K8S_VERSION, 'bin');
  const kubeApiserver = join(bin, 'kube-apiserver');
  const etcd = join(bin, 'etcd');
  return existsSync(kubeApiserver) && existsSync(etcd) ? { kubeApiserver, etcd } : undefined;
}

export async function startTestApiServer(opts: TestApiServerOptions = {}): Promise<TestApiServer> {
  const bins = apiServerBinaries();
  if (!bins) throw new Error(`kube-apiserver ${K8S_VERSION} is not built: run test/apiserver/build.sh`);
  const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-apiserver-'));
  const procs = new Processes(dir);
  try {
    return await start(bins, dir, procs, opts);
  } catch (err) {
    await procs.killAll();
    procs.removeDir();
    throw err;
  }
}

async function start(
  bins: { kubeApiserver: string; etcd: string },
  dir: string,
  procs: Processes,
  opts: TestApiServerOptions,
): Promise<TestApiServer> {
  const bindAddress = opts.bindAddress ?? '127.0.0.1';
  const host = bindAddress === '0.0.0.0' || bindAddress === '::' ? '127.0.0.1' : bindAddress;
  const pki = makePki(dir, ['127.0.0.1', '::1', 'localhost', '10.0.2.2', ...(opts.extraSANs ?? [])]);
  const tokens = new Map<string, string>();
  for (const user of ['admin', ...DEFAULT_USERS, ...(opts.users ?? [])]) tokens.set(user, randomBytes(16).toString('hex'));
  const tokenFile = join(dir, 'tokens.csv');
  writeFileSync(
    tokenFile,
    [...tokens].map(([u, t]) => (u === 'admin' ? `${t},admin,admin,"system:masters"` : `${t},${u},${u}`)).join('\n') + '\n',
  );

  const [clientPort, peerPort, port] = (await freePorts(3)) as [number, number, number];
  const etcdUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const etcdArgs = [
    '--name=test', `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`, `--initial-cluster=test=${peerUrl}`,
    '--log-level=warn',
    // Test data is thrown away; fsync only slows the tests down.
    '--unsafe-no-fsync',
  ];
  const etcd = procs.spawn('etcd', bins.etcd, etcdArgs);
  await waitFor('etcd', etcd, procs, async () => {
    const r = await fetch(`${etcdUrl}/health`);
    return r.ok && ((await r.json()) as { health?: string }).health === 'true';
  });

  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const issuer = 'https://kubernetes.default.svc.cluster.local';
  const apiArgs = [
    `--etcd-servers=${etcdUrl}`,
    `--bind-address=${bindAddress}`, `--secure-port=${port}`,
    `--tls-cert-file=${pki.cert}`, `--tls-private-key-file=${pki.key}`, `--client-ca-file=${pki.ca}`,
    `--token-auth-file=${tokenFile}`,
    '--authorization-mode=Node,RBAC',
    '--service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/112',
    `--service-account-issuer=${issuer}`, `--api-audiences=${issuer}`,
    `--service-account-key-file=${pki.saPub}`, `--service-account-signing-key-file=${pki.saKey}`,
    // There are no kubelets or controllers; these only cost start-up time on 2 cores.
    '--enable-priority-and-fairness=false',
    '--endpoint-reconciler-type=none',
    '--profiling=false',
    // As on a real cluster's API server: kube-proxy-like DaemonSets run privileged pods.
    '--allow-privileged=true',
    `--watch-cache=${opts.watchCache ?? true}`,
    ...(opts.serviceNodePortRange ? [`--service-node-port-range=${opts.serviceNodePortRange}`] : []),
  ];
  let api = procs.spawn('kube-apiserver', bins.kubeApiserver, apiArgs);
  const ready = (): Promise<void> =>
    waitFor('kube-apiserver', api, procs, async () => {
      const r = await rawRequest({ url, ca: pki.caPem, token: tokens.get('admin') ?? '', method: 'GET', path: '/readyz' });
      return r.status === 200;
    });
  await ready();

  const kubeconfigFor = (user: string, server = url): string => {
    const token = tokens.get(user);
    if (token === undefined) throw new Error(`no token user ${user}`);
    const file = join(dir, `kubeconfig-${user}${server === url ? '' : `-${Buffer.from(server).toString('hex')}`}`);
    if (!existsSync(file)) writeFileSync(file, kubeconfig(server, pki.caPem, user, token));
    return file;
  };
  let stopped = false;
  return {
    url, port, etcdUrl, dir, caFile: pki.ca,
    adminKubeconfig: kubeconfigFor('admin'),
    kubeconfigFor,
    tokenFor(user) {
      const t = tokens.get(user);
      if (t === undefined) throw new Error(`no token user ${user}`);
      return t;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await procs.killAll();
      procs.removeDir();
    },
    kill: () => procs.kill(api, 'SIGKILL'),
    async restart() {
      await procs.kill(api, 'SIGKILL');
      api = procs.spawn('kube-apiserver', bins.kubeApiserver, apiArgs);
      await ready();
    },
    async compactEtcd() {
      // etcd's gRPC gateway: keys are base64; "AA==" is "\0", any key gives the header revision.
      const range = await etcdPost(etcdUrl, '/v3/kv/range', { key: 'AA==' });
      const revision = (range as { header?: { revision?: string } }).header?.revision;
      if (revision === undefined) throw new Error(`etcd range answered no revision: ${JSON.stringify(range)}`);
      await etcdPost(etcdUrl, '/v3/kv/compaction', { revision, physical: true });
    },
    logs: () => procs.logs(),
  };
}

interface Pki { ca: string; caPem: string; cert: string; key: string; saKey: string; saPub: string }

/** CA, serving certificate and service-account key pair, all P-256 (fast to generate). */
function makePki(dir: string, sans: string[]): Pki {
  const p = (name: string): string => join(dir, name);
  const altNames = sans.map((s) => (/^[\d.]+$|:/.test(s) ? `IP:${s}` : `DNS:${s}`)).join(',');
  writeFileSync(
    p('openssl.cnf'),
    [
      '[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', 'CN = unused',
      '[ca]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '[server]', 'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth', `subjectAltName = ${altNames}`,
    ].join('\n') + '\n',
  );
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-config', p('openssl.cnf'), '-extensions', 'ca',
    '-subj', '/CN=kube-ipvs-test-ca', '-days', '3650', '-keyout', p('ca.key'), '-out', p('ca.crt')]);
  openssl(dir, ['req', '-new', ...ec, '-config', p('openssl.cnf'),
    '-subj', '/CN=kube-apiserver', '-keyout', p('server.key'), '-out', p('server.csr')]);
  openssl(dir, ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'),
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '365',
    '-extfile', p('openssl.cnf'), '-extensions', 'server', '-out', p('server.crt')]);
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', p('sa.key')]);
  openssl(dir, ['pkey', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub')]);
  return {
    ca: p('ca.crt'), caPem: readFileSync(p('ca.crt'), 'utf8'), cert: p('server.crt'), key: p('server.key'),
    saKey: p('sa.key'), saPub: p('sa.pub'),
  };
}

function openssl(cwd: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.error?.message ?? r.stderr}`);
}

function kubeconfig(server: string, caPem: string, user: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user } }],
    'current-context': 'test',
  });
}

/** Ports the kernel hands out for port 0 are free now and not handed out again right away. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        const s = createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve(s));
      }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    if (a === null || typeof a === 'string') throw new Error('no port');
    return a.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

async function waitFor(name: string, child: ChildProcess, procs: Processes, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${procs.tail(40)}`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${name} not ready after ${READY_TIMEOUT_MS / 1000} s:\n${procs.tail(40)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function etcdPost(etcdUrl: string, path: string, body: unknown): Promise<unknown> {
  const r = await fetch(etcdUrl + path, { method: 'POST', body: JSON.stringify(body) });
  const json: unknown = await r.json();
  if (!r.ok) throw new Error(`etcd ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

/**
 * One server's children and temp dir, killed and removed by stop() or when the process exits
 * (KUBE_IPVS_KEEP_APISERVER=1 keeps the dir for a post-mortem).
 */
class Processes {
  private static all = new Set<Processes>();
  private static hooked = false;
  private readonly children = new Set<ChildProcess>();
  private readonly out: { name: string; text: string }[] = [];

  constructor(private readonly dir: string) {
    Processes.all.add(this);
    Processes.hook();
  }

  spawn(name: string, bin: string, args: string[]): ChildProcess {
    // setpriv --pdeathsig: the child dies with this process even when it is SIGKILLed.
    const [cmd, argv] = existsSync('/usr/bin/setpriv')
      ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', bin, ...args]]
      : [bin, args];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = { name, text: '' };
    this.out.push(log);
    const append = (chunk: Buffer): void => {
      log.text += chunk.toString();
      if (log.text.length > LOG_LIMIT) log.text = log.text.slice(-LOG_LIMIT);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    child.on('error', (err) => append(Buffer.from(`spawn ${bin}: ${err.message}\n`)));
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  async kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  /** kube-apiserver first (it would log etcd errors otherwise), then etcd. */
  async killAll(): Promise<void> {
    for (const child of [...this.children].reverse()) await this.kill(child, 'SIGKILL');
  }

  removeDir(): void {
    Processes.all.delete(this);
    if (process.env.KUBE_IPVS_KEEP_APISERVER !== '1') rmSync(this.dir, { recursive: true, force: true });
  }

  logs(): string {
    return this.out.map((l) => `===== ${l.name}\n${l.text}`).join('\n');
  }

  tail(lines: number): string {
    return this.logs().split('\n').slice(-lines).join('\n');
  }

  private static hook(): void {
    if (Processes.hooked) return;
    Processes.hooked = true;
    process.once('exit', () => {
      for (const p of Processes.all) {
        for (const c of p.children) c.kill('SIGKILL');
        p.removeDir();
      }
    });
  }
}

export interface ApiResponse<T = unknown> {
  status: number;
  /** Parsed JSON (the text when it is not JSON); a watch becomes the array of its events. */
  body: T;
  text: string;
}

/**
 * One request as `user` (admin unless told). PATCH bodies are sent as merge patches. A watch
 * (`?watch=1`) resolves when the server ends the stream, so give it `timeoutSeconds`.
 */
export async function apiRequest<T = unknown>(
  server: TestApiServer,
  method: string,
  path: string,
  body?: unknown,
  user = 'admin',
): Promise<ApiResponse<T>> {
  const r = await rawRequest({
    url: server.url, ca: readFileSync(server.caFile, 'utf8'), token: server.tokenFor(user), method, path, body,
  });
  const watch = ['1', 'true'].includes(new URL(path, server.url).searchParams.get('watch') ?? '');
  return { status: r.status, body: parseBody(r.text, watch && r.status === 200) as T, text: r.text };
}

/** JSON, or for a watch one JSON event per line (the Content-Type does not say which). */
function parseBody(text: string, watch: boolean): unknown {
  try {
    if (watch) {
      return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
    }
    return text.trim() === '' ? undefined : JSON.parse(text);
  } catch {
    return text;
  }
}

function rawRequest(o: {
  url: string; ca: string; token: string; method: string; path: string; body?: unknown;
}): Promise<{ status: number; text: string }> {
  const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
  const headers: Record<string, string> = { Authorization: `Bearer ${o.token}`, Accept: 'application/json' };
  if (payload !== undefined) {
    headers['Content-Type'] = o.method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
  }
  return new Promise((resolve, reject) => {
    const req = request(new URL(o.path, o.url), { method: o.method, ca: o.ca, headers, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${o.method} ${o.path}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
