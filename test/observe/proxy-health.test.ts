// kube-proxy's /healthz and /livez rules, through real HTTP on 127.0.0.1 with a manual clock.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/model/clock.js';
import { ProxyHealth, isNodeEligible, nodeEligibility } from '../../src/observe/proxy-health.js';
import type { NodeLike } from '../../src/observe/proxy-health.js';
import { startHealthzServer } from '../../src/observe/http-servers.js';
import type { RunningServer } from '../../src/observe/http-servers.js';
import { ProxyMetrics } from '../../src/observe/metrics.js';
import { get } from './http-client.js';

const EPOCH = Date.UTC(2025, 0, 2, 3, 4, 5); // wall time at clock 0
const SYNC_PERIOD = 30_000;

function setup(families: Array<'IPv4' | 'IPv6'> = ['IPv4']) {
  const clock = new ManualClock();
  let eligible = true;
  const health = new ProxyHealth({ clock, syncPeriodMs: SYNC_PERIOD, families, wallClock: () => EPOCH + clock.now(), nodeEligible: () => eligible });
  return { clock, health, setNodeEligible: (e: boolean) => void (eligible = e) };
}

const iso = (clockMs: number): string => new Date(EPOCH + clockMs).toISOString().replace('.000Z', 'Z');

describe('ProxyHealth rules', () => {
  test('healthy while starting up: lastUpdated is now, no status map yet', () => {
    const { health } = setup();
    const r = health.health();
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { lastUpdated: iso(0), currentTime: iso(0), nodeEligible: true, healthy: true });
  });

  test('a queued update turns unhealthy exactly at 2 × sync period, and a sync heals it', async () => {
    const { clock, health } = setup();
    health.updated(); // the sync loop starts
    await clock.advance(5_000);
    health.queuedUpdate();
    await clock.advance(2 * SYNC_PERIOD - 1);
    assert.equal(health.health().status, 200);
    assert.equal(health.isHealthy(), true);
    await clock.advance(1);
    const bad = health.health();
    assert.equal(bad.status, 503);
    assert.deepEqual(bad.body, {
      lastUpdated: iso(0),
      currentTime: iso(5_000 + 2 * SYNC_PERIOD),
      nodeEligible: true,
      healthy: false,
      status: { IPv4: { lastUpdated: iso(0), healthy: false } },
    });
    assert.equal(health.liveness().status, 503);
    health.updated();
    const good = health.health();
    assert.equal(good.status, 200);
    assert.deepEqual(good.body.status, { IPv4: { lastUpdated: iso(5_000 + 2 * SYNC_PERIOD), healthy: true } });
  });

  test('only the oldest pending update counts: more changes do not postpone the deadline', async () => {
    const { clock, health } = setup();
    health.updated();
    health.queuedUpdate();
    for (let i = 0; i < 6; i++) {
      await clock.advance(10_000);
      health.queuedUpdate();
    }
    assert.equal(health.health().status, 503);
  });

  test('a family that never synced is not judged (kube-proxy marks it updated when its loop starts)', async () => {
    const { clock, health } = setup();
    health.queuedUpdate();
    await clock.advance(10 * SYNC_PERIOD);
    assert.equal(health.health().status, 200);
  });

  test('dual-stack: one late family makes the proxy unhealthy, status says which', async () => {
    const { clock, health } = setup(['IPv4', 'IPv6']);
    health.updated();
    health.queuedUpdate('IPv6');
    await clock.advance(2 * SYNC_PERIOD);
    const r = health.health();
    assert.equal(r.status, 503);
    assert.deepEqual(r.body.status, {
      IPv4: { lastUpdated: iso(0), healthy: true },
      IPv6: { lastUpdated: iso(0), healthy: false },
    });
    health.updated('IPv6');
    assert.equal(health.health().status, 200);
  });

  test('a node being deleted fails /healthz but not /livez; body.healthy stays the proxy health', () => {
    const { health, setNodeEligible } = setup();
    health.updated();
    setNodeEligible(false);
    const h = health.health();
    assert.equal(h.status, 503);
    assert.equal(h.body.nodeEligible, false);
    assert.equal(h.body.healthy, true);
    assert.equal(h.body.lastUpdated, iso(0));
    const l = health.liveness();
    assert.equal(l.status, 200);
    assert.equal('nodeEligible' in l.body, false);
    assert.equal(health.isHealthy(), true, 'service health checks ignore the node');
  });

  test('node eligibility follows deletionTimestamp and the autoscaler taint', () => {
    assert.equal(isNodeEligible({}), true);
    assert.equal(isNodeEligible({ metadata: { deletionTimestamp: '2025-01-01T00:00:00Z' } }), false);
    assert.equal(isNodeEligible({ spec: { taints: [{ key: 'node.kubernetes.io/unschedulable' }] } }), true);
    assert.equal(isNodeEligible({ spec: { taints: [{ key: 'ToBeDeletedByClusterAutoscaler' }] } }), false);
  });

  test('eligibility is read from the current Node on every /healthz; a missing Node counts only where one is required', () => {
    let node: NodeLike | undefined = {};
    const clock = new ManualClock();
    const api = new ProxyHealth({ clock, syncPeriodMs: SYNC_PERIOD, families: ['IPv4'], nodeEligible: nodeEligibility(() => node, { required: true }) });
    const manifests = new ProxyHealth({ clock, syncPeriodMs: SYNC_PERIOD, families: ['IPv4'], nodeEligible: nodeEligibility(() => node, { required: false }) });
    assert.equal(api.health().status, 200);
    node = { spec: { taints: [{ key: 'ToBeDeletedByClusterAutoscaler' }] } };
    assert.equal(api.health().status, 503, 'no sync or event call needed: the next probe sees the taint');
    assert.equal(manifests.health().status, 503);
    node = undefined;
    // kube-proxy v1.36.3's NodeEligible: a nil Node is not eligible.
    assert.equal(api.health().status, 503);
    assert.equal(api.health().body.nodeEligible, false);
    assert.equal(manifests.health().status, 200, 'manifests need not describe the node');
  });
});

