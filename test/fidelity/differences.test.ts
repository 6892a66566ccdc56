// Deliberate differences that need evidence: only a run whose kube-proxy log shows the topology
// start-up race excuses the real servers of the virtual servers it names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evidenceFromKubeProxyLog, explain } from './differences.js';
import type { DeliberateDifference } from './differences.js';

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
