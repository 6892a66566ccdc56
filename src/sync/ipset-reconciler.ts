// Makes the kernel's ipsets hold the planned entries. A full sync reads every set of ours back
// (`ipset save`) and repairs any drift; a partial sync diffs only the sets the plan changed against
// what we last applied, so one endpoint change costs a few entries, not a dump of every set.
import type { IpsetBackend, IpsetOp } from '../dataplane/ipset/backend.js';
import type { IpsetSpec, IpsetState } from '../model/kernel.js';
import type { SyncReport } from './report.js';
import { errorMessage } from '../model/error-text.js';

interface Applied {
  spec: IpsetSpec;
  entries: Set<string>;
}

/**
 * Whether an existing set can serve as the planned one. The kernel grows hashsize on its own, so a
 * different hashsize is not drift; type, family and capacity are.
 */
export function sameIpsetSpec(a: IpsetSpec, b: IpsetSpec): boolean {
  if (a.type !== b.type) return false;
  if (a.type === 'bitmap:port') return a.range === b.range;
  return a.family === b.family && a.maxElem === b.maxElem;
}

/** Operations per `ipset restore`. */
export const IPSET_CHUNK = 5000;

/**
 * Full: every set is read back and diffed; `changed` names the sets whose planned entries changed
 * in this sync's plan update (undefined: not known, as for a new plan). Partial: only the named
 * sets' listed entries.
 */
export type IpsetScope =
  | { readonly full: true; readonly changed?: ReadonlyMap<string, ReadonlySet<string>> }
  | { readonly full: false; readonly sets: ReadonlyMap<string, ReadonlySet<string>> };

/**
 * A set a full sync read and found in order: the backend's state object it read (which the
 * backend hands back again while the kernel's set is unchanged) and the plan's entries it matched.
 */
interface Verified {
  readonly observed: IpsetState;
  readonly wanted: ReadonlySet<string>;
}

export class IpsetReconciler {
  private applied = new Map<string, Applied>();
  /**
   * Sets a full sync found holding exactly the planned entries, with nothing to write. An entry
   * holds until we write to the set or a plan update changes its entries: a later full sync that
   * reads the same state for the same planned entries skips comparing them one by one.
   */
  private verified = new Map<string, Verified>();

  constructor(private readonly backend: IpsetBackend) {}

  async sync(desired: readonly IpsetState[], scope: IpsetScope, report: SyncReport): Promise<void> {
    const observedNow = new Map<string, IpsetState>();
    if (scope.full) {
      const observed = await this.backend.observe(desired.map((d) => d.spec.name));
      const fresh = new Map<string, Applied>();
      for (const o of observed) {
        observedNow.set(o.spec.name, o);
        const kept = this.applied.get(o.spec.name);
        // Read as it was when verified, and not written since: what we hold is what it holds.
        if (kept && this.verified.get(o.spec.name)?.observed === o) fresh.set(o.spec.name, kept);
        else fresh.set(o.spec.name, { spec: o.spec, entries: new Set(o.entries) });
      }
      report.noteDrift('ipset', this.drift(fresh));
      this.applied = fresh;
      for (const name of [...this.verified.keys()]) if (!observedNow.has(name) || scope.changed === undefined || scope.changed.has(name)) this.verified.delete(name);
    } else {
      for (const name of scope.sets.keys()) this.verified.delete(name);
    }
    const ops: IpsetOp[] = [];
    const visited = new Set<string>();
    for (const want of desired) {
      const name = want.spec.name;
      if (!scope.full && !scope.sets.has(name) && this.applied.has(name)) continue;
      visited.add(name);
      const v = this.verified.get(name);
      if (scope.full && v && v.observed === observedNow.get(name) && v.wanted === want.entries) continue;
      const have = this.applied.get(name);
      if (have && !sameIpsetSpec(have.spec, want.spec)) {
        // A set's type cannot change in place; destroying it fails while a rule uses it, which is
        // reported and retried, never hidden.
        ops.push({ kind: 'destroy', name });
      }
      if (!have || !sameIpsetSpec(have.spec, want.spec)) ops.push({ kind: 'create', spec: want.spec });
      const current = have && sameIpsetSpec(have.spec, want.spec) ? have.entries : new Set<string>();
      const touched = !scope.full && have && current === have.entries ? scope.sets.get(name) : undefined;
      if (touched) {
        // A partial sync looks only at the entries the plan changed, not at the whole set.
        for (const e of touched) {
          const wanted = want.entries.has(e);
          if (wanted && !current.has(e)) ops.push({ kind: 'add', name, entry: e });
          else if (!wanted && current.has(e)) ops.push({ kind: 'del', name, entry: e });
        }
        continue;
      }
      for (const e of current) if (!want.entries.has(e)) ops.push({ kind: 'del', name, entry: e });
      for (const e of want.entries) if (!current.has(e)) ops.push({ kind: 'add', name, entry: e });
    }
    if (scope.full) {
      // Sets this sync found in order (nothing to write) are verified for the next one.
      const written = new Set(ops.map((op) => (op.kind === 'create' ? op.spec.name : op.name)));
      for (const want of desired) {
        const name = want.spec.name;
        const o = observedNow.get(name);
        if (o && !written.has(name) && visited.has(name)) this.verified.set(name, { observed: o, wanted: want.entries });
      }
    }
    // Bounded restores: a node's first sync can carry tens of thousands of entries, and one
    // huge restore is all-or-nothing against the tool's timeout.
    for (let start = 0; start < ops.length; start += IPSET_CHUNK) {
      const chunk = ops.slice(start, start + IPSET_CHUNK);
      const result = await this.backend.apply(chunk);
      for (let i = 0; i < result.applied; i++) this.record(chunk[i] as IpsetOp, report);
      if (!result.error) continue;
      const failed = chunk[result.applied];
      report.fail({ subsystem: 'ipset', op: failed?.kind ?? 'restore', object: describe(failed), message: errorMessage(result.error) });
      // What follows the failed line was not applied; forget those sets so the next sync re-reads them.
      for (const op of ops.slice(start + result.applied)) this.applied.delete(op.kind === 'create' ? op.spec.name : op.name);
      return;
    }
  }

  /** Sets and entries that differ from what we last left in the sets we know (none before the first look). */
  private drift(fresh: ReadonlyMap<string, Applied>): number {
    let n = 0;
    for (const [name, was] of this.applied) {
      const now = fresh.get(name);
      if (now === was) continue;
      if (!now) {
        n += 1 + was.entries.size;
        continue;
      }
      for (const e of was.entries) if (!now.entries.has(e)) n++;
      for (const e of now.entries) if (!was.entries.has(e)) n++;
    }
    return n;
  }

  private record(op: IpsetOp, report: SyncReport): void {
    report.count(`ipset.${op.kind}`);
    this.verified.delete(op.kind === 'create' ? op.spec.name : op.name);
    switch (op.kind) {
      case 'create':
        this.applied.set(op.spec.name, { spec: op.spec, entries: new Set() });
        break;
      case 'destroy':
        this.applied.delete(op.name);
        break;
      case 'flush':
        this.applied.get(op.name)?.entries.clear();
        break;
      case 'add':
        this.applied.get(op.name)?.entries.add(op.entry);
        break;
      case 'del':
        this.applied.get(op.name)?.entries.delete(op.entry);
        break;
    }
  }
}

function describe(op: IpsetOp | undefined): string {
  if (!op) return '';
  if (op.kind === 'create') return op.spec.name;
  if (op.kind === 'add' || op.kind === 'del') return `${op.name} ${op.entry}`;
  return op.name;
}
