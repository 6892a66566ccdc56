// Deliberate differences that need evidence: only a run whose kube-proxy log shows the topology
// start-up race excuses the real servers of the virtual servers it names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/cli.js';
import { evidenceFromKubeProxyLog, explain, loadDifferences } from './differences.js';
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
