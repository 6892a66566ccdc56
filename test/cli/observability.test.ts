// The daemon's observability wired to a sync loop over the fake kernel: /metrics carries the
// sync and network-programming figures and per-service IPVS counters labelled with the owning
// service, /healthz follows syncs, and an eTP=Local LoadBalancer's health-check port answers with
// its local endpoint count.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { BindHardFail, localReadyEndpoints, parseServicePortKey, startObservability } from '../../src/cli/observability.js';
import type { EventTarget } from '../../src/cluster/api/events.js';
import { TRIGGER_TIME_ANNOTATION } from '../../src/cluster/tracker.js';
import { createLogger } from '../../src/observe/log.js';
import { fakeNode } from '../helpers/fake-dataplane.js';
import { freePort } from '../helpers/net.js';
import { config, NODE, service, slice } from '../helpers/world.js';

function fetchText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('observability wired to the sync loop', () => {
  test('service port keys split into the labels of the per-service counters', () => {
    assert.deepEqual(parseServicePortKey('shop/web:http/TCP'), { namespace: 'shop', service: 'web', port: 'http', protocol: 'TCP' });
    assert.deepEqual(parseServicePortKey('default/dns/UDP'), { namespace: 'default', service: 'dns', port: '', protocol: 'UDP' });
    assert.equal(parseServicePortKey('garbage'), undefined);
  });

  test('/metrics, /healthz and a health-check node port after real syncs', async () => {
    const hcPort = await freePort();
    const cfg = { ...config(), healthzBindAddress: '127.0.0.1:0', metricsBindAddress: '127.0.0.1:0' };
    const n = fakeNode({ config: cfg });
    const events: Array<{ target: EventTarget; reason: string }> = [];
    const logs: string[] = [];
    const obs = await startObservability({
      config: cfg,
      log: createLogger('text', (l) => void logs.push(l)),
      dataplane: n.dataplane,
      tracker: n.tracker,
      events: { warn: (target, reason) => void events.push({ target, reason }) },
      nodeEligible: () => true,
      ownerOf: (k) => n.proxier.virtualServerOwner(k),
    });
    try {
      const stamp = new Date(Date.now() - 1500).toISOString();
      const webSlice = slice('web', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2', node: NODE }]);
      webSlice.metadata = { ...webSlice.metadata, annotations: { [TRIGGER_TIME_ANNOTATION]: stamp } };
      const lb = service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.60', externalTrafficPolicy: 'Local', healthCheckNodePort: hcPort, ports: [{ name: 'http', port: 80, nodePort: 30060 }] }, { status: { loadBalancer: { ingress: [{ ip: '203.0.113.60' }] } } });
      n.apply({ services: [service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] }), lb], slices: [webSlice, slice('lb', [{ name: 'http', port: 80 }], [{ ip: '10.244.1.7', node: NODE }])] });
      obs.queued();
      const r = await n.proxier.sync();
      assert.ok(r.ok);
      obs.synced(r);
      n.ipvs.setStats('10.96.0.10:80/TCP', undefined, { conns: 7, inpkts: 70, outpkts: 60, inbytes: 7000, outbytes: 6000 });

      const metricsUrl = `http://${obs.metricsAddress}/metrics`;
      const m = (await fetchText(metricsUrl)).body;
      assert.match(m, /kubeproxy_sync_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} 1/);
      assert.match(m, /kubeproxy_network_programming_duration_seconds_count\{ip_family="IPv4"\} 1/);
      assert.match(m, /kubeproxy_sync_proxy_rules_endpoint_changes_total 2/);
      assert.match(m, /kube_ipvs_service_connections_total\{[^}]*namespace="default"[^}]*service="web"[^}]*\} 7/);
      assert.match((await fetchText(`http://${obs.metricsAddress}/proxyMode`)).body, /^ipvs$/);

      const h = await fetchText(`http://${obs.healthzAddress}/healthz`);
      assert.equal(h.status, 200);
      assert.equal((JSON.parse(h.body) as { healthy: boolean }).healthy, true);

      let hc: { status: number; body: string } | undefined;
      for (let i = 0; i < 50 && hc?.status !== 200; i++) {
        hc = await fetchText(`http://127.0.0.1:${hcPort}/`).catch(() => undefined);
        if (hc?.status !== 200) await new Promise((res) => setTimeout(res, 20));
      }
      assert.equal(hc?.status, 200);
      assert.deepEqual(JSON.parse(hc?.body ?? '{}'), { service: { namespace: 'default', name: 'lb' }, localEndpoints: 1, serviceProxyHealthy: true });

      // The local endpoint moves to another node: the health check answers 503 with 0.
      n.apply({ slices: [slice('lb', [{ name: 'http', port: 80 }], [{ ip: '10.244.2.7', node: 'node-b' }])] });
      const r2 = await n.proxier.sync();
      obs.synced(r2);
      assert.deepEqual([...localReadyEndpoints(n.tracker, ['default/lb'], NODE)], [['default/lb', 0]]);
      let after: { status: number; body: string } | undefined;
      for (let i = 0; i < 50 && after?.status !== 503; i++) {
        after = await fetchText(`http://127.0.0.1:${hcPort}/`);
        if (after.status !== 503) await new Promise((res) => setTimeout(res, 20));
      }
      assert.equal(after?.status, 503);
      assert.equal((JSON.parse(after?.body ?? '{}') as { localEndpoints: number }).localEndpoints, 0);
      assert.deepEqual(events, [], 'no event while the port binds');
    } finally {
      await obs.close();
    }
  });

  test('--service-metrics=false: no per-service families on /metrics, and no kernel read for them', async () => {
    const cfg = { ...config(), healthzBindAddress: '127.0.0.1:0', metricsBindAddress: '127.0.0.1:0' };
    const n = fakeNode({ config: cfg });
    let listings = 0;
    const list = n.ipvs.listServices.bind(n.ipvs);
    n.ipvs.listServices = () => {
      listings++;
      return list();
    };
    const obs = await startObservability({
      config: cfg,
      log: createLogger('text', () => undefined),
      dataplane: n.dataplane,
      tracker: n.tracker,
      events: { warn: () => undefined },
      nodeEligible: () => true,
      ownerOf: (k) => n.proxier.virtualServerOwner(k),
      serviceMetrics: false,
    });
    try {
      n.apply({ services: [service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] })], slices: [slice('web', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2' }])] });
      const r = await n.proxier.sync();
      obs.synced(r);
      n.ipvs.setStats('10.96.0.10:80/TCP', undefined, { conns: 7, inpkts: 70, outpkts: 60, inbytes: 7000, outbytes: 6000 });
      const before = listings;
      const m = (await fetchText(`http://${obs.metricsAddress}/metrics`)).body;
      assert.match(m, /kubeproxy_sync_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} 1/, 'the rest of /metrics is there');
      assert.doesNotMatch(m, /kube_ipvs_service_/);
      assert.equal(listings, before, 'the scrape did not list the virtual servers');
    } finally {
      await obs.close();
    }
  });

  test('health-check node ports listen only on the --nodeport-addresses addresses', async () => {
    // 127.0.0.2 reaches a wildcard listener but not one on 127.0.0.1 only: the probe tells them apart.
    const probeVia = async (host: string, port: number): Promise<number | string> => {
      for (let i = 0; ; i++) {
        const r = await fetchText(`http://${host}:${port}/`).then((x) => x.status, (e: NodeJS.ErrnoException) => e.code ?? 'error');
        if (r !== 'ECONNREFUSED' || i >= 25) return r;
        await new Promise((res) => setTimeout(res, 20));
      }
    };
    for (const [flags, via2] of [[[], 200], [['--nodeport-addresses=127.0.0.1/32'], 'ECONNREFUSED']] as const) {
      const hcPort = await freePort();
      const cfg = { ...config(...flags), healthzBindAddress: '', metricsBindAddress: '' };
      const n = fakeNode({ config: cfg });
      const obs = await startObservability({ config: cfg, log: createLogger('text', () => undefined), dataplane: n.dataplane, tracker: n.tracker, events: { warn: () => undefined }, nodeEligible: () => true, ownerOf: () => undefined });
      try {
        const lb = service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.62', externalTrafficPolicy: 'Local', healthCheckNodePort: hcPort, ports: [{ name: 'http', port: 80, nodePort: 30062 }] });
        n.apply({ services: [lb], slices: [slice('lb', [{ name: 'http', port: 80 }], [{ ip: '10.244.1.9', node: NODE }])] });
        const r = await n.proxier.sync();
        assert.ok(r.ok);
        obs.synced(r);
        assert.equal(await probeVia('127.0.0.1', hcPort), 200, `${flags.join(' ') || 'default'}: 127.0.0.1 answers`);
        assert.equal(await probeVia('127.0.0.2', hcPort), via2, `${flags.join(' ') || 'default'}: via 127.0.0.2`);
      } finally {
        await obs.close();
      }
    }
  });

  test('a health-check node port that cannot bind becomes a Warning event on the Service', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, r));
    const taken = (blocker.address() as { port: number }).port;
    const cfg = { ...config(), healthzBindAddress: '', metricsBindAddress: '' };
    const n = fakeNode({ config: cfg });
    const events: Array<{ target: EventTarget; reason: string; message: string }> = [];
    const obs = await startObservability({
      config: cfg,
      log: createLogger('text', () => undefined),
      dataplane: n.dataplane,
      tracker: n.tracker,
      events: { warn: (target, reason, message) => void events.push({ target, reason, message }) },
      nodeEligible: () => true,
      ownerOf: () => undefined,
    });
    try {
      const lb = service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.61', externalTrafficPolicy: 'Local', healthCheckNodePort: taken, ports: [{ name: 'http', port: 80, nodePort: 30061 }] });
      n.apply({ services: [lb], slices: [slice('lb', [{ name: 'http', port: 80 }], [{ ip: '10.244.1.8', node: NODE }])] });
      obs.synced(await n.proxier.sync());
      for (let i = 0; i < 100 && events.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
      assert.equal(events[0]?.reason, 'FailedToStartServiceHealthcheck');
      assert.deepEqual(events[0]?.target, { namespace: 'default', name: 'lb' });
      assert.match(events[0]?.message ?? '', new RegExp(`port ${taken}`));
    } finally {
      await obs.close();
      blocker.close();
    }
  });
});

