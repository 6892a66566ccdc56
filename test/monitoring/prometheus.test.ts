// deploy/monitoring against a real Prometheus (Debian's package): promtool checks the alert rules
// and runs their unit tests; then Prometheus, on loopback with a throw-away config, scrapes a
// running daemon over the in-memory kernel while things happen to it (a tampered kernel repaired,
// failing IPVS writes, an unhealthy /healthz, a Local Service without local endpoints), and every
// dashboard query and every alert expression is evaluated through its HTTP API: each must parse,
// and each must return data when the scenario gives it some.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { TRIGGER_TIME_ANNOTATION } from '../../src/cluster/tracker.js';
import { repoRoot } from '../helpers/cli.js';
import type { FakeDaemon } from '../helpers/fake-daemon.js';
import { podSlice, shopCluster, startFakeDaemon } from '../helpers/fake-daemon.js';
import { freePort } from '../helpers/net.js';
import { config, NODE, service } from '../helpers/world.js';

const PROMETHEUS = process.env['KUBE_IPVS_PROMETHEUS'] ?? '/usr/bin/prometheus';
const PROMTOOL = process.env['KUBE_IPVS_PROMTOOL'] ?? '/usr/bin/promtool';
const DIR = join(repoRoot(), 'deploy', 'monitoring');
const RULES = join(DIR, 'kube-ipvs-alerts.yaml');
const WEB = '10.96.0.10:80/TCP';

interface Rule {
  readonly alert: string;
  readonly expr: string;
}

interface Panel {
  readonly title: string;
  readonly type: string;
  readonly targets?: ReadonlyArray<{ readonly expr: string; readonly refId: string }>;
}

interface QueryAnswer {
  readonly status: 'success' | 'error';
  readonly error?: string;
  readonly data?: { readonly result: readonly unknown[] };
}

function needs(path: string, pkg: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: install Debian's ${pkg} (apt-get install ${pkg}), as .ci/run does`);
}