describe('healthz server', () => {
  const servers: RunningServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  test('serves /healthz and /livez with kube-proxy headers and counts answers', async () => {
    const { clock, health, setNodeEligible } = setup();
    const metrics = new ProxyMetrics({ families: ['IPv4'], defaultMetrics: false });
    const srv = await startHealthzServer('127.0.0.1:0', health, { probes: metrics });
    assert.ok(srv);
    servers.push(srv);
    assert.equal(srv.address, `127.0.0.1:${srv.port}`);
    health.updated();

    const ok = await get('127.0.0.1', srv.port, '/healthz');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['content-type'], 'application/json');
    assert.equal(ok.headers['x-content-type-options'], 'nosniff');
    assert.deepEqual(JSON.parse(ok.body), health.health().body);
    assert.deepEqual(Object.keys(JSON.parse(ok.body)), ['lastUpdated', 'currentTime', 'nodeEligible', 'healthy', 'status']);

    setNodeEligible(false);
    const deleted = await get('127.0.0.1', srv.port, '/healthz');
    assert.equal(deleted.status, 503);
    assert.equal(JSON.parse(deleted.body).nodeEligible, false);
    const live = await get('127.0.0.1', srv.port, '/livez');
    assert.equal(live.status, 200);
    assert.deepEqual(Object.keys(JSON.parse(live.body)), ['lastUpdated', 'currentTime', 'healthy', 'status']);

    health.queuedUpdate();
    await clock.advance(2 * SYNC_PERIOD);
    assert.equal((await get('127.0.0.1', srv.port, '/livez')).status, 503);
    assert.equal((await get('127.0.0.1', srv.port, '/other')).status, 404);

    const text = await metrics.metrics();
    assert.match(text, /^kubeproxy_proxy_healthz_total\{code="200"\} 1$/m);
    assert.match(text, /^kubeproxy_proxy_healthz_total\{code="503"\} 1$/m);
    assert.match(text, /^kubeproxy_proxy_livez_total\{code="200"\} 1$/m);
    assert.match(text, /^kubeproxy_proxy_livez_total\{code="503"\} 1$/m);
  });

  test('an empty bind address disables the server', async () => {
    const { health } = setup();
    assert.equal(await startHealthzServer('', health), undefined);
  });
});
