// The early first-services pass of start-up: it programs default/kubernetes from its own lists,
// never overlaps the first sync, and never holds it up waiting for an answer.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { startFirstServicesPass } from '../../src/cli/first-services.js';
import type { ClusterSnapshot } from '../../src/cluster/tracker.js';
import { createLogger } from '../../src/observe/log.js';
import { SyncReport } from '../../src/sync/report.js';
import { NODE, service, slice } from '../helpers/world.js';

const kubernetes = service('kubernetes', { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443 }] });
const kubernetesEps = slice('kubernetes', [{ name: 'https', port: 6443 }], [{ ip: '192.168.0.2' }], { name: 'kubernetes' });

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function setup() {
  const listed = deferred<{ services: V1Service[]; slices: V1EndpointSlice[] }>();
  const written = deferred<SyncReport | undefined>();
  const passes: ClusterSnapshot[] = [];
  const lines: string[] = [];
  const asked = { lists: 0 };
  const api = {
    listFirstServices: () => {
      asked.lists++;
      return listed.promise;
    },
    node: () => undefined,
  };
  const proxier = {
    programFirstServices: (snapshot: ClusterSnapshot) => {
      passes.push(snapshot);
      return written.promise;
    },
  };
  const pass = startFirstServicesPass(api, async () => proxier, NODE, createLogger('json', (l) => void lines.push(l)));
  return { listed, written, passes, lines, pass, asked };
}

const ticks = async (n = 20): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** Waits (up to 5 s) until `cond` holds: the pass imports modules before it lists. */
async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('startFirstServicesPass', () => {
  it('programs default/kubernetes from its own lists, and settle waits for those writes', async () => {
    const s = setup();
    await until('it lists', () => s.asked.lists === 1);
    s.listed.resolve({ services: [kubernetes], slices: [kubernetesEps] });
    await until('it writes', () => s.passes.length === 1);
    assert.deepEqual([...(s.passes[0]?.services.keys() ?? [])], ['default/kubernetes']);
    let settled = false;
    const done = s.pass.settle().then(() => void (settled = true));
    await ticks();
    assert.equal(settled, false, 'the first sync must not start while the pass writes');
    s.written.resolve(new SyncReport());
    await done;
    assert.match(s.lines.join('\n'), /programmed ahead of the whole lists/);
  });

  it('whole lists in before its own answered: settle returns at once and the pass never writes', async () => {
    const s = setup();
    await until('it lists', () => s.asked.lists === 1);
    await s.pass.settle();
    s.listed.resolve({ services: [kubernetes], slices: [kubernetesEps] });
    await ticks();
    assert.equal(s.passes.length, 0);
  });

  it('its lists failing is said at info and costs the first sync nothing', async () => {
    const s = setup();
    await until('it lists', () => s.asked.lists === 1);
    s.listed.reject(new Error('GET /api/v1/namespaces/default/services: 403 forbidden'));
    await until('it says so', () => s.lines.length === 1);
    await s.pass.settle();
    assert.equal(s.passes.length, 0);
    const entry = JSON.parse(s.lines[0] ?? '{}') as Record<string, unknown>;
    assert.equal(entry.level, 'info');
    assert.match(String(entry.error), /403 forbidden/);
  });
});
