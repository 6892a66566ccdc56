// The daemon's sync loop as `run` wires it (runner, proxier, logging, metrics) over the fake
// kernel, on the runner's injected clock: tampering during endpoint churn is repaired within one
// sync period, and a sync that throws is logged with its stack, counted and retried.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSyncLoop } from '../../src/cli/daemon.js';
import type { DaemonParts, DaemonSource } from '../../src/cli/daemon.js';
import { startObservability } from '../../src/cli/observability.js';
import type { Observability } from '../../src/cli/observability.js';
import { reportingSync } from '../../src/cli/run.js';
import type { ProxyConfig } from '../../src/config/types.js';
import { createLogger } from '../../src/observe/log.js';
import { fakeNode } from '../helpers/fake-dataplane.js';
import type { FakeNode } from '../helpers/fake-dataplane.js';
import { config, NODE, service, slice } from '../helpers/world.js';
import { get } from '../observe/http-client.js';

const SYNC_PERIOD_MS = 30_000;
const MIN_SYNC_PERIOD_MS = 1_000;
/** The daemon's retry interval for these periods: min(sync period, max(min sync period, 5 s)). */
const RETRY_MS = 5_000;
const loopConfig = (): ProxyConfig => ({
  ...config(`--ipvs-sync-period=${SYNC_PERIOD_MS / 1000}s`, `--ipvs-min-sync-period=${MIN_SYNC_PERIOD_MS / 1000}s`),
  healthzBindAddress: '127.0.0.1:0',
  metricsBindAddress: '127.0.0.1:0',
});

const web = () => service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] });
const webEps = (...ips: string[]) => slice('web', [{ name: 'http', port: 8080 }], ips.map((ip) => ({ ip, node: NODE })));
// The stable service whose kernel state is tampered with while web churns.
const shop = () => service('shop', { type: 'NodePort', clusterIP: '10.96.0.30', ports: [{ name: 'http', port: 8080, nodePort: 30080 }] });
const shopEps = () => slice('shop', [{ name: 'http', port: 8080 }], [{ ip: '10.244.2.2', node: NODE }]);
const SHOP_VS = { family: 'IPv4', protocol: 'TCP', address: '10.96.0.30', port: 8080, scheduler: 'rr', flags: 0, timeout: 0 } as const;
const INPUT_JUMP = '-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER';
const SHOP_CLUSTER_IP_ENTRY = 'add KUBE-CLUSTER-IP 10.96.0.30,tcp:8080';

interface LoggedSync {
  readonly at: number;
  readonly msg: string;
  readonly full: boolean | undefined;
}

/** The loop over a fake node, with run's sync-and-report, a JSON log and real observability. */
async function startLoop(n: FakeNode, cfg: ProxyConfig, wrap: (sync: DaemonParts['sync']) => DaemonParts['sync'] = (s) => s) {
  const lines: string[] = [];
  const log = createLogger('json', (l) => void lines.push(l));
  const obs: Observability = await startObservability({ config: cfg, log, dataplane: n.dataplane, tracker: n.tracker, events: { warn: () => undefined }, nodeEligible: () => true, ownerOf: () => undefined });
  let notify: () => void = () => undefined;
  const source: DaemonSource = { start: (onChange) => void (notify = onChange), beforeResync: () => undefined, hangup: () => undefined, close: () => undefined };
  const syncs: LoggedSync[] = [];
  const inner = wrap(reportingSync(n.proxier, log, obs));
  const sync = async (full: boolean): Promise<boolean> => {
    const at = n.clock.now();
    const from = lines.length;
    try {
      return await inner(full);
    } finally {
      const line = lines.slice(from).map((l) => JSON.parse(l) as { msg: string; full?: boolean }).find((l) => l.msg === 'synced' || l.msg === 'sync failed');
      syncs.push({ at, msg: line?.msg ?? 'threw', full: line?.full });
    }
  };
  const loop = startSyncLoop({ log, source, sync, nextSyncBy: () => n.proxier.nextDrainCheckAt(), config: cfg, observer: obs, close: () => undefined, clock: n.clock });
  const logged = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const metrics = async () => {
    const [host, port] = (obs.metricsAddress ?? '').split(':');
    return (await get(host as string, Number(port), '/metrics')).body;
  };
  return { loop, syncs, logged, metrics, change: () => notify() };
}

