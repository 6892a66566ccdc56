// Values the API server refuses in spec.externalIPs and status.loadBalancer.ingress[].ip are
// refused in manifest mode too: the Service is skipped with a problem naming it and the field, its
// addresses are never planned nor bound, and every other Service plans as before.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { apiIpRefusal } from '../../src/cluster/service.js';
import type { Problem } from '../../src/cluster/problems.js';
import { ClusterTracker } from '../../src/cluster/tracker.js';
import { planCluster } from '../../src/plan/planner.js';
import { renderJson } from '../../src/plan/render.js';
import { runCli } from '../helpers/cli.js';
import { config, NODE, node, service, slice } from '../helpers/world.js';
import { IP_ROWS } from './api-ip-refusals.js';

describe("the API server's IP refusals, in manifest mode", () => {
  test('apiIpRefusal refuses exactly what kube-apiserver v1.36.3 refuses', () => {
    for (const row of IP_ROWS) {
      assert.equal(apiIpRefusal(row.ip, 'externalIP') === undefined ? 'accepted' : 'refused', row.externalIP, `externalIP ${JSON.stringify(row.ip)}`);
      assert.equal(apiIpRefusal(row.ip, 'ingressIP') === undefined ? 'accepted' : 'refused', row.ingressIP, `ingress IP ${JSON.stringify(row.ip)}`);
    }
  });

  test('a Service with a refused IP is skipped and named; nothing of it is planned or bound; the others are untouched', () => {
    const good = [
      service('web', { clusterIP: '10.96.0.10', externalIPs: ['198.51.100.10'], ports: [{ name: 'http', port: 80 }] }),
      service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.11', ports: [{ name: 'http', port: 80, nodePort: 30011 }] }, { status: { loadBalancer: { ingress: [{ ip: '203.0.113.11' }] } } }),
    ];
    const slices = [slice('web', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2', node: NODE }]), slice('lb', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.3', node: NODE }])];
    const plan = (services: typeof good, problems: Problem[] = []) => {
      const t = new ClusterTracker(NODE, (p) => void problems.push(p));
      for (const s of services) t.upsertService(s);
      for (const s of slices) t.upsertEndpointSlice(s);
      return planCluster(t.drain().snapshot, { node: node(), config: config() });
    };
    const baseline = renderJson(plan(good));
    for (const row of IP_ROWS) {
      for (const where of ['externalIP', 'ingressIP'] as const) {
        if (row[where] === 'accepted') continue;
        const bad = where === 'externalIP'
          ? service('bad', { clusterIP: '10.96.0.99', externalIPs: ['198.51.100.99', row.ip], ports: [{ name: 'http', port: 80 }] })
          : service('bad', { type: 'LoadBalancer', clusterIP: '10.96.0.99', ports: [{ name: 'http', port: 80, nodePort: 30099 }] }, { status: { loadBalancer: { ingress: [{ ip: row.ip }] } } });
        const problems: Problem[] = [];
        const state = plan([...good, bad], problems);
        const field = where === 'externalIP' ? 'spec.externalIPs[1]' : 'status.loadBalancer.ingress[0].ip';
        assert.deepEqual(problems.map((p) => [p.kind, p.namespace, p.name, p.field, p.effect]), [['Service', 'default', 'bad', field, 'skipped']], `${where} ${JSON.stringify(row.ip)}`);
        assert.match(problems[0]?.reason ?? '', /the API server refuses it/);
        assert.equal(renderJson(state), baseline, `${where} ${JSON.stringify(row.ip)}: the plan is the one without the Service`);
      }
    }
  });

  test('kube-ipvs plan names the refused value and plans the rest', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-refusal-'));
    try {
      const objs = [
        service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] }),
        service('zero', { clusterIP: '10.96.0.20', externalIPs: ['0.0.0.0'], ports: [{ name: 'http', port: 80 }] }),
      ];
      writeFileSync(join(dir, 'svc.yaml'), objs.map((o) => stringify(o)).join('---\n'));
      const r = runCli(['plan', '--manifests', dir, '--hostname-override', NODE, '--node-ip', '192.168.0.10', '--output', 'addresses']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Service default\/zero: spec\.externalIPs\[0\]: "0\.0\.0\.0" may not be unspecified; the API server refuses it \(skipped\)/);
      assert.match(r.stdout, /10\.96\.0\.10/);
      assert.doesNotMatch(r.stdout, /0\.0\.0\.0|10\.96\.0\.20/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
