// The table of IPs kube-ipvs refuses in manifest mode (test/cluster/api-ip-refusals.ts), checked
// row by row against a real kube-apiserver v1.36.3: a server-side dry run of a Service with the
// value in spec.externalIPs, and of a status patch with it in status.loadBalancer.ingress[0].ip.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestApiServer } from '../helpers/apiserver.js';
import { apiRequest, startTestApiServer } from '../helpers/apiserver.js';
import { service } from '../helpers/world.js';
import { IP_ROWS } from '../cluster/api-ip-refusals.js';
import { must } from './support.js';

const SVC = '/api/v1/namespaces/default/services';

describe('IP values the API server refuses', () => {
  let server: TestApiServer;
  before(async () => {
    server = await startTestApiServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('every row of the refusal table is what kube-apiserver answers', async () => {
    const lb = service('lb', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80 }] });
    await must(apiRequest(server, 'POST', SVC, lb), 'create lb');
    const outcome = (status: number): 'accepted' | 'refused' => {
      if (status >= 200 && status < 300) return 'accepted';
      assert.equal(status, 422, 'a refusal is a validation error');
      return 'refused';
    };
    const wrong: string[] = [];
    for (const row of IP_ROWS) {
      const ext = await apiRequest(server, 'POST', `${SVC}?dryRun=All`, service('ext', { externalIPs: [row.ip], ports: [{ name: 'http', port: 80 }] }));
      if (outcome(ext.status) !== row.externalIP) wrong.push(`externalIP ${JSON.stringify(row.ip)}: server ${outcome(ext.status)}, table ${row.externalIP}`);
      const ing = await apiRequest(server, 'PATCH', `${SVC}/lb/status?dryRun=All`, { status: { loadBalancer: { ingress: [{ ip: row.ip }] } } });
      if (outcome(ing.status) !== row.ingressIP) wrong.push(`ingress IP ${JSON.stringify(row.ip)}: server ${outcome(ing.status)}, table ${row.ingressIP}`);
    }
    assert.deepEqual(wrong, []);
  });
});
