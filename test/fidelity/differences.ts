// The one list of deliberate differences from upstream kube-proxy (deliberate-differences.yaml):
// each entry names the category and side it applies to, a pattern for the lines, the reason, and
// where docs/ documents it (FILE#HEADING-ANCHOR, checked by differences.test.ts). A line
// difference is documented when an entry matches it.
import { readFileSync } from 'node:fs';
import type { V1Service } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { hostPort } from '../../src/model/types.js';
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
  /**
   * Virtual servers ("-t 10.96.1.70:80", "-t [fd00::1]:80") whose real servers came from endpoints
   * kube-proxy filtered without the Node's zone; a node port is "-t *:30204" (every node address).
   */
  readonly missedZone: ReadonlySet<string>;
}

const PROTO_FLAG: Readonly<Record<string, string>> = { TCP: '-t', UDP: '-u', SCTP: '--sctp-service' };

/**
 * Every virtual server of each Service port, keyed as kube-proxy v1.36.3 logs the port
 * ("10.96.1.71:80/TCP": BaseServicePortInfo.String in pkg/proxy/serviceport.go). The ClusterIP's
 * always; node ports, external IPs and load-balancer IPs too unless externalTrafficPolicy is Local,
 * because pkg/proxy/ipvs/proxier.go gives those the same cluster endpoints (the ones topology
 * filters) and Local gives them the node's own endpoints, which topology does not touch.
 */
export function virtualServersByLoggedPort(services: readonly V1Service[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const svc of services) {
    const spec = svc.spec;
    if (!spec) continue;
    const clusterIPs = (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])).filter((ip) => ip !== 'None' && ip !== '');
    const externalCluster = spec.externalTrafficPolicy !== 'Local';
    const lbIPs = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter((ip): ip is string => ip !== undefined);
    for (const p of spec.ports ?? []) {
      const protocol = p.protocol ?? 'TCP';
      const flag = PROTO_FLAG[protocol] ?? '-t';
      for (const ip of clusterIPs) {
        const family = ip.includes(':');
        const sameFamily = (a: string): boolean => a.includes(':') === family;
        const vss = [`${flag} ${hostPort(ip, p.port)}`];
        if (externalCluster) {
          for (const e of [...(spec.externalIPs ?? []), ...lbIPs].filter(sameFamily)) vss.push(`${flag} ${hostPort(e, p.port)}`);
          if (p.nodePort) vss.push(`${flag} *:${p.nodePort}`);
        }
        out.set(`${ip}:${p.port}/${protocol}`, vss);
      }
    }
  }
  return out;
}

/**
 * The evidence in kube-proxy's log (at --v=2) of a run whose Node has a zone label: the virtual
 * servers of every Service port it logged "Ignoring same-zone topology hints ... node is missing
 * label" for (`services`: the scenario's Services at that step).
 */
export function evidenceFromKubeProxyLog(log: string, nodeHasZone: boolean, services: readonly V1Service[] = []): RunEvidence {
  const missedZone = new Set<string>();
  if (nodeHasZone) {
    const byPort = virtualServersByLoggedPort(services);
    for (const m of log.matchAll(/Ignoring same-zone topology hints for service since node is missing label" service="([^"]+):(\d+)\/(TCP|UDP|SCTP)"/g)) {
      const [, ip = '', port = '', protocol = 'TCP'] = m;
      for (const vs of byPort.get(`${ip}:${port}/${protocol}`) ?? [`${PROTO_FLAG[protocol] ?? '-t'} ${hostPort(ip, Number(port))}`]) missedZone.add(vs);
    }
  }
  return { missedZone };
}

/** Whether a dump line ("RS -t 10.0.2.15:30204 -r ...") is about a virtual server in `missedZone`. */
function aboutMissedZone(line: string, missedZone: ReadonlySet<string>): boolean {
  const m = /^(?:VS|RS) (\S+) (\S+)/.exec(line);
  if (!m) return false;
  const [, flag = '', address = ''] = m;
  const port = address.slice(address.lastIndexOf(':') + 1);
  return missedZone.has(`${flag} ${address}`) || missedZone.has(`${flag} *:${port}`);
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
      (d.evidence !== 'kube-proxy-missed-zone' || aboutMissedZone(diff.line, evidence.missedZone)),
  );
}
