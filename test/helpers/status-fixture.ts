// A node's /status at fixed times, from real syncs over the in-memory kernel (manual clock): the
// shop cluster synced, traffic counted on web, a web pod removed while it holds connections (it
// drains), 30 s later a full resync that repairs a deleted set entry (drift), then a change whose
// IPVS writes all fail. The document every status golden renders.
import { nodeStatus } from '../../src/cli/node-status.js';
import type { StatusDocument, StatusFilter } from '../../src/observe/status-document.js';
import { SyncHistory } from '../../src/observe/sync-history.js';
import type { SyncOutcome } from '../../src/sync/proxier.js';
import { DEFAULT_DRAIN_TIMEOUT_MS } from '../../src/sync/proxier.js';
import { fakeNode } from './fake-dataplane.js';
import type { FakeNode } from './fake-dataplane.js';
import { podSlice, shopCluster } from './fake-daemon.js';
import { config, NODE } from './world.js';

export const T0 = Date.parse('2025-06-01T12:00:00.000Z');

export const WEB_VS = '10.96.0.10:80/TCP';

export interface StatusFixture {
  readonly node: FakeNode;
  readonly history: SyncHistory;
  readonly last: SyncOutcome;
  status(filter?: Partial<StatusFilter>): Promise<StatusDocument>;
}

export async function statusFixture(): Promise<StatusFixture> {
  const cfg = config();
  const n = fakeNode({ config: cfg });
  const history = new SyncHistory();
  const record = (r: SyncOutcome, at: number): void =>
    history.record({ at, full: r.full, ok: r.ok, durationMs: r.durationMs, changedServices: r.changedServices, changes: r.report.summary(), failures: r.report.failures, drift: r.report.drift });

  const cluster = shopCluster();
  n.apply(cluster);
  record(await n.proxier.sync(), T0);

  // What traffic leaves in the kernel: counters and rates on web, connections on two of its pods.
  n.ipvs.setStats(WEB_VS, undefined, { conns: 5120, inpkts: 90000, outpkts: 120000, inbytes: 9_500_000, outbytes: 150_000_000, cps: 14, inpps: 260, outpps: 310, inbps: 28_000, outbps: 410_000 });
  n.ipvs.setStats(WEB_VS, '10.244.1.11:8080', { conns: 2600, cps: 8, inpps: 150, outpps: 180, inbps: 16_000, outbps: 230_000 });
  n.ipvs.setStats(WEB_VS, '10.244.1.13:8080', { conns: 2520, cps: 6, inpps: 110, outpps: 130, inbps: 12_000, outbps: 180_000 });
  n.ipvs.setConnections(WEB_VS, '10.244.1.11:8080', { active: 4, inactive: 11, persist: 0 });
  n.ipvs.setConnections(WEB_VS, '10.244.1.13:8080', { active: 2, inactive: 3, persist: 0 });

  // The pod web-7d9c5-qw4lb (10.244.1.13) goes away: it drains at weight 0.
  const web = cluster.slices[0];
  if (!web) throw new Error('shop cluster without web');
  n.apply({ slices: [podSlice('web', 'shop', [{ name: 'http', port: 8080 }], [
    { ip: '10.244.1.11', pod: 'web-7d9c5-x2kqp', node: NODE, zone: 'eu-west-1a' },
    { ip: '10.244.2.12', pod: 'web-7d9c5-m8rtz', node: 'node-b', zone: 'eu-west-1b' },
  ])] });
  record(await n.proxier.sync(), T0 + 5_000);

  // 30 s later someone deletes a set entry; the periodic full resync puts it back.
  await n.clock.advance(30_000);
  await n.ipset.apply([{ kind: 'del', name: 'KUBE-CLUSTER-IP', entry: '10.96.0.20,tcp:80' }]);
  record(await n.proxier.sync({ full: true }), T0 + 35_000);

  // A new checkout pod while every IPVS write fails.
  n.ipvs.setFaults({ rate: 1, seed: 1 });
  n.apply({ slices: [podSlice('checkout', 'shop', [{ name: 'http', port: 8080 }], [
    { ip: '10.244.1.21', pod: 'checkout-5f6d8-ab1cd', node: NODE, zone: 'eu-west-1a' },
    { ip: '10.244.2.22', pod: 'checkout-5f6d8-ef2gh', node: 'node-b', zone: 'eu-west-1b' },
    { ip: '10.244.1.23', pod: 'checkout-5f6d8-kl3mn', node: NODE, zone: 'eu-west-1a' },
  ])] });
  const last = await n.proxier.sync();
  record(last, T0 + 36_000);
  n.ipvs.setFaults(undefined);

  return {
    node: n,
    history,
    last,
    status: (filter = {}) =>
      nodeStatus(
        {
          config: cfg,
          dataplane: n.dataplane,
          tracker: n.tracker,
          history,
          families: ['IPv4'],
          state: () => last.state,
          ownerOf: (k) => n.proxier.virtualServerOwner(k),
          draining: () => n.proxier.drainingServers(),
          drainTimeoutMs: DEFAULT_DRAIN_TIMEOUT_MS,
          clock: n.clock,
          healthy: () => true,
          eligible: () => true,
          source: () => ({ kind: 'api', target: 'https://10.0.0.1:6443', connected: true, failing: [] }),
          now: () => T0 + 37_000,
        },
        { nodePort: false, draining: false, ...filter },
      ),
  };
}
