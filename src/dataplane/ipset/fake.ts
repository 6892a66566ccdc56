// In-memory model of the kernel's ipsets, refusing what `ipset restore -exist` (v7.17, checked on a
// real kernel) refuses, with the same error codes and reasons, so reconcilers and convergence tests
// run without root. Also FaultyIpset, which fails a share of writes to test retries.
import type { IpsetSpec, IpsetState } from '../../model/kernel.js';
import { DataplaneError } from '../errors.js';
import type { DataplaneErrorCode } from '../errors.js';
import type { IpsetApplyResult, IpsetBackend, IpsetOp } from './backend.js';
import { ipsetOpObject, ipsetOpProblem, kernelIpsetSpec, parseBitmapRange } from './restore-script.js';
import { normalizeIpsetEntry, parseIpsetSave, renderIpsetSave } from '../../model/text/ipset.js';
import { seededRandom } from '../prng.js';

/** ipset's own wording, so fake and real errors read alike. */
export const IpsetReason = {
  NOT_FOUND: 'The set with the given name does not exist',
  EXISTS: 'Set cannot be created: set with the same name already exists',
  IN_USE: 'Set cannot be destroyed: it is in use by a kernel component',
  FULL: 'Hash is full, cannot add more elements',
  OUT_OF_RANGE: 'Element is out of the range of the set',
} as const;

export interface FakeIpsetOptions {
  /** Whether a kernel component (an iptables --match-set rule) references the set. */
  readonly isReferenced?: (name: string) => boolean;
  /** Initial state as `ipset save` text. */
  readonly initial?: string;
}

interface FakeSet {
  readonly spec: IpsetSpec;
  readonly entries: Set<string>;
}

class OpRefused extends Error {
  constructor(
    readonly code: DataplaneErrorCode,
    readonly reason: string,
  ) {
    super(reason);
  }
}

function refuse(code: DataplaneErrorCode, reason: string): never {
  throw new OpRefused(code, reason);
}

/** Whether `create` of `spec` over `existing` succeeds under -exist: the kernel compares type and maxelem (hash) or range (bitmap), and ignores family and hashsize, keeping the existing set. */
function compatible(existing: IpsetSpec, spec: IpsetSpec): boolean {
  if (existing.type !== spec.type) return false;
  if (spec.type === 'bitmap:port') return existing.range === spec.range;
  return existing.maxElem === spec.maxElem;
}

export class FakeIpset implements IpsetBackend {
  private sets = new Map<string, FakeSet>();
  /** The state each set object was last observed as. */
  private readonly observed = new WeakMap<FakeSet, IpsetState>();
  private readonly isReferenced: (name: string) => boolean;

  constructor(options: FakeIpsetOptions = {}) {
    this.isReferenced = options.isReferenced ?? (() => false);
    if (options.initial !== undefined) this.load(options.initial);
  }

  observe(names?: readonly string[]): Promise<IpsetState[]> {
    const wanted = names === undefined ? undefined : new Set(names);
    const out: IpsetState[] = [];
    for (const [name, set] of this.sets) {
      if (wanted && !wanted.has(name)) continue;
      // As the netlink backend does: a set unchanged since it was last observed is the same state.
      // (Changes replace a set's object: apply copies before it writes.)
      let state = this.observed.get(set);
      if (!state) {
        state = { spec: set.spec, entries: new Set(set.entries) };
        this.observed.set(set, state);
      }
      out.push(state);
    }
    return Promise.resolve(out);
  }

  apply(ops: readonly IpsetOp[]): Promise<IpsetApplyResult> {
    // Work on a copy-on-write view; what succeeded before a refusal is kept, as restore keeps it.
    const work = new Map(this.sets);
    const cloned = new Set<string>();
    const writable = (name: string): FakeSet => {
      const set = work.get(name);
      if (!set) return refuse('NOT_FOUND', IpsetReason.NOT_FOUND);
      if (cloned.has(name)) return set;
      const copy = { spec: set.spec, entries: new Set(set.entries) };
      work.set(name, copy);
      cloned.add(name);
      return copy;
    };
    let applied = 0;
    let error: DataplaneError | undefined;
    for (const [i, op] of ops.entries()) {
      try {
        this.step(work, writable, cloned, op);
        applied = i + 1;
      } catch (e) {
        if (!(e instanceof OpRefused)) throw e;
        error = new DataplaneError(e.code, 'ipset', op.kind, ipsetOpObject(op), e.reason, i);
        break;
      }
    }
    this.sets = work;
    return Promise.resolve(error ? { applied, error } : { applied });
  }

