// Change tracking as kube-proxy's trackers do it: bursts coalesce, changes that cancel out vanish.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterTracker } from '../../src/cluster/tracker.js';
import type { Problem } from '../../src/cluster/problems.js';
import { NODE, service, slice } from '../helpers/world.js';

const svc = (ip = '10.96.0.10') => service('web', { clusterIP: ip, ports: [{ name: 'http', port: 80 }] });
const eps = (ip: string) => slice('web', [{ name: 'http', port: 8080 }], [{ ip, node: NODE }]);

describe('ClusterTracker', () => {
  test('a new service and its endpoints are one change', () => {
    const t = new ClusterTracker(NODE, () => {});
    t.upsertService(svc());
    t.upsertEndpointSlice(eps('10.244.1.2'));
    assert.deepEqual(t.pending, { services: 1, endpoints: 1 });
    const c = t.drain();
    assert.deepEqual([...c.changed], ['default/web']);
    assert.equal(c.snapshot.services.get('default/web')?.ports[0]?.port, 80);
    assert.deepEqual(t.pending, { services: 0, endpoints: 0 });
  });

  test('an update and its revert before the next drain cancel out', () => {
    const t = new ClusterTracker(NODE, () => {});
    t.upsertService(svc());
    t.drain();
    t.upsertService(svc('10.96.0.99'));
    t.upsertService(svc());
    assert.deepEqual([...t.drain().changed], []);
  });

  test('add then delete before a drain is no change; delete after a drain is one', () => {
    const t = new ClusterTracker(NODE, () => {});
    t.upsertService(svc());
    t.deleteService('default', 'web');
    assert.deepEqual([...t.drain().changed], []);
    t.upsertService(svc());
    t.drain();
    t.deleteService('default', 'web');
    const c = t.drain();
    assert.deepEqual([...c.changed], ['default/web']);
    assert.equal(c.snapshot.services.size, 0);
  });

  test('an unchanged re-send (informer resync) is no change', () => {
    const t = new ClusterTracker(NODE, () => {});
    t.upsertService(svc());
    t.upsertEndpointSlice(eps('10.244.1.2'));
    t.drain();
    t.upsertService(svc());
    t.upsertEndpointSlice(eps('10.244.1.2'));
    assert.deepEqual([...t.drain().changed], []);
  });

  test('endpoint changes are reported per service; deleting the last slice removes the endpoints', () => {
    const t = new ClusterTracker(NODE, () => {});
    t.upsertService(svc());
    t.upsertEndpointSlice(eps('10.244.1.2'));
    t.drain();
    t.upsertEndpointSlice(eps('10.244.1.3'));
    assert.deepEqual([...t.drain().changed], ['default/web']);
    t.deleteEndpointSlice('default', 'web-slice');
    const c = t.drain();
    assert.deepEqual([...c.changed], ['default/web']);
    assert.equal(c.snapshot.endpoints.has('default/web'), false);
  });

  test('a malformed update is reported once and the service drops out of the snapshot', () => {
    const problems: Problem[] = [];
    const t = new ClusterTracker(NODE, (p) => problems.push(p));
    t.upsertService(svc());
    t.drain();
    t.upsertService(svc('10.96.0.999'));
    const c = t.drain();
    assert.deepEqual([...c.changed], ['default/web']);
    assert.equal(c.snapshot.services.has('default/web'), false);
    assert.equal(problems.length, 1);
    t.drain();
    assert.equal(problems.length, 1, 'not reported again without a new change');
  });

  test('a drain of named services takes in their changes alone; the rest wait for the next drain', () => {
    const problems: Problem[] = [];
    const t = new ClusterTracker(NODE, (p) => problems.push(p));
    const annotated = eps('10.244.1.2');
    annotated.metadata = { ...annotated.metadata, annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-12-05T10:00:00Z' } };
    t.upsertService(svc());
    t.upsertEndpointSlice(annotated);
    t.upsertService(service('db', { clusterIP: '10.96.0.20', ports: [{ name: 'sql', port: 5432 }] }));
    t.upsertService(service('bad', { clusterIP: '10.96.0.999', ports: [{ name: 'http', port: 80 }] }));
    const first = t.drain(['default/web', 'default/absent']);
    assert.deepEqual([...first.changed], ['default/web']);
    assert.deepEqual([first.serviceChanges, first.endpointChanges], [1, 1]);
    assert.deepEqual([...first.triggerTimes], [['default/web', Date.parse('2026-12-05T10:00:00Z')]]);
    assert.deepEqual([...first.snapshot.services.keys()], ['default/web']);
    assert.equal(problems.length, 0, 'the other services are not derived yet');
    assert.deepEqual(t.pending, { services: 2, endpoints: 0 });
    const rest = t.drain();
    assert.deepEqual([...rest.changed], ['default/db']);
    assert.deepEqual([rest.serviceChanges, rest.endpointChanges, rest.triggerTimes.size], [2, 0, 0]);
    assert.equal(problems.length, 1);
  });

  test('a new node name re-derives which endpoints are local', () => {
    const t = new ClusterTracker('other', () => {});
    t.upsertService(svc());
    t.upsertEndpointSlice(slice('web', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2', node: 'other' }, { ip: '10.244.1.2', node: NODE }]));
    t.drain();
    t.setNodeName(NODE);
    assert.deepEqual([...t.drain().changed], ['default/web']);
  });
});