const alertRules = (): Rule[] => (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
const dashboard = (): { panels: Panel[]; templating: { list: Array<{ name: string; definition?: string }> } } => JSON.parse(readFileSync(join(DIR, 'kube-ipvs-dashboard.json'), 'utf8'));

/** A dashboard query as Grafana sends it for this node: variables replaced, none left over. */
function asGrafanaSends(expr: string, instance: string): string {
  const out = expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$instance', instance.replaceAll('.', '\\\\.'))
    .replaceAll('$namespace', '.*');
  assert.doesNotMatch(out, /\$/, `a variable the test does not know is left in ${out}`);
  return out;
}

describe('monitoring: alert rules and dashboard against a real Prometheus', () => {
  let d: FakeDaemon;
  let prometheus: ChildProcess | undefined;
  let api = '';
  let dir = '';
  let instance = '';
  let running = true;
  let loop: Promise<void> = Promise.resolve();

  const query = async (expr: string, time?: number): Promise<QueryAnswer> => {
    const q = new URLSearchParams({ query: expr, ...(time !== undefined ? { time: String(time) } : {}) });
    return (await (await fetch(`${api}/api/v1/query?${q}`)).json()) as QueryAnswer;
  };
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> => {
    const end = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const scrapes = async (n: number): Promise<void> => {
    // Samples of `up` in the last minute grow by one per scrape.
    const count = async (): Promise<number> => Number(((await query(`count_over_time(up{job="kube-ipvs"}[1m])`)).data?.result[0] as { value?: [number, string] } | undefined)?.value?.[1] ?? 0);
    const start = await count();
    await until(`${n} more scrapes`, async () => (await count()) >= start + n);
  };

  before(async () => {
    needs(PROMETHEUS, 'prometheus');
    needs(PROMTOOL, 'prometheus');
    // A short sync period: /healthz turns 503 after two of them with a change waiting.
    d = await startFakeDaemon({ config: { ...config('--ipvs-sync-period', '1s'), healthzBindAddress: '127.0.0.1:0', metricsBindAddress: '127.0.0.1:0' } });
    const cluster = shopCluster();
    // A Local LoadBalancer whose only endpoint is on another node.
    cluster.services.push(service('edge', { type: 'LoadBalancer', clusterIP: '10.96.0.40', externalTrafficPolicy: 'Local', healthCheckNodePort: await freePort(), ports: [{ name: 'http', port: 80, nodePort: 30040 }] }, { status: { loadBalancer: { ingress: [{ ip: '203.0.113.40' }] } } }, 'shop'));
    cluster.slices.push(podSlice('edge', 'shop', [{ name: 'http', port: 8080 }], [{ ip: '10.244.2.40', pod: 'edge-0', node: 'node-b', zone: 'eu-west-1b' }]));
    d.node.apply(cluster);
    await d.sync(true);
    instance = d.url.replace('http://', '');

    dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-prometheus-'));
    const promPort = await freePort();
    api = `http://127.0.0.1:${promPort}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [RULES],
        // The daemon on loopback is the only target: Prometheus reaches nothing else.
        scrape_configs: [{ job_name: 'kube-ipvs', static_configs: [{ targets: [instance] }] }],
      }),
    );
    prometheus = spawn(
      PROMETHEUS,
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--query.lookback-delta=1h', '--log.level=warn'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    prometheus.stderr?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
    await until('Prometheus scrapes the daemon', async () => ((await query('up{job="kube-ipvs"} == 1')).data?.result.length ?? 0) === 1).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}; prometheus said: ${log}`);
    });

    // The daemon keeps syncing while traffic is counted, as a loaded node would.
    let tick = 0;
    const probe = async (): Promise<void> => {
      // As the kubelet and a load balancer would.
      for (const path of ['/healthz', '/livez']) await fetch(`http://${d.obs.healthzAddress}${path}`).then((r) => r.arrayBuffer());
    };
    loop = (async () => {
      while (running) {
        tick++;
        d.node.ipvs.setStats(WEB, undefined, { conns: 100 * tick, inpkts: 900 * tick, outpkts: 1200 * tick, inbytes: 90_000 * tick, outbytes: 1_400_000 * tick });
        await d.sync(tick % 4 === 0);
        await probe();
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    await scrapes(3);

    // What happens to the node while Prometheus watches.
    // A pod change stamped by the EndpointSlice controller (network programming latency).
    const web = podSlice('web', 'shop', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.11', pod: 'web-7d9c5-x2kqp', node: NODE, zone: 'eu-west-1a' }, { ip: '10.244.1.19', pod: 'web-7d9c5-n3w00', node: NODE, zone: 'eu-west-1a' }]);
    web.metadata = { ...web.metadata, annotations: { [TRIGGER_TIME_ANNOTATION]: new Date(Date.now() - 800).toISOString() } };
    d.node.apply({ slices: [web] });
    await scrapes(1);
    // Someone deletes a set entry: the next full resync repairs it (drift).
    await d.node.ipset.apply([{ kind: 'del', name: 'KUBE-CLUSTER-IP', entry: '10.96.0.20,tcp:80' }]);
    // IPVS writes fail for a while.
    d.node.ipvs.setFaults({ rate: 1, seed: 9 });
    d.node.apply({ slices: [podSlice('checkout', 'shop', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.29', pod: 'checkout-5f6d8-zz1aa', node: NODE, zone: 'eu-west-1a' }])] });
    await scrapes(2);
    d.node.ipvs.setFaults(undefined);
    // A queued change that waits twice the sync period makes /healthz answer 503.
    running = false;
    await loop;
    d.obs.queued();
    await new Promise((r) => setTimeout(r, 2200));
    assert.equal((await fetch(`http://${d.obs.healthzAddress}/healthz`)).status, 503);
    running = true;
    loop = (async () => {
      while (running) {
        await d.sync(true);
        await probe();
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    await scrapes(3);
  });

  after(async () => {
    running = false;
    await loop;
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus?.once('exit', r));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await d?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('promtool accepts the rules and their unit tests pass', () => {
    const check = spawnSync(PROMTOOL, ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, new RegExp(`SUCCESS: ${alertRules().length} rules found`));
    const unit = spawnSync(PROMTOOL, ['test', 'rules', join(DIR, 'kube-ipvs-alerts.test.yaml')], { encoding: 'utf8', cwd: DIR });
    assert.equal(unit.status, 0, unit.stdout + unit.stderr);
  });

  test('Prometheus loaded every rule and evaluates each without error', async () => {
    const r = (await (await fetch(`${api}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
    const loaded = r.data.groups.flatMap((g) => g.rules);
    assert.deepEqual(loaded.map((x) => x.name).sort(), alertRules().map((x) => x.alert).sort());
    await until('every rule evaluated', async () => {
      const now = (await (await fetch(`${api}/api/v1/rules`)).json()) as typeof r;
      return now.data.groups.flatMap((g) => g.rules).every((x) => x.health === 'ok');
    });
  });

  test('every dashboard query parses and returns data from the daemon', async () => {
    const dash = dashboard();
    const problems: string[] = [];
    let queries = 0;
    for (const p of dash.panels) {
      for (const t of p.targets ?? []) {
        queries++;
        const expr = asGrafanaSends(t.expr, instance);
        const a = await query(expr);
        if (a.status !== 'success') problems.push(`${p.title} ${t.refId}: ${a.error ?? 'failed'}: ${expr}`);
        else if ((a.data?.result.length ?? 0) === 0) problems.push(`${p.title} ${t.refId}: no data: ${expr}`);
      }
    }
    assert.ok(queries >= 25, `${queries} queries`);
    assert.deepEqual(problems, []);
  });

  test('the dashboard variables find this node and its namespaces', async () => {
    const vars = dashboard().templating.list.filter((v) => v.definition);
    assert.deepEqual(vars.map((v) => v.name), ['instance', 'namespace']);
    for (const v of vars) {
      const m = /^label_values\((\w+), (\w+)\)$/.exec(v.definition ?? '');
      assert.ok(m, v.definition);
      const r = (await (await fetch(`${api}/api/v1/label/${m[2]}/values?${new URLSearchParams({ 'match[]': m[1] as string })}`)).json()) as { data: string[] };
      assert.ok(r.data.length > 0, `${v.name}: ${JSON.stringify(r.data)}`);
    }
    const ns = (await (await fetch(`${api}/api/v1/label/namespace/values?${new URLSearchParams({ 'match[]': 'kube_ipvs_service_connections_total' })}`)).json()) as { data: string[] };
    assert.deepEqual(ns.data, ['default', 'kube-system', 'shop']);
  });

  test('each alert expression parses; the scenario makes each one return data', async () => {
    const rules = alertRules();
    const byName = new Map(rules.map((r) => [r.alert, r.expr]));
    // KubeIpvsSyncStale needs time without syncs: evaluated 10 minutes after the daemon stops.
    const quietNow = new Set(['KubeIpvsSyncStale', 'KubeIpvsIptablesRestoreFailing']);
    for (const r of rules) {
      const a = await query(r.expr);
      assert.equal(a.status, 'success', `${r.alert}: ${a.error ?? ''}`);
      const firing = (a.data?.result.length ?? 0) > 0;
      if (quietNow.has(r.alert)) assert.equal(firing, false, `${r.alert} should stay quiet here`);
      else assert.ok(firing, `${r.alert} returns no data: ${r.expr}`);
    }
    const drift = (await query(byName.get('KubeIpvsDriftDetected') as string)).data?.result as Array<{ metric: Record<string, string> }>;
    assert.deepEqual(drift.map((x) => x.metric.subsystem), ['ipset']);
    const failing = (await query(byName.get('KubeIpvsSyncFailing') as string)).data?.result as Array<{ metric: Record<string, string> }>;
    assert.deepEqual(failing.map((x) => x.metric.subsystem), ['ipvs']);
    const local = (await query(byName.get('KubeIpvsServicesWithoutLocalEndpoints') as string)).data?.result as Array<{ metric: Record<string, string> }>;
    assert.deepEqual(local.map((x) => x.metric.traffic_policy), ['external']);

    running = false;
    await loop;
    const later = Date.now() / 1000 + 600;
    const stale = await query(byName.get('KubeIpvsSyncStale') as string, later);
    assert.equal(stale.status, 'success');
    assert.equal(stale.data?.result.length, 1, 'no sync for 10 minutes');
  });
});
