// Health-check node ports as a cloud load balancer sees them: real listeners on 127.0.0.1.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { ServiceHealthServers } from '../../src/observe/service-health.js';
import { get, probe } from './http-client.js';

const HOST = '127.0.0.1';
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  await Promise.all(cleanups.map((c) => c()));
});

function setup() {
  let healthy = true;
  const bindErrors: Array<{ service: string; port: number; code: unknown }> = [];
  const hc = new ServiceHealthServers({
    proxyHealthy: () => healthy,
    addresses: [HOST],
    onBindError: (service, port, error) => bindErrors.push({ service, port, code: (error as NodeJS.ErrnoException).code }),
  });
  cleanups.push(() => hc.close());
  return { hc, bindErrors, setHealthy: (h: boolean) => (healthy = h) };
}

/** A port that is free right now (bound then released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, HOST, r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function occupy(port: number): Promise<Server> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(port, HOST, r));
  return s;
}

function portOf(hc: ServiceHealthServers, service: string): number {
  const p = hc.ports().get(service);
  assert.ok(p, `${service} should be listening`);
  return p;
}

describe('service health-check node ports', () => {
  test('503 without local endpoints, 200 with, with kube-proxy headers and body', async () => {
    const { hc } = setup();
    await hc.syncServices(new Map([['shop/web', 0]]));
    const port = portOf(hc, 'shop/web');

    const none = await get(HOST, port, '/healthz');
    assert.equal(none.status, 503);
    assert.equal(none.headers['x-load-balancing-endpoint-weight'], '0');
    assert.deepEqual(JSON.parse(none.body), { service: { namespace: 'shop', name: 'web' }, localEndpoints: 0, serviceProxyHealthy: true });

    hc.syncEndpoints(new Map([['shop/web', 2], ['other/svc', 5]]));
    const ok = await get(HOST, port, '/any/path');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['content-type'], 'application/json');
    assert.equal(ok.headers['x-content-type-options'], 'nosniff');
    assert.equal(ok.headers['x-load-balancing-endpoint-weight'], '2');
    assert.equal(
      ok.body,
      '{\n\t"service": {\n\t\t"namespace": "shop",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}',
    );

    // A service missing from the endpoint map has no local endpoints.
    hc.syncEndpoints(new Map());
    assert.equal((await get(HOST, port)).status, 503);
  });

  test('an unhealthy proxy answers 503 even with local endpoints', async () => {
    const { hc, setHealthy } = setup();
    await hc.syncServices(new Map([['shop/api', 0]]));
    hc.syncEndpoints(new Map([['shop/api', 1]]));
    const port = portOf(hc, 'shop/api');
    setHealthy(false);
    const r = await get(HOST, port);
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.body).serviceProxyHealthy, false);
    assert.equal(JSON.parse(r.body).localEndpoints, 1);
  });

  test('ports close when their service goes away; others stay open and keep their counts', async () => {
    const { hc } = setup();
    await hc.syncServices(new Map([['a/one', 0], ['a/two', 0]]));
    hc.syncEndpoints(new Map([['a/two', 3]]));
    const one = portOf(hc, 'a/one');
    const two = portOf(hc, 'a/two');
    await hc.syncServices(new Map([['a/two', 0]]));
    assert.equal(await probe(HOST, one), 'ECONNREFUSED');
    assert.equal(hc.ports().get('a/two'), two);
    assert.equal((await get(HOST, two)).status, 200);
  });

  test('a changed port is moved: old one closed, new one open', async () => {
    const { hc } = setup();
    const [p1, p2] = [await freePort(), await freePort()];
    await hc.syncServices(new Map([['b/svc', p1]]));
    assert.equal((await get(HOST, p1)).status, 503);
    await hc.syncServices(new Map([['b/svc', p2]]));
    assert.equal(await probe(HOST, p1), 'ECONNREFUSED');
    assert.equal((await get(HOST, p2)).status, 503);
  });

  test('a port in use is reported, not thrown, and retried on the next sync', async () => {
    const { hc, bindErrors } = setup();
    const port = await freePort();
    const squatter = await occupy(port);
    await hc.syncServices(new Map([['c/busy', port], ['c/fine', 0]]));
    assert.deepEqual(bindErrors, [{ service: 'c/busy', port, code: 'EADDRINUSE' }]);
    assert.equal(hc.ports().has('c/busy'), false);
    assert.equal((await get(HOST, portOf(hc, 'c/fine'))).status, 503, 'other services are unaffected');
    // Counts for a service without an open port are dropped, as kube-proxy does.
    hc.syncEndpoints(new Map([['c/busy', 1]]));

    await new Promise<void>((r) => squatter.close(() => r()));
    await hc.syncServices(new Map([['c/busy', port], ['c/fine', 0]]));
    assert.equal(bindErrors.length, 1);
    assert.equal(hc.ports().get('c/busy'), port);
    const r = await get(HOST, port);
    assert.equal(JSON.parse(r.body).localEndpoints, 0);
  });

  test('listens on every given address, and one failing address closes the others', async () => {
    const bindErrors: string[] = [];
    const hc = new ServiceHealthServers({
      proxyHealthy: () => true,
      addresses: [HOST, '::1'],
      onBindError: (service) => bindErrors.push(service),
    });
    cleanups.push(() => hc.close());
    await hc.syncServices(new Map([['e/both', 0]]));
    const port = portOf(hc, 'e/both');
    assert.equal((await get(HOST, port)).status, 503);
    assert.equal((await get('::1', port)).status, 503);

    const busy = await freePort();
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(busy, '::1', r));
    await hc.syncServices(new Map([['e/both', 0], ['e/half', busy]]));
    assert.deepEqual(bindErrors, ['e/half']);
    assert.equal(await probe(HOST, busy), 'ECONNREFUSED', 'the IPv4 listener was closed again');
    await new Promise<void>((r) => squatter.close(() => r()));
  });

  test('new addresses reopen every port there; "0.0.0.0" and "::" share a port; none listens nowhere', async () => {
    const hc = new ServiceHealthServers({ proxyHealthy: () => true, addresses: [HOST] });
    cleanups.push(() => hc.close());
    const port = await freePort();
    await hc.syncServices(new Map([['f/x', port]]));
    assert.equal(await probe('127.0.0.2', port), 'ECONNREFUSED');
    await hc.syncServices(new Map([['f/x', port]]), ['127.0.0.2']);
    assert.equal(await probe('127.0.0.2', port), 'connected');
    assert.equal(await probe(HOST, port), 'ECONNREFUSED', 'the old address is closed');
    await hc.syncServices(new Map([['f/x', port]]), ['0.0.0.0', '::']);
    assert.equal(await probe(HOST, port), 'connected');
    assert.equal(await probe('::1', port), 'connected');
    await hc.syncServices(new Map([['f/x', port]]), []);
    assert.equal(await probe(HOST, port), 'ECONNREFUSED');
    assert.equal(await probe('::1', port), 'ECONNREFUSED');
  });

  test('close() closes every port', async () => {
    const { hc } = setup();
    await hc.syncServices(new Map([['d/x', 0]]));
    const port = portOf(hc, 'd/x');
    await hc.close();
    assert.equal(await probe(HOST, port), 'ECONNREFUSED');
    await hc.syncServices(new Map([['d/x', port]]));
    assert.equal(hc.ports().size, 0, 'closed for good');
  });
});