describe('the daemon sync loop over the fake kernel', () => {
  test('tampering with a stable service during endpoint churn is repaired within one sync period', async () => {
    const cfg = loopConfig();
    const n = fakeNode({ config: cfg });
    n.apply({ services: [web(), shop()], slices: [webEps('10.244.1.2'), shopEps()] });
    const d = await startLoop(n, cfg);
    try {
      let step = 0;
      // web's second endpoint changes every 500 ms: each change asks for a (partial) sync.
      const churnUntil = async (t: number): Promise<void> => {
        while (n.clock.now() + 500 <= t) {
          await n.clock.advance(500);
          step++;
          n.apply({ slices: [webEps('10.244.1.2', `10.244.1.${10 + (step % 7)}`)] });
          d.change();
        }
      };
      const intact = () => ({
        inputJump: n.iptables.dump().includes(INPUT_JUMP),
        clusterIpEntry: n.ipset.dump().includes(`${SHOP_CLUSTER_IP_ENTRY}\n`),
        virtualServer: /-a -t 10\.96\.0\.30:8080 -r 10\.244\.2\.2:8080 /.test(n.ipvs.dump()),
      });
      const whole = { inputJump: true, clusterIpEntry: true, virtualServer: true };
      await churnUntil(30_500);
      assert.deepEqual(intact(), whole, 'programmed before the tampering');

      // Right after a full resync (due at 30 s): the worst case, the next one is a period away.
      const tamperedAt = n.clock.now();
      await n.iptables.restore(`*filter\n${INPUT_JUMP.replace('-A', '-D')}\nCOMMIT\n`);
      await n.ipset.apply([{ kind: 'del', name: 'KUBE-CLUSTER-IP', entry: '10.96.0.30,tcp:8080' }]);
      await n.ipvs.apply([{ kind: 'deleteService', vs: SHOP_VS }]);
      assert.deepEqual(intact(), { inputJump: false, clusterIpEntry: false, virtualServer: false });

      let repairedAt: number | undefined;
      while (n.clock.now() < tamperedAt + 2 * SYNC_PERIOD_MS) {
        await churnUntil(n.clock.now() + 500);
        if (repairedAt === undefined && deepEqualJson(intact(), whole)) repairedAt = n.clock.now();
      }
      const after = d.syncs.filter((s) => s.at > tamperedAt);
      const figures = `${after.filter((s) => s.full === false).length} partial and ${after.filter((s) => s.full === true).length} full syncs after the tampering at ${tamperedAt} ms; full at ${after.filter((s) => s.full).map((s) => s.at).join(',')}`;
      // A full sync is due a sync period after the last one started, and may wait minInterval
      // after a partial run that started just before (the fake's syncs take no clock time).
      assert.ok(repairedAt !== undefined && repairedAt - tamperedAt <= SYNC_PERIOD_MS + MIN_SYNC_PERIOD_MS, `repaired at ${repairedAt}: ${figures}`);
      assert.deepEqual(intact(), whole, 'still intact at the end');
      assert.ok(after.filter((s) => s.full === false).length >= 50, `the churn kept its partial syncs: ${figures}`);
      await n.clock.advance(MIN_SYNC_PERIOD_MS);
      assert.match(n.ipvs.dump(), new RegExp(`-r 10\\.244\\.1\\.${10 + (step % 7)}:8080 -m -w 1`), 'the last change is in, a minimum period later');
    } finally {
      await d.loop.stop();
    }
  });

  test('an exception inside the proxier is logged with its stack, counted, and the sync retried', async () => {
    const cfg = loopConfig();
    const n = fakeNode({ config: cfg });
    n.apply({ services: [web()], slices: [webEps('10.244.1.2')] });
    // The first (full) sync reads the node's addresses, and that read hits a bug once.
    const addresses = n.netif.addresses.bind(n.netif);
    let broken = true;
    n.netif.addresses = function brokenAddressRead() {
      if (!broken) return addresses();
      broken = false;
      throw new TypeError("Cannot read properties of undefined (reading 'ifname')");
    };
    const d = await startLoop(n, cfg);
    try {
      await n.clock.advance(RETRY_MS + 100);
      assert.deepEqual(d.syncs.map((s) => [s.at, s.msg]), [[0, 'sync failed'], [RETRY_MS, 'synced']]);
      const failure = d.logged().find((l) => l.msg === 'operation failed');
      assert.equal(failure?.subsystem, 'sync');
      assert.match(String(failure?.error), /reading 'ifname'/);
      assert.match(String(failure?.stack), /TypeError[\s\S]*brokenAddressRead/);
      assert.match(await d.metrics(), /kube_ipvs_sync_errors_total\{subsystem="sync"\} 1\n/);
      assert.match(n.ipvs.dump(), /-a -t 10\.96\.0\.10:80 -r 10\.244\.1\.2:8080 -m -w 1/, 'the retry programmed the service');
    } finally {
      await d.loop.stop();
    }
  });

  test('a retry after an exception applies the changes the failed sync had taken in', async () => {
    const cfg = loopConfig();
    const n = fakeNode({ config: cfg });
    n.apply({ services: [web()], slices: [webEps('10.244.1.2')] });
    const d = await startLoop(n, cfg);
    try {
      await n.clock.advance(10_000);
      // The change's sync is partial; make it a full one (SIGHUP) so it reads the addresses, once broken.
      const addresses = n.netif.addresses.bind(n.netif);
      n.netif.addresses = () => {
        n.netif.addresses = addresses;
        return Promise.reject(new TypeError('broken once'));
      };
      n.apply({ slices: [webEps('10.244.1.2', '10.244.1.9')] });
      d.loop.hangup();
      await n.clock.advance(RETRY_MS + 100);
      assert.deepEqual(d.syncs.slice(1).map((s) => [s.at, s.msg]), [[10_000, 'sync failed'], [10_000 + RETRY_MS, 'synced']]);
      assert.match(n.ipvs.dump(), /-a -t 10\.96\.0\.10:80 -r 10\.244\.1\.9:8080 -m -w 1/);
    } finally {
      await d.loop.stop();
    }
  });

  test('an exception outside the proxier is logged with its stack, counted, and the sync retried', async () => {
    const cfg = loopConfig();
    const n = fakeNode({ config: cfg });
    n.apply({ services: [web()], slices: [webEps('10.244.1.2')] });
    let calls = 0;
    const d = await startLoop(n, cfg, (sync) =>
      async function brokenSyncWrapper(full) {
        if (calls++ === 0) throw new RangeError('Invalid array length');
        return sync(full);
      },
    );
    try {
      await n.clock.advance(RETRY_MS + 100);
      assert.deepEqual(d.syncs.map((s) => [s.at, s.msg]), [[0, 'threw'], [RETRY_MS, 'synced']]);
      const threw = d.logged().find((l) => l.msg === 'sync threw; retrying');
      assert.equal(threw?.level, 'error');
      assert.equal(threw?.error, 'Invalid array length');
      assert.match(String(threw?.stack), /RangeError[\s\S]*brokenSyncWrapper/);
      assert.match(await d.metrics(), /kube_ipvs_sync_errors_total\{subsystem="sync"\} 1\n/);
    } finally {
      await d.loop.stop();
    }
  });
});

function deepEqualJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
