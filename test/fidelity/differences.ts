// The one list of deliberate differences from upstream kube-proxy (deliberate-differences.yaml):
// each entry names the category and side it applies to, a pattern for the lines, the reason, and
// where docs/ documents it (FILE#HEADING-ANCHOR, checked by differences.test.ts). A line
// difference is documented when an entry matches it.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { Category, LineDiff } from './normalize.js';
import { CATEGORIES } from './normalize.js';

export interface DeliberateDifference {
  readonly id: string;
  readonly category: Category;
  readonly side: 'upstream' | 'kube-ipvs';
  readonly pattern: RegExp;
  /** Only in these scenarios (all when absent). */
  readonly scenarios?: readonly string[];
  readonly reason: string;
  readonly documented: string;
  /**
   * Applies only where the run shows evidence of it. "kube-proxy-missed-zone": the line is about a
   * virtual server kube-proxy logged as "Ignoring same-zone topology hints ... node is missing
   * label" although the Node has the zone label.
   */
  readonly evidence?: 'kube-proxy-missed-zone';
}

/** What a run's logs show, for entries that need evidence. */
export interface RunEvidence {
  /** Virtual servers ("-t 10.96.1.70:80") whose hints kube-proxy ignored for want of a zone label. */
  readonly missedZone: ReadonlySet<string>;
}

const PROTO_FLAG: Readonly<Record<string, string>> = { TCP: '-t', UDP: '-u', SCTP: '--sctp-service' };

/** The evidence in kube-proxy's log (at --v=2) of a run whose Node has a zone label. */
export function evidenceFromKubeProxyLog(log: string, nodeHasZone: boolean): RunEvidence {
  const missedZone = new Set<string>();
  if (nodeHasZone) {
    for (const m of log.matchAll(/Ignoring same-zone topology hints for service since node is missing label" service="([^"]+):(\d+)\/(TCP|UDP|SCTP)"/g)) {
      missedZone.add(`${PROTO_FLAG[m[3] ?? 'TCP'] ?? '-t'} ${m[1] ?? ''}:${m[2] ?? ''}`);
    }
  }
  return { missedZone };
}

export function loadDifferences(path: string): DeliberateDifference[] {
  const raw: unknown = parse(readFileSync(path, 'utf8'));
  if (!Array.isArray(raw)) throw new Error(`${path}: expected a list of differences`);
  return raw.map((e: unknown, i) => {
    const o = e as Record<string, unknown>;
    const where = `${path} entry ${i + 1}`;
    const str = (k: string): string => {
      const v = o[k];
      if (typeof v !== 'string' || v === '') throw new Error(`${where}: "${k}" must be a non-empty string`);
      return v;
    };
    const category = str('category') as Category;
    if (!CATEGORIES.includes(category)) throw new Error(`${where}: unknown category ${category}`);
    const side = str('side');
    if (side !== 'upstream' && side !== 'kube-ipvs') throw new Error(`${where}: side must be upstream or kube-ipvs`);
    const scenarios = o['scenarios'];
    const evidence = o['evidence'];
    if (evidence !== undefined && evidence !== 'kube-proxy-missed-zone') throw new Error(`${where}: unknown evidence ${String(evidence)}`);
    return {
      id: str('id'),
      category,
      side,
      pattern: new RegExp(str('pattern')),
      ...(Array.isArray(scenarios) ? { scenarios: scenarios.map(String) } : {}),
      reason: str('reason'),
      documented: str('documented'),
      ...(evidence ? { evidence } : {}),
    };
  });
}

/** The entry that explains a line difference in a scenario, if any. */
export function explain(diff: LineDiff, scenario: string, list: readonly DeliberateDifference[], evidence: RunEvidence = { missedZone: new Set() }): DeliberateDifference | undefined {
  return list.find(
    (d) =>
      d.category === diff.category &&
      d.side === diff.side &&
      (!d.scenarios || d.scenarios.includes(scenario)) &&
      d.pattern.test(diff.line) &&
      (d.evidence !== 'kube-proxy-missed-zone' || [...evidence.missedZone].some((vs) => diff.line.includes(` ${vs} `))),
  );
}
