// Keeps our chains, their rules and the jumps from the built-in chains in place for one family,
// with a single iptables-restore --noflush. Unlike kube-proxy, which rewrites the chains every
// sync, the restore is skipped when iptables-save already shows exactly the planned rules, and
// the save itself when nf_tables' ruleset generation shows that nothing was committed since the
// save that found them in place (an idle node's periodic resync then spawns nothing).
import type { IptablesBackend } from '../dataplane/iptables/backend.js';
import type { IptablesTables } from '../model/text/iptables.js';
import type { IptablesTable } from '../model/kernel.js';
import type { JumpRule } from '../model/names.js';
import { JUMP_RULES } from '../model/names.js';
import { jumpRuleSpec } from '../plan/rules.js';
import type { SyncReport } from './report.js';
import { errorMessage } from '../model/error-text.js';

/** The iptables-restore input that makes our chains hold `tables` and adds missing jumps. */
export function restorePayload(tables: readonly IptablesTable[], missingJumps: readonly JumpRule[]): string {
  const lines: string[] = [];
  for (const t of tables) {
    lines.push(`*${t.table}`);
    for (const c of t.chains) lines.push(`:${c} - [0:0]`);
    for (const r of t.rules) lines.push(`-A ${r.chain} ${r.spec}`);
    // Inserted at position 1 in kube-proxy's order, so later jumps of a chain end up first.
    for (const j of missingJumps) if (j.table === t.table) lines.push(`-I ${j.from} 1 ${jumpRuleSpec(j)}`);
    lines.push('COMMIT');
  }
  return `${lines.join('\n')}\n`;
}

/** Jumps absent from their built-in chain. */
export function missingJumps(observed: IptablesTables): JumpRule[] {
  return JUMP_RULES.filter((j) => !(observed.get(j.table)?.rules ?? []).some((r) => r.chain === j.from && r.spec === jumpRuleSpec(j)));
}

/** Whether every chain of ours holds exactly the planned rules, in order. */
export function chainsMatch(observed: IptablesTables, tables: readonly IptablesTable[]): boolean {
  for (const t of tables) {
    const have = observed.get(t.table);
    if (!have) return false;
    for (const chain of t.chains) {
      if (!have.chains.has(chain)) return false;
      const want = t.rules.filter((r) => r.chain === chain).map((r) => r.spec);
      const got = have.rules.filter((r) => r.chain === chain).map((r) => r.spec);
      if (want.length !== got.length || want.some((s, i) => s !== got[i])) return false;
    }
  }
  return true;
}

/** How many of our chains do not hold exactly the planned rules. */
function mismatchedChains(observed: IptablesTables, tables: readonly IptablesTable[]): number {
  let n = 0;
  for (const t of tables) for (const chain of t.chains) if (!chainsMatch(observed, [{ ...t, chains: [chain] }])) n++;
  return n;
}

export class IptablesReconciler {
  /** The tables the last successful sync left in place (the planner keeps one array per rule set). */
  private inPlace: readonly IptablesTable[] | undefined;
  /**
   * The ruleset generation read just before the save that last found `inPlace` exactly in place;
   * undefined after any restore (ours or a failed one) and when the build has no generation.
   */
  private verifiedAt: number | undefined;

  constructor(private readonly backend: IptablesBackend) {}

  get family() {
    return this.backend.family;
  }

  /** Returns false when the restore failed (the sync must then stop before unbinding addresses). */
  async sync(tables: readonly IptablesTable[], report: SyncReport): Promise<boolean> {
    const fam = this.backend.family;
    // Read before the save: a commit racing the save then shows as a new generation next time.
    // Unknown (undefined) when it cannot be read: then the save runs, as without a generation.
    const generation = await this.backend.generation().catch(() => undefined);
    if (generation !== undefined && generation === this.verifiedAt && tables === this.inPlace) return true;
    this.verifiedAt = undefined;
    let observed: IptablesTables;
    try {
      observed = await this.backend.observe();
    } catch (e) {
      report.fail({ subsystem: 'iptables', op: 'save', object: fam, message: errorMessage(e) });
      return false;
    }
    const jumps = missingJumps(observed);
    const matches = chainsMatch(observed, tables);
    if (jumps.length === 0 && matches) {
      this.inPlace = tables;
      this.verifiedAt = generation;
      return true;
    }
    // The same rules as last time, yet not in place: changed behind our back.
    if (this.inPlace === tables) report.noteDrift('iptables', jumps.length + mismatchedChains(observed, tables));
    this.inPlace = undefined;
    try {
      await this.backend.restore(restorePayload(tables, jumps));
      report.count(`iptables.restore.${fam}`);
      report.count('iptables.jumpsAdded', jumps.length);
      this.inPlace = tables;
      return true;
    } catch (e) {
      report.fail({ subsystem: 'iptables', op: 'restore', object: fam, message: errorMessage(e) });
      return false;
    }
  }
}
