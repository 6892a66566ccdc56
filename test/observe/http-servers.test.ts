// Starting the healthz and metrics servers: bind addresses as kube-proxy's flags take them, and
// bind failures as errors that tell the operator which flag to change.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/model/clock.js';
import { parseBindAddress } from '../../src/observe/bind-address.js';
import { BindError, startHealthzServer, startMetricsServer } from '../../src/observe/http-servers.js';
import type { RunningServer } from '../../src/observe/http-servers.js';
import { ProxyHealth } from '../../src/observe/proxy-health.js';
import { ProxyMetrics } from '../../src/observe/metrics.js';
import { get, probe } from './http-client.js';

const servers: RunningServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const health = new ProxyHealth({ clock: new ManualClock(), syncPeriodMs: 30_000, families: ['IPv4'] });
const metrics = new ProxyMetrics({ families: ['IPv4'], defaultMetrics: false });

describe('bind addresses', () => {
  test('host:port, [v6]:port and :port parse; "" disables', () => {
    assert.deepEqual(parseBindAddress('healthz-bind-address', '0.0.0.0:10256'), { host: '0.0.0.0', port: 10256 });
    assert.deepEqual(parseBindAddress('metrics-bind-address', '[::1]:10249'), { host: '::1', port: 10249 });
    assert.deepEqual(parseBindAddress('healthz-bind-address', ':10256'), { host: undefined, port: 10256 });
    assert.deepEqual(parseBindAddress('healthz-bind-address', 'localhost:1'), { host: 'localhost', port: 1 });
    assert.equal(parseBindAddress('healthz-bind-address', ''), undefined);
  });

  test('anything else is rejected naming the flag', () => {
    for (const bad of ['10256', '0.0.0.0', '::1:10249', '[::1]', '[10.0.0.1]:80', '1.2.3.4:65536', '1.2.3.4:x', 'a b:1']) {
      assert.throws(() => parseBindAddress('metrics-bind-address', bad), /--metrics-bind-address/, bad);
    }
  });
});

describe('starting the servers', () => {
  test('the metrics server listens on [::1]', async () => {
    const srv = await startMetricsServer('[::1]:0', metrics);
    assert.ok(srv);
    servers.push(srv);
    assert.equal(srv.address, `[::1]:${srv.port}`);
    assert.equal((await get('::1', srv.port, '/proxyMode')).body, 'ipvs');
  });

  test('a port in use is a BindError naming the flag, the address and what to do', async () => {
    const first = await startHealthzServer('127.0.0.1:0', health);
    assert.ok(first);
    servers.push(first);
    const address = `127.0.0.1:${first.port}`;
    await assert.rejects(startHealthzServer(address, health), (e: unknown) => {
      assert.ok(e instanceof BindError);
      assert.equal(e.code, 'EADDRINUSE');
      assert.equal(e.flag, 'healthz-bind-address');
      assert.match(e.message, new RegExp(`^--healthz-bind-address ${address}: cannot listen: address already in use; `));
      assert.match(e.message, /--healthz-bind-address=""/);
      return true;
    });
    await assert.rejects(startMetricsServer(address, metrics), /^BindError: --metrics-bind-address/);
  });

  test('an address not on this host is explained', async () => {
    await assert.rejects(startMetricsServer('192.0.2.1:0', metrics), (e: unknown) => {
      assert.ok(e instanceof BindError);
      assert.equal(e.code, 'EADDRNOTAVAIL');
      assert.match(e.message, /not assigned to any interface/);
      return true;
    });
  });

  test('close() stops listening', async () => {
    const srv = await startHealthzServer('127.0.0.1:0', health);
    assert.ok(srv);
    assert.equal((await get('127.0.0.1', srv.port, '/healthz')).status, 200);
    await srv.close();
    assert.equal(await probe('127.0.0.1', srv.port), 'ECONNREFUSED');
  });
});
