// --kube-api-qps / --kube-api-burst: client-go's token bucket (util/flowcontrol's
// NewTokenBucketRateLimiter over golang.org/x/time/rate): full at start with `burst` tokens, one
// token per request, `qps` tokens back per second; a request that finds none waits its turn. And
// every request kube-ipvs sends (lists, watch starts, events) waits on it, as in kube-proxy's
// clientset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { ApiConnection } from '../../src/cluster/api/connection.js';
import { loadKubeConfig } from '../../src/cluster/api/kubeconfig.js';
import { rateLimiterFor, TokenBucket, UNLIMITED, type LimiterClock, type RateLimiter } from '../../src/cluster/api/rate-limiter.js';
import { Reflector } from '../../src/cluster/api/reflector.js';
import { RestClient } from '../../src/cluster/api/rest.js';

class FakeClock implements LimiterClock {
  t = 0;
  readonly sleeps: number[] = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number): Promise<void> {
    this.sleeps.push(Math.round(ms));
    return Promise.resolve();
  }
}

test('burst requests go at once; the next wait 1/qps each, queued behind one another', async () => {
  const clock = new FakeClock();
  const b = new TokenBucket(2, 3, clock);
  for (let i = 0; i < 5; i++) await b.acquire();
  assert.deepEqual(clock.sleeps, [500, 1000]);
  // One second later two tokens came back, both already owed to the two waiting requests.
  clock.t = 1000;
  await b.acquire();
  assert.deepEqual(clock.sleeps, [500, 1000, 500]);
});

test('tokens come back up to burst, never beyond', async () => {
  const clock = new FakeClock();
  const b = new TokenBucket(5, 2, clock);
  await b.acquire();
  await b.acquire();
  clock.t = 3_600_000;
  await b.acquire();
  await b.acquire();
  await b.acquire();
  assert.deepEqual(clock.sleeps, [200]);
});

test('client-go\'s reading of the values: negative qps is no limit, 0 means 5 qps, burst 0 means 10', async () => {
  assert.equal(rateLimiterFor(-1, 10), UNLIMITED);
  const clock = new FakeClock();
  const l = rateLimiterFor(0, 0, clock);
  for (let i = 0; i < 11; i++) await l.acquire();
  assert.deepEqual(clock.sleeps, [200]);
  assert.throws(() => new TokenBucket(5, 0), /burst >= 1/);
});

/** A limiter that lets requests through only when told, recording the order of events. */
function gate(events: string[]): RateLimiter & { open(): void } {
  let release: () => void = () => undefined;
  let opened = false;
  const waiting = new Promise<void>((r) => (release = r));
  return {
    acquire: () => {
      events.push('acquire');
      return opened ? Promise.resolve() : waiting;
    },
    open: () => {
      opened = true;
      release();
    },
  };
}

async function apiServer(events: string[]): Promise<{ kc: ApiConnection; close: () => Promise<void> }> {
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    events.push(`${req.method ?? ''} ${url.pathname}${url.searchParams.get('watch') === 'true' ? ' watch' : ''}`);
    res.setHeader('Content-Type', 'application/json');
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200);
      res.write('');
      return; // held open until close
    }
    res.end(JSON.stringify({ kind: 'ServiceList', items: [], metadata: { resourceVersion: '7' } }));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const kc = loadKubeConfig({ kubeconfig: '', master: `http://127.0.0.1:${(srv.address() as { port: number }).port}` });
  return {
    kc,
    close: () => {
      srv.closeAllConnections();
      return new Promise((r) => srv.close(() => r()));
    },
  };
}

test('a REST call is not sent before the limiter lets it go', async () => {
  const events: string[] = [];
  const api = await apiServer(events);
  try {
    const limiter = gate(events);
    const pending = new RestClient(api.kc, limiter).list('/api/v1/services');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(events, ['acquire']);
    limiter.open();
    await pending;
    assert.deepEqual(events, ['acquire', 'GET /api/v1/services']);
  } finally {
    await api.close();
  }
});

test('a reflector\'s list and watch each wait on the limiter first', async () => {
  const events: string[] = [];
  const api = await apiServer(events);
  const limiter = gate(events);
  limiter.open();
  const r = new Reflector({ connection: api.kc, watchTimeoutSeconds: () => 5, path: '/api/v1/services', resource: 'services', onUpsert: () => undefined, onDelete: () => undefined, onError: () => undefined, limiter });
  try {
    r.start();
    await r.waitForFirstList();
    for (let i = 0; i < 100 && !events.some((e) => e.endsWith('watch')); i++) await new Promise((res) => setTimeout(res, 10));
    assert.deepEqual(events, ['acquire', 'GET /api/v1/services', 'acquire', 'GET /api/v1/services watch']);
  } finally {
    r.stop();
    await api.close();
  }
});
