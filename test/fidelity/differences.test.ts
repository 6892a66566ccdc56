// Deliberate differences that need evidence: only a run whose kube-proxy log shows the topology
// start-up race excuses the real servers of the virtual servers it names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/cli.js';
import { evidenceFromKubeProxyLog, explain, loadDifferences } from './differences.js';
import type { DeliberateDifference } from './differences.js';
import type { V1Service } from '@kubernetes/client-node';

// A line as upstream kube-proxy v1.36.3 writes it at --v=2 (pkg/proxy/topology.go).
const LOG = 'I1204 22:02:01.619987    7247 topology.go:209] "Ignoring same-zone topology hints for service since node is missing label" service="10.96.1.71:80/TCP" label="topology.kubernetes.io/zone"\n';
const RACE: DeliberateDifference = { id: 'race', category: 'ipvs', side: 'upstream', pattern: /^RS /, reason: 'r', documented: 'd', evidence: 'kube-proxy-missed-zone' };

test('the race excuses only the named virtual server, and only when the Node has a zone', () => {
  const named = { category: 'ipvs' as const, side: 'upstream' as const, line: 'RS -t 10.96.1.71:80 -r 10.244.1.72:8080 -m -w 1' };
  const other = { ...named, line: 'RS -t 10.96.1.70:80 -r 10.244.1.70:8080 -m -w 1' };
  const withZone = evidenceFromKubeProxyLog(LOG, true);
  assert.deepEqual([...withZone.missedZone], ['-t 10.96.1.71:80']);
  assert.equal(explain(named, 's', [RACE], withZone)?.id, 'race');
  assert.equal(explain(other, 's', [RACE], withZone), undefined);
  assert.equal(explain(named, 's', [RACE], evidenceFromKubeProxyLog(LOG, false)), undefined);
  assert.equal(explain(named, 's', [RACE]), undefined);
});

// pkg/proxy/ipvs/proxier.go (v1.36.3) gives a port's node-port, external-IP and load-balancer virtual
// servers the same cluster endpoints as its ClusterIP unless externalTrafficPolicy is Local.
test('the race excuses every virtual server fed by the logged port\'s cluster endpoints, not those of a Local policy', () => {
  const log = [
    'I1204 22:02:01.619987    7247 topology.go:209] "Ignoring same-zone topology hints for service since node is missing label" service="10.96.1.71:80/TCP" label="topology.kubernetes.io/zone"',
    'I1204 22:02:01.619990    7247 topology.go:209] "Ignoring same-zone topology hints for service since node is missing label" service="10.96.1.72:53/UDP" label="topology.kubernetes.io/zone"',
    'I1204 22:02:01.619991    7247 topology.go:209] "Ignoring same-zone topology hints for service since node is missing label" service="fd00:96::73:80/TCP" label="topology.kubernetes.io/zone"',
  ].join('\n');
  const services: V1Service[] = [
    { metadata: { namespace: 'a', name: 'cluster' }, spec: { clusterIP: '10.96.1.71', externalIPs: ['192.0.2.71', '2001:db8::71'], ports: [{ port: 80, protocol: 'TCP', nodePort: 30204 }] }, status: { loadBalancer: { ingress: [{ ip: '198.51.100.71' }] } } },
    { metadata: { namespace: 'a', name: 'local' }, spec: { clusterIP: '10.96.1.72', externalTrafficPolicy: 'Local', externalIPs: ['192.0.2.72'], ports: [{ port: 53, protocol: 'UDP', nodePort: 30205 }] } },
    { metadata: { namespace: 'a', name: 'v6' }, spec: { clusterIPs: ['fd00:96::73'], ports: [{ port: 80, protocol: 'TCP', nodePort: 30206 }] } },
  ];
  const evidence = evidenceFromKubeProxyLog(log, true, services);
  const excused = (line: string): boolean => explain({ category: 'ipvs', side: 'upstream', line }, 's', [RACE], evidence)?.id === 'race';
  assert.ok(excused('RS -t 10.96.1.71:80 -r 10.245.0.28:8000 -m -w 1'));
  assert.ok(excused('RS -t 10.0.2.15:30204 -r 10.245.0.28:8000 -m -w 1'));
  assert.ok(excused('RS -t 192.0.2.71:80 -r 10.245.0.28:8000 -m -w 1'));
  assert.ok(excused('RS -t 198.51.100.71:80 -r 10.245.0.28:8000 -m -w 1'));
  assert.ok(excused('RS -u 10.96.1.72:53 -r 10.245.0.29:53 -m -w 1'));
  assert.ok(excused('RS -t [fd00:96::73]:80 -r [fd00:245::1]:8000 -m -w 1'));
  assert.ok(excused('RS -t [fd00::15]:30206 -r [fd00:245::1]:8000 -m -w 1'));
  // Local policy: the node's own endpoints, which topology never filters.
  assert.ok(!excused('RS -u 10.0.2.15:30205 -r 10.245.0.29:53 -m -w 1'));
  assert.ok(!excused('RS -u 192.0.2.72:53 -r 10.245.0.29:53 -m -w 1'));
  // Another port, another protocol, or the other family's external IP.
  assert.ok(!excused('RS -t 10.0.2.15:30207 -r 10.245.0.28:8000 -m -w 1'));
  assert.ok(!excused('RS -u 10.0.2.15:30204 -r 10.245.0.28:8000 -m -w 1'));
  assert.ok(!excused('RS -t [2001:db8::71]:80 -r [fd00:245::1]:8000 -m -w 1'));
});

// GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens.
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

test('every deliberate difference points at a heading that exists in the repository', () => {
  const root = repoRoot();
  const list = loadDifferences(join(root, 'test', 'fidelity', 'deliberate-differences.yaml'));
  assert.ok(list.length > 0);
  for (const d of list) {
    const [file, anchor] = d.documented.split('#');
    assert.ok(file && anchor, `${d.id}: documented must be FILE#HEADING-ANCHOR, got ${d.documented}`);
    const headings = readFileSync(join(root, file), 'utf8')
      .split('\n')
      .filter((l) => /^#{1,6} /.test(l))
      .map((l) => anchorOf(l.replace(/^#+ /, '')));
    assert.ok(headings.includes(anchor), `${d.id}: ${file} has no heading with the anchor #${anchor}`);
  }
});