describe('--bind-address-hard-fail', () => {
  // kube-proxy v1.36.3 (cmd/kube-proxy/app/server.go serveHealthz/serveMetrics): with
  // BindAddressHardFail a server that fails to listen sends its error to the run loop, which
  // exits; without it the server is retried every 5 s.
  const start = async (hardFail: boolean, healthz: string, logged: string[]) => {
    const cfg = { ...config(), healthzBindAddress: healthz, metricsBindAddress: '', bindAddressHardFail: hardFail };
    const n = fakeNode({ config: cfg });
    return startObservability({
      config: cfg,
      log: createLogger('text', (l) => void logged.push(l)),
      dataplane: n.dataplane,
      tracker: n.tracker,
      events: { warn: () => undefined },
      nodeEligible: () => true,
      ownerOf: () => undefined,
    });
  };

  test('a taken healthz address: BindHardFail naming the server when set; logged and retried when not', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = `127.0.0.1:${(blocker.address() as { port: number }).port}`;
    try {
      const logged: string[] = [];
      // A wrongly started one is closed, so its retry timer cannot keep the test alive.
      const hard = start(true, taken, logged).then(async (o) => {
        await o.close();
        return o;
      });
      await assert.rejects(hard, (e: unknown) => e instanceof BindHardFail && /healthz server failed/.test(e.message));
      const soft: string[] = [];
      const obs = await start(false, taken, soft);
      try {
        assert.equal(obs.healthzAddress, undefined);
        assert.match(soft.join(''), /retryIn=5s/);
      } finally {
        await obs.close();
      }
    } finally {
      blocker.close();
    }
  });

  test('a free address binds either way', async () => {
    const obs = await start(true, '127.0.0.1:0', []);
    try {
      assert.match(obs.healthzAddress ?? '', /^127\.0\.0\.1:\d+$/);
    } finally {
      await obs.close();
    }
  });
});
