// The metrics server as Prometheus scrapes it: kube-proxy's names, types, help, buckets and
// labels; our per-service IPVS counters from a fake kernel; /proxyMode and the /healthz ping.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NETWORK_PROGRAMMING_BUCKETS, ProxyMetrics, renderServiceCounters } from '../../src/observe/metrics.js';
import type { ServiceStat } from '../../src/observe/metrics.js';
import { startMetricsServer } from '../../src/observe/http-servers.js';
import type { RunningServer } from '../../src/observe/http-servers.js';
import { get } from './http-client.js';

const servers: RunningServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(metrics: ProxyMetrics): Promise<() => Promise<string>> {
  const srv = await startMetricsServer('127.0.0.1:0', metrics);
  assert.ok(srv);
  servers.push(srv);
  return async () => {
    const r = await get('127.0.0.1', srv.port, '/metrics');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    return r.body;
  };
}

function typeOf(text: string, name: string): string | undefined {
  return new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(text)?.[1];
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('kube-proxy metrics', () => {
  test('every metric kube-proxy registers for ipvs mode is there with its type and help', async () => {
    const scrape = await serve(new ProxyMetrics({ families: ['IPv4'] }));
    const text = await scrape();
    const want: Array<[string, string, string]> = [
      ['kubeproxy_sync_proxy_rules_duration_seconds', 'histogram', 'SyncProxyRules latency in seconds'],
      ['kubeproxy_sync_full_proxy_rules_duration_seconds', 'histogram', 'SyncProxyRules latency in seconds for full resyncs'],
      ['kubeproxy_sync_partial_proxy_rules_duration_seconds', 'histogram', 'SyncProxyRules latency in seconds for partial resyncs'],
      ['kubeproxy_sync_proxy_rules_last_timestamp_seconds', 'gauge', 'The last time proxy rules were successfully synced'],
      ['kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', 'gauge', 'The last time a sync of proxy rules was queued'],
      ['kubeproxy_network_programming_duration_seconds', 'histogram', 'In Cluster Network Programming Latency in seconds'],
      ['kubeproxy_sync_proxy_rules_endpoint_changes_pending', 'gauge', 'Pending proxy rules Endpoint changes'],
      ['kubeproxy_sync_proxy_rules_endpoint_changes_total', 'counter', 'Cumulative proxy rules Endpoint changes'],
      ['kubeproxy_sync_proxy_rules_service_changes_pending', 'gauge', 'Pending proxy rules Service changes'],
      ['kubeproxy_sync_proxy_rules_service_changes_total', 'counter', 'Cumulative proxy rules Service changes'],
      ['kubeproxy_sync_proxy_rules_iptables_restore_failures_total', 'counter', 'Cumulative proxy iptables restore failures'],
      ['kubeproxy_sync_proxy_rules_no_local_endpoints_total', 'gauge', 'Number of services with a Local traffic policy and no endpoints'],
      ['kubeproxy_proxy_healthz_total', 'counter', 'Cumulative proxy healthz HTTP status'],
      ['kubeproxy_proxy_livez_total', 'counter', 'Cumulative proxy livez HTTP status'],
      ['kube_ipvs_sync_errors_total', 'counter', ''],
      ['kube_ipvs_service_connections_total', 'counter', ''],
      ['kube_ipvs_service_packets_total', 'counter', ''],
      ['kube_ipvs_service_bytes_total', 'counter', ''],
    ];
    for (const [name, type, help] of want) {
      assert.equal(typeOf(text, name), type, name);
      if (help) assert.match(text, new RegExp(`^# HELP ${name} \\[ALPHA\\] ${help}$`, 'm'));
    }
    assert.equal(typeOf(text, 'kubeproxy_sync_proxy_rules_iptables_total'), undefined, 'iptables mode only');
    // Go's process collector in kube-proxy: the same names and types, with this process's values.
    assert.equal(typeOf(text, 'process_cpu_seconds_total'), 'counter', 'default process metrics');
    for (const g of ['process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'process_max_fds']) assert.equal(typeOf(text, g), 'gauge', g);
    assert.ok((sample(text, 'process_cpu_seconds_total') ?? 0) > 0);
    assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 10 * 1024 * 1024);
    assert.ok(Math.abs((sample(text, 'process_start_time_seconds') ?? 0) - (Date.now() / 1000 - process.uptime())) < 5);
    assert.ok((sample(text, 'process_open_fds') ?? 0) >= 3);
    assert.equal(sample(text, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total{ip_family="IPv4"}'), 0);
  });

  test('the sync loop calls land in the right series', async () => {
    const metrics = new ProxyMetrics({ families: ['IPv4', 'IPv6'], defaultMetrics: false, wallClock: () => 1_700_000_000_000 });
    const scrape = await serve(metrics);
    metrics.queued(1_700_000_000_500);
    metrics.observeSync({ durationS: 0.003, full: true, at: 1_700_000_001_000 });
    metrics.observeSync({ durationS: 0.0005, full: false, family: 'IPv6' });
    metrics.observeSync({ durationS: 2, full: false, ok: false, at: 1_800_000_000_000 });
    metrics.observeNetworkProgramming(0.3, 'IPv4');
    metrics.setPending({ services: 2, endpoints: 5 });
    metrics.addChanges({ services: 3, endpoints: 7 });
    metrics.addChanges({ services: 1, endpoints: 0 });
    metrics.iptablesRestoreFailed('IPv6');
    metrics.syncError('ipset');
    metrics.syncError('ipset', 2);
    metrics.setNoLocalEndpoints({ internal: 1, external: 4, family: 'IPv4' });
    const t = await scrape();

    const v4 = '{ip_family="IPv4"}';
    const v6 = '{ip_family="IPv6"}';
    assert.equal(sample(t, `kubeproxy_sync_proxy_rules_duration_seconds_count${v4}`), 2);
    assert.equal(sample(t, `kubeproxy_sync_proxy_rules_duration_seconds_count${v6}`), 3);
    assert.equal(sample(t, 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004",ip_family="IPv4"}'), 1);
    assert.equal(sample(t, 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="16.384",ip_family="IPv4"}'), 2);
    assert.equal(sample(t, `kubeproxy_sync_full_proxy_rules_duration_seconds_count${v4}`), 1);
    assert.equal(sample(t, `kubeproxy_sync_partial_proxy_rules_duration_seconds_count${v6}`), 2);
    // A failed sync records its duration but not "last successfully synced".
    assert.equal(sample(t, `kubeproxy_sync_proxy_rules_last_timestamp_seconds${v4}`), 1_700_000_001);
    assert.equal(sample(t, `kubeproxy_sync_proxy_rules_last_timestamp_seconds${v6}`), 1_700_000_000);
    assert.equal(sample(t, `kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds${v6}`), 1_700_000_000.5);
    assert.equal(sample(t, 'kubeproxy_network_programming_duration_seconds_bucket{le="0",ip_family="IPv4"}'), 0);
    assert.equal(sample(t, 'kubeproxy_network_programming_duration_seconds_bucket{le="0.5",ip_family="IPv4"}'), 1);
    assert.equal(sample(t, `kubeproxy_network_programming_duration_seconds_count${v6}`), undefined);
    assert.equal(sample(t, 'kubeproxy_sync_proxy_rules_service_changes_pending'), 2);
    assert.equal(sample(t, 'kubeproxy_sync_proxy_rules_endpoint_changes_pending'), 5);
    assert.equal(sample(t, 'kubeproxy_sync_proxy_rules_service_changes_total'), 4);
    assert.equal(sample(t, 'kubeproxy_sync_proxy_rules_endpoint_changes_total'), 7);
    assert.equal(sample(t, `kubeproxy_sync_proxy_rules_iptables_restore_failures_total${v6}`), 1);
    assert.equal(sample(t, `kubeproxy_sync_proxy_rules_iptables_restore_failures_total${v4}`), 0);
    assert.equal(sample(t, 'kube_ipvs_sync_errors_total{subsystem="ipset"}'), 3);
    assert.equal(sample(t, 'kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="internal",ip_family="IPv4"}'), 1);
    assert.equal(sample(t, 'kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="external",ip_family="IPv4"}'), 4);
  });

  test('network programming buckets are kube-proxy\'s: 0, 0.25, 0.5, 1…59, 60…115 by 5, 120…300 by 30', () => {
    assert.equal(NETWORK_PROGRAMMING_BUCKETS.length, 81);
    assert.deepEqual(NETWORK_PROGRAMMING_BUCKETS.slice(0, 5), [0, 0.25, 0.5, 1, 2]);
    assert.deepEqual(NETWORK_PROGRAMMING_BUCKETS.slice(61, 64), [59, 60, 65]);
    assert.deepEqual(NETWORK_PROGRAMMING_BUCKETS.slice(-3), [240, 270, 300]);
  });
});

describe('per-service IPVS counters', () => {
  const dns: ServiceStat = {
    namespace: 'kube-system', service: 'kube-dns', port: 'dns', protocol: 'UDP', address: '10.96.0.10:53',
    connections: 10, packetsIn: 100, packetsOut: 90, bytesIn: 6400, bytesOut: 12800,
  };

  test('label values are escaped as the text format requires (backslash, double quote, line feed)', () => {
    const text = renderServiceCounters([{ ...dns, service: 'a"b\\c\nd' }]);
    assert.match(text, /^kube_ipvs_service_connections_total\{namespace="kube-system",service="a\\"b\\\\c\\nd",port="dns",protocol="UDP",address="10\.96\.0\.10:53"\} 10$/m);
    assert.equal(text.split('\n').filter((l) => l.startsWith('kube_ipvs_service_')).length, 5, 'one line per series');
  });

  test('are read from the source once per scrape and exposed as the kernel reports them', async () => {
    const metrics = new ProxyMetrics({ families: ['IPv4'], defaultMetrics: false, statsMaxAgeMs: 0 });
    let calls = 0;
    let stats: ServiceStat[] = [dns];
    metrics.setServiceStatsSource(async () => {
      calls++;
      return stats;
    });
    const scrape = await serve(metrics);
    const labels = 'namespace="kube-system",service="kube-dns",port="dns",protocol="UDP",address="10.96.0.10:53"';
    let t = await scrape();
    assert.equal(calls, 1);
    assert.equal(sample(t, `kube_ipvs_service_connections_total{${labels}}`), 10);
    assert.equal(sample(t, `kube_ipvs_service_packets_total{${labels},direction="in"}`), 100);
    assert.equal(sample(t, `kube_ipvs_service_packets_total{${labels},direction="out"}`), 90);
    assert.equal(sample(t, `kube_ipvs_service_bytes_total{${labels},direction="in"}`), 6400);
    assert.equal(sample(t, `kube_ipvs_service_bytes_total{${labels},direction="out"}`), 12800);

    // Cumulative kernel counters are copied, not added to.
    stats = [{ ...dns, connections: 15 }];
    t = await scrape();
    assert.equal(calls, 2);
    assert.equal(sample(t, `kube_ipvs_service_connections_total{${labels}}`), 15);

    // A virtual server that is gone disappears from the next scrape.
    stats = [];
    t = await scrape();
    assert.equal(sample(t, `kube_ipvs_service_connections_total{${labels}}`), undefined);
  });

  test('scrapes within statsMaxAgeMs of a kernel read reuse it; a later scrape reads again', async () => {
    let t = 0;
    const metrics = new ProxyMetrics({ families: ['IPv4'], defaultMetrics: false, statsMaxAgeMs: 10_000, now: () => t });
    let calls = 0;
    metrics.setServiceStatsSource(async () => {
      calls++;
      return [{ ...dns, connections: calls }];
    });
    const scrape = await serve(metrics);
    const labels = 'namespace="kube-system",service="kube-dns",port="dns",protocol="UDP",address="10.96.0.10:53"';
    assert.equal(sample(await scrape(), `kube_ipvs_service_connections_total{${labels}}`), 1);
    t = 9_999;
    assert.equal(sample(await scrape(), `kube_ipvs_service_connections_total{${labels}}`), 1);
    assert.equal(calls, 1, 'one dump of the virtual servers for both scrapes');
    t = 10_000;
    assert.equal(sample(await scrape(), `kube_ipvs_service_connections_total{${labels}}`), 2);
    assert.equal(calls, 2);
  });

  test('a failing source is reported and the scrape still succeeds', async () => {
    const errors: unknown[] = [];
    const metrics = new ProxyMetrics({ families: ['IPv4'], defaultMetrics: false, onStatsError: (e) => errors.push(e) });
    metrics.setServiceStatsSource(async () => {
      throw new Error('netlink: permission denied');
    });
    const scrape = await serve(metrics);
    const t = await scrape();
    assert.equal(errors.length, 1);
    assert.equal(typeOf(t, 'kube_ipvs_service_connections_total'), 'counter');
    assert.doesNotMatch(t, /^kube_ipvs_service_connections_total\{/m);
  });
});

describe('metrics server', () => {
  test('serves /proxyMode, the /healthz ping and 404 elsewhere', async () => {
    const metrics = new ProxyMetrics({ families: ['IPv4'], defaultMetrics: false });
    const srv = await startMetricsServer('127.0.0.1:0', metrics);
    assert.ok(srv);
    servers.push(srv);
    const mode = await get('127.0.0.1', srv.port, '/proxyMode');
    assert.equal(mode.status, 200);
    assert.equal(mode.body, 'ipvs');
    assert.equal(mode.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(mode.headers['x-content-type-options'], 'nosniff');
    assert.equal((await get('127.0.0.1', srv.port, '/healthz')).body, 'ok');
    assert.equal((await get('127.0.0.1', srv.port, '/healthz?verbose')).body, '[+]ping ok\nhealthz check passed\n');
    assert.equal((await get('127.0.0.1', srv.port, '/nope')).status, 404);
  });

  test('an empty bind address disables it', async () => {
    assert.equal(await startMetricsServer('', new ProxyMetrics({ families: ['IPv4'], defaultMetrics: false })), undefined);
  });
});