  private step(work: Map<string, FakeSet>, writable: (name: string) => FakeSet, cloned: Set<string>, op: IpsetOp): void {
    const syntax = ipsetOpProblem(op);
    if (syntax !== undefined) refuse('INVALID', `Syntax error: ${syntax}`);
    switch (op.kind) {
      case 'create': {
        const spec = kernelIpsetSpec(op.spec);
        const existing = work.get(spec.name);
        if (existing) {
          if (!compatible(existing.spec, spec)) refuse('EXISTS', IpsetReason.EXISTS);
          return;
        }
        work.set(spec.name, { spec, entries: new Set() });
        cloned.add(spec.name);
        return;
      }
      case 'destroy':
        // With -exist, destroying a missing set is success (checked on ipset v7.17).
        if (!work.has(op.name)) return;
        if (this.isReferenced(op.name)) refuse('IN_USE', IpsetReason.IN_USE);
        work.delete(op.name);
        cloned.delete(op.name);
        return;
      case 'flush':
        writable(op.name).entries.clear();
        return;
      case 'add':
      case 'del': {
        const set = writable(op.name);
        const entry = this.entry(set.spec, op.entry);
        if (op.kind === 'del') {
          set.entries.delete(entry);
          return;
        }
        if (set.entries.has(entry)) return;
        if (set.spec.type !== 'bitmap:port' && set.entries.size >= set.spec.maxElem) refuse('FAILED', IpsetReason.FULL);
        set.entries.add(entry);
        return;
      }
    }
  }

  /** The canonical entry, or a refusal as the kernel would give it. */
  private entry(spec: IpsetSpec, text: string): string {
    const family = spec.type === 'bitmap:port' ? undefined : spec.family;
    const entry = normalizeIpsetEntry(spec.type, text, family);
    if (entry === undefined) refuse('INVALID', `Syntax error: invalid ${spec.type} entry ${JSON.stringify(text)}`);
    if (spec.type === 'bitmap:port') {
      const range = parseBitmapRange(spec.range);
      const port = Number(entry);
      if (range && (port < range.from || port > range.to)) refuse('INVALID', IpsetReason.OUT_OF_RANGE);
    }
    return entry;
  }

  /** The state as `ipset save` prints it (sets by name, entries in canonical order). */
  dump(): string {
    return renderIpsetSave([...this.sets.values()]);
  }

  /** Replaces the whole state with `ipset save` text. */
  load(text: string): void {
    const next = new Map<string, FakeSet>();
    for (const s of parseIpsetSave(text)) {
      next.set(s.spec.name, { spec: kernelIpsetSpec(s.spec), entries: new Set(s.entries) });
    }
    this.sets = next;
  }
}

export interface FaultyIpsetOptions {
  /** Share of apply() calls that fail, 0..1. */
  readonly failureRate: number;
  /** PRNG seed, so a failing test replays the same faults. */
  readonly seed?: number;
}


/** Wraps a backend; a share of apply() calls fail with FAILED before anything is applied. */
export class FaultyIpset implements IpsetBackend {
  private readonly random: () => number;
  /** How many apply() calls were failed on purpose. */
  injected = 0;

  constructor(
    private readonly inner: IpsetBackend,
    private readonly options: FaultyIpsetOptions,
  ) {
    if (!(options.failureRate >= 0 && options.failureRate <= 1)) throw new RangeError(`failureRate ${options.failureRate} is not in 0..1`);
    this.random = seededRandom(options.seed ?? 1);
  }

  observe(names?: readonly string[]): Promise<IpsetState[]> {
    return this.inner.observe(names);
  }

  apply(ops: readonly IpsetOp[]): Promise<IpsetApplyResult> {
    if (ops.length > 0 && this.random() < this.options.failureRate) {
      this.injected++;
      const first = ops[0];
      const object = first ? ipsetOpObject(first) : '';
      return Promise.resolve({ applied: 0, error: new DataplaneError('FAILED', 'ipset', 'restore', object, 'injected fault', 0) });
    }
    return this.inner.apply(ops);
  }
}
