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

/** Full: every set is read back and diffed. Partial: only the named sets' listed entries. */
export type IpsetScope = { readonly full: true } | { readonly full: false; readonly sets: ReadonlyMap<string, ReadonlySet<string>> };

export class IpsetReconciler {
  private applied = new Map<string, Applied>();

  constructor(private readonly backend: IpsetBackend) {}

  async sync(desired: readonly IpsetState[], scope: IpsetScope, report: SyncReport): Promise<void> {
    if (scope.full) {
      const observed = await this.backend.observe(desired.map((d) => d.spec.name));
      const fresh = new Map(observed.map((o) => [o.spec.name, { spec: o.spec, entries: new Set(o.entries) }]));
      report.noteDrift('ipset', this.drift(fresh));
      this.applied = fresh;
    }
    const ops: IpsetOp[] = [];
    for (const want of desired) {
      const name = want.spec.name;
      if (!scope.full && !scope.sets.has(name) && this.applied.has(name)) continue;
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
