// `kube-ipvs cleanup` (and --cleanup, --cleanup-ipvs): removes everything kube-ipvs (or kube-proxy
// in IPVS mode) owns on the node, and nothing else. Idempotent: a second run finds nothing to do.
// Beyond kube-proxy, which flushes all of IPVS and leaves the KUBE-6-* sets behind, it keeps the
// virtual servers inside --ipvs-exclude-cidrs and removes the IPv6 sets too.
import type { IpvsOp } from '../dataplane/ipvs/backend.js';
import { isNotFound } from '../dataplane/errors.js';
import type { IpsetOp } from '../dataplane/ipset/backend.js';
import type { ParsedCidr } from '../model/ip.js';
import { inAnyCidr, parseCidr } from '../model/ip.js';
import { vsKey } from '../model/kernel.js';
import { DUMMY_DEVICE, ipsetName, JUMP_RULES, OWNED_CHAINS, SET_INFO } from '../model/names.js';
import type { TableName } from '../model/names.js';
import { IP_FAMILIES } from '../model/types.js';
import { jumpRuleSpec } from '../plan/rules.js';
import type { Dataplane } from './proxier.js';
import { SyncReport } from './report.js';
import { errorMessage } from '../model/error-text.js';

/** Set names older kube-proxy releases created; removed too so a node is left clean. */
const LEGACY_SETS = ['KUBE-NODE-PORT-SCTP', 'KUBE-NODE-PORT-LOCAL-SCTP', 'KUBE-6-NODE-PORT-SCTP', 'KUBE-6-NODE-PORT-LOCAL-SCTP'];

export async function cleanupDataplane(dp: Dataplane, excludeCIDRs: readonly string[]): Promise<SyncReport> {
  const report = new SyncReport();
  const exclude = excludeCIDRs.map((c) => parseCidr(c)).filter((c): c is ParsedCidr => c !== undefined);

  try {
    const ops: IpvsOp[] = (await dp.ipvs.listServices())
      .filter((vs) => vs.fwmark === undefined && !inAnyCidr(vs.address, exclude))
      .map((vs) => ({ kind: 'deleteService', vs }));
    for (const r of await dp.ipvs.apply(ops)) {
      if (r.ok) report.count('ipvs.deleteService');
      else if (!isNotFound(r.error)) report.fail({ subsystem: 'ipvs', op: 'deleteService', object: vsKey(r.op.vs), message: errorMessage(r.error) });
    }
  } catch (e) {
    report.fail({ subsystem: 'ipvs', op: 'list', object: 'virtual servers', message: errorMessage(e) });
  }

  try {
    if ((await dp.netif.deleteDummy(DUMMY_DEVICE)).deleted) report.count('netif.deleteDevice');
  } catch (e) {
    report.fail({ subsystem: 'netif', op: 'deleteDummy', object: DUMMY_DEVICE, message: errorMessage(e) });
  }

  // Rules before sets: a set still referenced by a rule cannot be destroyed.
  for (const ipt of dp.iptables) {
    try {
      const observed = await ipt.observe();
      const lines: string[] = [];
      for (const table of ['filter', 'nat'] as const satisfies readonly TableName[]) {
        const t = observed.get(table);
        if (!t) continue;
        const body: string[] = [];
        for (const j of JUMP_RULES) {
          if (j.table !== table) continue;
          const spec = jumpRuleSpec(j);
          for (const r of t.rules) if (r.chain === j.from && r.spec === spec) body.push(`-D ${j.from} ${spec}`);
        }
        const present = OWNED_CHAINS[table].filter((c) => t.chains.has(c));
        for (const c of present) body.push(`:${c} - [0:0]`);
        for (const c of present) body.push(`-X ${c}`);
        if (body.length > 0) lines.push(`*${table}`, ...body, 'COMMIT');
      }
      if (lines.length > 0) {
        await ipt.restore(`${lines.join('\n')}\n`);
        report.count(`iptables.cleanup.${ipt.family}`);
      }
    } catch (e) {
      report.fail({ subsystem: 'iptables', op: 'cleanup', object: ipt.family, message: errorMessage(e) });
    }
  }

  try {
    const names = [...IP_FAMILIES.flatMap((f) => SET_INFO.map((s) => ipsetName(s.base, f))), ...LEGACY_SETS];
    const existing = await dp.ipset.observe(names);
    const ops: IpsetOp[] = existing.map((s) => ({ kind: 'destroy', name: s.spec.name }));
    if (ops.length > 0) {
      const r = await dp.ipset.apply(ops);
      report.count('ipset.destroy', r.applied);
      if (r.error) report.fail({ subsystem: 'ipset', op: 'destroy', object: ops[r.applied]?.kind === 'destroy' ? (ops[r.applied] as { name: string }).name : '', message: errorMessage(r.error) });
    }
  } catch (e) {
    report.fail({ subsystem: 'ipset', op: 'list', object: 'sets', message: errorMessage(e) });
  }
  return report;
}
