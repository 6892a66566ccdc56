// Property: after any sequence of Service/EndpointSlice adds, updates and deletes, the incremental
// planner (fed only the services the tracker reports as changed) equals a fresh full plan, and
// nothing of a deleted service is left in any virtual server, ipset entry or bound address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { ClusterTracker } from '../../src/cluster/tracker.js';
import type { DesiredState } from '../../src/plan/desired.js';
import type { PlanDelta } from '../../src/plan/planner.js';
import { Planner, planCluster } from '../../src/plan/planner.js';
import { renderJson } from '../../src/plan/render.js';
import { config, NODE, node, service, slice } from '../helpers/world.js';

const SERVICES = 5;
const EXTERNAL_POOL = ['198.51.100.1', '198.51.100.2'];
const POD_POOL = ['10.244.1.1', '10.244.1.2', '10.244.2.1', '10.244.2.2', '10.244.3.1'];

const clusterIP = (i: number): string => `10.96.0.${10 + i}`;
const nodePort = (i: number): number => 30000 + i;

const serviceArb = (i: number): fc.Arbitrary<V1Service> =>
  fc
    .record({
      type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer'),
      etpLocal: fc.boolean(),
      itpLocal: fc.boolean(),
      sticky: fc.boolean(),
      externalIPs: fc.subarray(EXTERNAL_POOL),
      ranges: fc.subarray(['198.51.100.0/24', '192.168.0.0/16']),
      udp: fc.boolean(),
      port: fc.constantFrom(80, 443),
    })
    .map((r) =>
      service(
        `svc${i}`,
        {
          type: r.type,
          clusterIP: clusterIP(i),
          externalIPs: r.externalIPs,
          ...(r.type !== 'ClusterIP' ? { externalTrafficPolicy: r.etpLocal ? 'Local' : 'Cluster' } : {}),
          ...(r.type === 'LoadBalancer' ? { healthCheckNodePort: r.etpLocal ? 32000 + i : undefined, loadBalancerSourceRanges: r.ranges } : {}),
          internalTrafficPolicy: r.itpLocal ? 'Local' : 'Cluster',
          sessionAffinity: r.sticky ? 'ClientIP' : 'None',
          ports: [
            { name: 'p', port: r.port, protocol: 'TCP', ...(r.type !== 'ClusterIP' ? { nodePort: nodePort(i) } : {}) },
            ...(r.udp ? [{ name: 'u', port: 53, protocol: 'UDP' }] : []),
          ],
        },
        r.type === 'LoadBalancer' ? { status: { loadBalancer: { ingress: [{ ip: `203.0.113.${i}` }] } } } : {},
      ),
    );

const sliceArb = (i: number): fc.Arbitrary<V1EndpointSlice> =>
  fc
    .array(
      fc.record({
        ip: fc.constantFrom(...POD_POOL),
        local: fc.boolean(),
        ready: fc.boolean(),
        terminating: fc.boolean(),
      }),
      { maxLength: 4 },
    )
    .map((eps) =>
      slice(
        `svc${i}`,
        [{ name: 'p', port: 8080 }, { name: 'u', port: 53, protocol: 'UDP' }],
        eps.map((e) => ({ ip: e.ip, node: e.local ? NODE : 'node-b', ready: e.ready, serving: e.ready || e.terminating, terminating: e.terminating })),
        { name: `svc${i}-slice` },
      ),
    );

interface Flat {
  vs: Map<string, string>;
  sets: Map<string, string>;
  addresses: string;
  rules: string;
}

function flatten(s: DesiredState): Flat {
  const f: Flat = { vs: new Map(), sets: new Map(), addresses: '', rules: '' };
  for (const fam of s.families) {
    for (const [k, v] of fam.virtualServers) f.vs.set(`${fam.family}|${k}`, JSON.stringify(v));
    for (const set of fam.ipsets) f.sets.set(set.spec.name, JSON.stringify([...set.entries].sort()));
    f.addresses += JSON.stringify([...fam.boundAddresses].sort());
    f.rules += JSON.stringify(fam.iptables);
  }
  return f;
}

/** Every difference between two full plans must be announced by the delta. */
function assertDeltaCovers(before: Flat, after: Flat, delta: PlanDelta, step: number): void {
  for (const k of new Set([...before.vs.keys(), ...after.vs.keys()])) {
    if (before.vs.get(k) === after.vs.get(k)) continue;
    const [family, key] = k.split('|') as ['IPv4' | 'IPv6', string];
    assert.ok(delta.virtualServers.get(family)?.has(key), `step ${step}: ${k} changed but is not in the delta`);
  }
  for (const [name, entries] of after.sets) {
    if (before.sets.get(name) === entries) continue;
    const touched = delta.ipsets.get(name);
    assert.ok(touched, `step ${step}: set ${name} changed but is not in the delta`);
    // Entry level: a partial sync only looks at the listed entries, so each difference must be there.
    const was = new Set<string>(JSON.parse(before.sets.get(name) ?? '[]') as string[]);
    const now = new Set<string>(JSON.parse(entries) as string[]);
    for (const e of [...was, ...now]) {
      if (was.has(e) !== now.has(e)) assert.ok(touched.has(e), `step ${step}: ${name} entry ${e} changed but is not in the delta`);
    }
  }
  if (before.addresses !== after.addresses) assert.ok(delta.addressesChanged, `step ${step}: addresses changed unannounced`);
  if (before.rules !== after.rules) assert.ok(delta.rulesChanged, `step ${step}: rules changed unannounced`);
}

type Op =
  | { kind: 'upsertService'; i: number; svc: V1Service }
  | { kind: 'deleteService'; i: number }
  | { kind: 'upsertSlice'; i: number; slice: V1EndpointSlice }
  | { kind: 'deleteSlice'; i: number };

const opArb: fc.Arbitrary<Op> = fc.integer({ min: 0, max: SERVICES - 1 }).chain((i) =>
  fc.oneof(
    serviceArb(i).map((svc): Op => ({ kind: 'upsertService', i, svc })),
    fc.constant<Op>({ kind: 'deleteService', i }),
    sliceArb(i).map((s): Op => ({ kind: 'upsertSlice', i, slice: s })),
    fc.constant<Op>({ kind: 'deleteSlice', i }),
  ),
);

test('incremental plan equals a full plan after every step; deleted services leave nothing', () => {
  const n = node({ addresses: ['192.168.0.10', '10.0.0.5'] });
  const cfg = config('--cluster-cidr=10.244.0.0/16');
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), fc.integer({ min: 1, max: 4 }), (ops, batch) => {
      const tracker = new ClusterTracker(NODE, () => {});
      const planner = new Planner({ node: n, config: cfg });
      const live = new Set<number>();
      let before = flatten(planner.state());
      ops.forEach((op, step) => {
        if (op.kind === 'upsertService') {
          tracker.upsertService(op.svc);
          live.add(op.i);
        } else if (op.kind === 'deleteService') {
          tracker.deleteService('default', `svc${op.i}`);
          live.delete(op.i);
        } else if (op.kind === 'upsertSlice') tracker.upsertEndpointSlice(op.slice);
        else tracker.deleteEndpointSlice('default', `svc${op.i}-slice`);
        // Drain in bursts, as the sync loop coalesces changes.
        if ((step + 1) % batch !== 0 && step !== ops.length - 1) return;
        const { snapshot, changed } = tracker.drain();
        const delta = planner.update(snapshot, changed);
        const after = flatten(planner.state());
        assertDeltaCovers(before, after, delta, step);
        before = after;
        const incremental = renderJson(planner.state());
        const full = renderJson(planCluster(snapshot, { node: n, config: cfg }));
        assert.equal(incremental, full, `step ${step}`);
        for (let i = 0; i < SERVICES; i++) {
          if (live.has(i)) continue;
          const gone = [clusterIP(i), `:${nodePort(i)}`, `203.0.113.${i},`, `"${32000 + i}"`];
          for (const needle of gone) assert.ok(!incremental.includes(needle), `deleted svc${i} left ${needle} at step ${step}`);
        }
      });
    }),
    { numRuns: 300 },
  );
});
