// An in-memory model of the iptables tables of one family, for tests: iptables-restore --noflush
// is interpreted against a copy of each table and committed at that table's COMMIT. It refuses what
// iptables-restore (1.8, nf_tables) and the kernel refuse (rule-check.ts: bad options and values,
// targets outside their table or hooks, jump loops; here: missing chains, sets and rules, chains
// still in use) with the codes RealIptables reports, and in the same order: a parse error at
// once, a lookup failure or a kernel refusal at COMMIT (test/dataplane/iptables/contract.test.ts
// runs generated payloads on both and compares).
import type { IpFamily } from '../../model/types.js';
import { DataplaneError } from '../errors.js';
import { numberedLines } from '../../model/text/error.js';
import type { IptablesBackend } from './backend.js';
import { KNOWN_TARGETS, Refusal, checkRule, refuse } from './rule-check.js';
import {
  BUILTIN_CHAINS,
  canonicalRuleSpec,
  isBuiltinChain,
  parseIptablesSave,
  renderIptablesSave,
  splitRuleSpec,
  type IptablesTableState,
  type IptablesTables,
} from '../../model/text/iptables.js';
import { seededRandom } from '../prng.js';

export interface FakeIptablesOptions {
  readonly family: IpFamily;
  /**
   * Whether an ipset of that name exists (wire the ipset fake in here). Without it every set is
   * taken to exist, so the iptables fake can be used alone.
   */
  readonly hasSet?: (name: string) => boolean;
  /** Fail this share (0..1) of restores with FAILED, applying nothing; seeded, so repeatable. */
  readonly faults?: { readonly failureRate: number; readonly seed: number };
  /** Answer of supportsRandomFully() (iptables ≥ 1.6.2 says true). */
  readonly randomFully?: boolean;
  /** Matches whose kernel module is missing, e.g. ["ipvs"] for a kernel without xt_ipvs. */
  readonly unavailableMatches?: readonly string[];
  /** The legacy xtables build: no ruleset generation (default: the nf_tables build, which has one). */
  readonly legacy?: boolean;
}

interface StoredRule {
  /** Canonical spec, as iptables-save prints it. */
  readonly spec: string;
  /** -j/-g target. */
  readonly target: string | undefined;
  /** Sets named by --match-set. */
  readonly sets: readonly string[];
  /** Built-in chains the rule may be reached from (its target's and matches' hooks); undefined: any. */
  readonly hooks: ReadonlySet<string> | undefined;
}

interface ChainModel {
  policy: string | undefined;
  rules: StoredRule[];
}

type TableModel = Map<string, ChainModel>;

/** The tables a fresh network namespace shows once touched. */
const INITIAL_TABLES: readonly string[] = ['filter', 'nat', 'mangle', 'raw'];

/** XT_EXTENSION_MAXNAMELEN is 29 including the NUL. */
const MAX_CHAIN_NAME = 28;

/** A refusal iptables-nft reports only at the table's COMMIT, with the line it came from. */
interface Pending {
  readonly refusal: Refusal;
  readonly n: number;
  readonly line: string;
}

/**
 * A refusal the kernel will give unless a later "-F CHAIN" of the batch takes back the appends it
 * comes from (iptables-nft drops a flushed chain's pending appends before sending the batch).
 */
interface PendingKernel {
  readonly pending: Pending;
  /** Chains whose flush cancels it; undefined when none does (a chain deletion). */
  readonly causes: ReadonlySet<string> | undefined;
}

interface OpenTable {
  readonly name: string;
  readonly model: TableModel;
  /** The first refusal of the batch-building step (chain and rule lookups). */
  deferred?: Pending;
  /** The kernel's refusals in line order; the first is reported when no deferred one exists. */
  kernel: PendingKernel[];
  /** Rules appended or inserted by this batch (a flush of their chain takes them back). */
  readonly added: Set<StoredRule>;
}

function newTable(name: string): TableModel {
  const t: TableModel = new Map();
  for (const c of BUILTIN_CHAINS[name] ?? []) t.set(c, { policy: 'ACCEPT', rules: [] });
  return t;
}

function cloneTable(t: TableModel): TableModel {
  return new Map([...t].map(([name, c]) => [name, { policy: c.policy, rules: [...c.rules] }]));
}

/** A rule read from iptables-save text, trusted as the kernel held it. */
function loadedRule(spec: string, table: string, chain: string, family: IpFamily): StoredRule {
  const args = splitRuleSpec(spec);
  try {
    const r = checkRule(args, { family, table, chain, hasSet: () => true, unavailableMatches: new Set() });
    return { spec, target: r.target, sets: r.sets, hooks: r.hooks };
  } catch {
    let target: string | undefined;
    const sets: string[] = [];
    args.forEach((a, i) => {
      if (a === '-j' || a === '-g') target = args[i + 1];
      if (a === '--match-set' && args[i + 1] !== undefined) sets.push(args[i + 1] ?? '');
    });
    return { spec, target, sets, hooks: undefined };
  }
}

function checkChainName(name: string): void {
  if (name.length > MAX_CHAIN_NAME) refuse('INVALID', `chain name \`${name}' too long (must be under 29 chars)`);
  if (name === '' || name.startsWith('-')) refuse('INVALID', `chain name not allowed to start with \`-'`);
  if (name.startsWith('!')) refuse('INVALID', `chain name \`${name}' is invalid`);
  if (KNOWN_TARGETS.has(name)) refuse('INVALID', 'chain name may not clash with target name');
}

/** For each chain, the built-in chains (hooks) it is reached from through jumps and gotos. */
function reachingHooks(table: string, model: TableModel): Map<string, Set<string>> {
  const hooks = new Map<string, Set<string>>();
  for (const builtin of BUILTIN_CHAINS[table] ?? []) {
    if (!model.has(builtin)) continue;
    const stack = [builtin];
    const seen = new Set<string>();
    while (stack.length > 0) {
      const c = stack.pop() as string;
      if (seen.has(c)) continue;
      seen.add(c);
      let set = hooks.get(c);
      if (!set) hooks.set(c, (set = new Set()));
      set.add(builtin);
      for (const r of model.get(c)?.rules ?? []) if (r.target !== undefined && model.has(r.target) && !isBuiltinChain(table, r.target)) stack.push(r.target);
    }
  }
  return hooks;
}

/** A jump cycle reachable from a built-in chain (the kernel refuses it: ELOOP). */
function hasReachableLoop(table: string, model: TableModel): boolean {
  const state = new Map<string, 'open' | 'done'>();
  const visit = (c: string): boolean => {
    const s = state.get(c);
    if (s === 'open') return true;
    if (s === 'done') return false;
    state.set(c, 'open');
    for (const r of model.get(c)?.rules ?? []) {
      if (r.target !== undefined && model.has(r.target) && !isBuiltinChain(table, r.target) && visit(r.target)) return true;
    }
    state.set(c, 'done');
    return false;
  };
  return (BUILTIN_CHAINS[table] ?? []).some((b) => model.has(b) && visit(b));
}

/**
 * What the kernel refuses in the table as it now is: each rule reachable from a hook it may not
 * run in (by rule, with its chain), and whether a jump loop is reachable from a built-in chain.
 */
function tableViolations(table: string, model: TableModel): { readonly hooks: Map<StoredRule, string>; readonly loop: boolean } {
  const reach = reachingHooks(table, model);
  const hooks = new Map<StoredRule, string>();
  for (const [chain, c] of model) {
    const from = reach.get(chain);
    if (!from) continue;
    for (const r of c.rules) if (r.hooks && [...from].some((h) => !r.hooks?.has(h))) hooks.set(r, chain);
  }
  return { hooks, loop: hasReachableLoop(table, model) };
}

export class FakeIptables implements IptablesBackend {
  readonly family: IpFamily;
  private tables = new Map<string, TableModel>();
  private readonly hasSet: (name: string) => boolean;
  private readonly random: (() => number) | undefined;
  private readonly failureRate: number;
  private readonly randomFully: boolean;
  private readonly unavailableMatches: ReadonlySet<string>;
  /** How many restores were attempted, and how many the fault option failed. */
  restores = 0;
  injectedFailures = 0;
  /** How many times observe() ran (each is an iptables-save spawn on a real host). */
  observes = 0;
  /** nf_tables' ruleset generation: bumped by every restore and load, whatever they changed. */
  private gen = 1;
  private readonly legacy: boolean;

  constructor(options: FakeIptablesOptions) {
    this.family = options.family;
    this.hasSet = options.hasSet ?? (() => true);
    this.failureRate = options.faults?.failureRate ?? 0;
    this.random = options.faults ? seededRandom(options.faults.seed) : undefined;
    this.randomFully = options.randomFully ?? true;
    this.unavailableMatches = new Set(options.unavailableMatches ?? []);
    this.legacy = options.legacy ?? false;
    for (const t of INITIAL_TABLES) this.tables.set(t, newTable(t));
  }

  observe(): Promise<IptablesTables> {
    this.observes++;
    return Promise.resolve(this.snapshot());
  }

  generation(): Promise<number | undefined> {
    return Promise.resolve(this.legacy ? undefined : this.gen);
  }

  supportsRandomFully(): Promise<boolean> {
    return Promise.resolve(this.randomFully);
  }

  restore(payload: string): Promise<void> {
    this.gen++;
    try {
      this.restoreSync(payload);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** Whether any rule of any table matches the set: the kernel refuses to destroy such a set. */
  isSetReferenced(name: string): boolean {
    for (const t of this.tables.values()) for (const c of t.values()) if (c.rules.some((r) => r.sets.includes(name))) return true;
    return false;
  }

  /** iptables-save text of every table, built-in chains included. */
  dump(): string {
    return renderIptablesSave(this.snapshot());
  }

  /** Replaces the whole state with iptables-save text (as dump() or the real tool prints it). */
  load(text: string): void {
    this.gen++;
    const parsed = parseIptablesSave(text);
    const tables = new Map<string, TableModel>();
    for (const t of INITIAL_TABLES) tables.set(t, newTable(t));
    for (const [name, state] of parsed) {
      const t = newTable(name);
      for (const [chain, c] of state.chains) {
        const existing = t.get(chain);
        if (existing) existing.policy = c.policy ?? existing.policy;
        else t.set(chain, { policy: undefined, rules: [] });
      }
      for (const r of state.rules) t.get(r.chain)?.rules.push(loadedRule(canonicalRuleSpec(r.spec, this.family), name, r.chain, this.family));
      tables.set(name, t);
    }
    this.tables = tables;
  }

  private snapshot(): IptablesTables {
    const out: IptablesTables = new Map();
    for (const [name, t] of this.tables) {
      const builtins = BUILTIN_CHAINS[name] ?? [];
      const rank = (c: string): number => (builtins.includes(c) ? builtins.indexOf(c) : builtins.length);
      // iptables-save's order: built-ins in hook order, then user chains by name.
      const chains = [...t.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
      const state: IptablesTableState = { chains: new Map(), rules: [] };
      for (const c of chains) {
        const model = t.get(c);
        if (!model) continue;
        state.chains.set(c, { policy: model.policy });
        for (const r of model.rules) state.rules.push({ chain: c, spec: r.spec });
      }
      out.set(name, state);
    }
    return out;
  }

  private restoreSync(payload: string): void {
    this.restores++;
    if (this.random && this.random() < this.failureRate) {
      this.injectedFailures++;
      throw new DataplaneError('FAILED', 'iptables', 'restore', 'payload', 'injected fault (nothing applied)');
    }
    let open: OpenTable | undefined;
    const lines = numberedLines(payload);
    const fail = (table: string, p: Pending): DataplaneError =>
      new DataplaneError(p.refusal.code, 'iptables', 'restore', `${table} ${objectOf(p.line.trim())}`.trim(), `${p.refusal.message} at line ${p.n}: ${JSON.stringify(p.line)}`, p.n);
    for (const { n, line } of lines) {
      const text = line.trim();
      if (text === '' || text.startsWith('#')) continue;
      try {
        if (text.startsWith('*')) {
          if (open) refuse('INVALID', `Bad argument \`${text}'`);
          const name = text.slice(1).trim();
          if (!BUILTIN_CHAINS[name]) refuse('INVALID', `table name '${name}' invalid`);
          open = { name, model: cloneTable(this.tables.get(name) ?? newTable(name)), kernel: [], added: new Set() };
        } else if (!open) {
          refuse('INVALID', 'no table opened ("*table" expected)');
        } else if (text === 'COMMIT') {
          // iptables-nft builds the table's batch here (lookups), then the kernel checks it.
          const pending = open.deferred ?? open.kernel[0]?.pending;
          if (pending) throw fail(open.name, pending);
          this.tables.set(open.name, open.model);
          open = undefined;
        } else {
          const table = open;
          const later = (r: Refusal, causes?: ReadonlySet<string>): void => {
            const p = { refusal: r, n, line };
            if (r.phase === 'deferred') table.deferred ??= p;
            else table.kernel.push({ pending: p, causes });
          };
          try {
            if (text.startsWith(':')) this.declareChain(table, text.slice(1));
            else this.command(table, text, later);
          } catch (e) {
            if (!(e instanceof Refusal) || e.phase === 'parse') throw e;
            later(e);
          }
        }
      } catch (e) {
        if (e instanceof Refusal) throw fail(open?.name ?? '', { refusal: e, n, line });
        throw e;
      }
    }
    if (open) {
      const n = (lines[lines.length - 1]?.n ?? 0) + 1;
      throw new DataplaneError('INVALID', 'iptables', 'restore', open.name, `COMMIT expected at line ${n}`, n);
    }
  }

  /** ":CHAIN POLICY [p:b]": a built-in gets the policy; a user chain is created or flushed. */
  private declareChain(open: OpenTable, rest: string): void {
    const [name = '', policy] = rest.trim().split(/\s+/);
    if (policy === undefined) refuse('INVALID', `policy invalid`);
    if (isBuiltinChain(open.name, name)) {
      const chain = open.model.get(name);
      if (!chain || policy === '-') return;
      if (policy !== 'ACCEPT' && policy !== 'DROP') refuse('INVALID', 'Bad policy name', 'deferred');
      chain.policy = policy;
      return;
    }
    checkChainName(name);
    // The tool ignores a policy given for a user chain.
    const chain = open.model.get(name);
    if (chain) chain.rules = [];
    else open.model.set(name, { policy: undefined, rules: [] });
  }

  private command(open: OpenTable, text: string, later: (r: Refusal, causes?: ReadonlySet<string>) => void): void {
    const { name: table, model } = open;
    let args: string[];
    try {
      args = splitRuleSpec(text);
    } catch (e) {
      refuse('INVALID', (e as Error).message);
    }
    const [cmd = '', chainArg, ...rest] = args;
    const needChain = (): string => {
      if (chainArg === undefined) refuse('INVALID', `option "${cmd}" requires an argument`);
      return chainArg;
    };
    const noMore = (extra: readonly string[]): void => {
      if (extra[0] !== undefined) refuse('INVALID', `Bad argument \`${extra[0]}'`);
    };
    /** The chain, looked up when iptables-nft builds the batch. */
    const lookup = (name: string): ChainModel => {
      const c = model.get(name);
      if (!c) refuse('NOT_FOUND', 'No chain/target/match by that name', 'deferred');
      return c;
    };
    const ruleNumber = (t: string): number => {
      const index = Number(t);
      if (index < 1) refuse('INVALID', `Invalid rule number \`${t}'`);
      return index;
    };
    switch (cmd) {
      case '-A':
      case '--append':
      case '-I':
      case '--insert': {
        const name = needChain();
        const insert = cmd === '-I' || cmd === '--insert';
        const hasIndex = insert && rest[0] !== undefined && /^\d+$/.test(rest[0]);
        const index = hasIndex ? ruleNumber(rest[0] ?? '') : 1;
        const rules = this.rules(open, name, hasIndex ? rest.slice(1) : rest, later);
        const chain = lookup(name);
        if (insert && index > chain.rules.length + 1) refuse('INVALID', 'Index of insertion too big', 'deferred');
        const before = tableViolations(table, model);
        // One rule per address, each inserted at the index: the last address ends up first.
        if (insert) for (const r of rules) chain.rules.splice(index - 1, 0, r);
        else chain.rules.push(...rules);
        for (const r of rules) open.added.add(r);
        // The kernel refuses the rule that makes a violation reachable (or a loop): this one.
        const after = tableViolations(table, model);
        for (const [r, inChain] of after.hooks) {
          if (before.hooks.has(r)) continue;
          const causes = new Set([name, ...(open.added.has(r) ? [inChain] : [])]);
          later(new Refusal('INVALID', `RULE_APPEND failed (Invalid argument): ${r.target ?? 'a match'} in ${inChain} may not run where it is now reached`, 'kernel'), causes);
        }
        if (after.loop && !before.loop) {
          const jumps = [...open.added].filter((r) => r.target !== undefined && model.has(r.target));
          const causes = new Set([name, ...[...model].filter(([, c]) => c.rules.some((r) => jumps.includes(r))).map(([c]) => c)]);
          later(new Refusal('INVALID', 'RULE_APPEND failed (Too many links): jump loop', 'kernel'), causes);
        }
        return;
      }
      case '-D':
      case '--delete': {
        const name = needChain();
        if (rest.length === 1 && /^\d+$/.test(rest[0] ?? '')) {
          const index = ruleNumber(rest[0] ?? '');
          const chain = lookup(name);
          if (index > chain.rules.length) refuse('NOT_FOUND', 'Index of deletion too big', 'deferred');
          chain.rules.splice(index - 1, 1);
          return;
        }
        const rules = this.rules(open, name, rest, () => undefined);
        const chain = lookup(name);
        for (const r of rules) {
          const at = chain.rules.findIndex((x) => x.spec === r.spec);
          if (at < 0) refuse('NOT_FOUND', 'Bad rule (does a matching rule exist in that chain?)', 'deferred');
          chain.rules.splice(at, 1);
        }
        return;
      }
      case '-F':
      case '--flush': {
        noMore(rest);
        const flushed = chainArg === undefined ? [...model.keys()] : [chainArg];
        for (const c of flushed) lookup(c).rules = [];
        // iptables-nft drops the batch's pending appends to a flushed chain: the kernel never sees them.
        open.kernel = open.kernel.filter((k) => !k.causes || !flushed.some((c) => k.causes?.has(c)));
        return;
      }
      case '-X':
      case '--delete-chain':
        noMore(rest);
        if (chainArg === undefined) this.deleteAllUserChains(table, model, later);
        else this.deleteChain(table, model, chainArg, later);
        return;
      case '-N':
      case '--new-chain': {
        const name = needChain();
        noMore(rest);
        checkChainName(name);
        if (model.has(name)) refuse('EXISTS', 'Chain already exists', 'deferred');
        model.set(name, { policy: undefined, rules: [] });
        return;
      }
      case '-P':
      case '--policy': {
        const name = needChain();
        const [policy, ...extra] = rest;
        if (policy === undefined || policy.startsWith('-')) refuse('INVALID', `option "${cmd}" requires an argument`);
        noMore(extra);
        // -P reads its policy like a -j target (no DROP in nat); ":CHAIN DROP" does not.
        if (table === 'nat' && policy === 'DROP') refuse('INVALID', 'The "nat" table is not intended for filtering, the use of DROP is therefore inhibited.');
        if (policy !== 'ACCEPT' && policy !== 'DROP') refuse('INVALID', 'Bad policy name', 'deferred');
        if (!isBuiltinChain(table, name)) refuse('INVALID', 'Bad built-in chain name', 'deferred');
        lookup(name).policy = policy;
        return;
      }
      case '-Z':
      case '--zero':
        // Counters are not modelled.
        return;
      default:
        refuse('INVALID', cmd.startsWith('-') ? `unknown option "${cmd}"` : `Bad argument \`${cmd}'`);
    }
  }

  private deleteChain(table: string, model: TableModel, name: string, later: (r: Refusal, causes?: ReadonlySet<string>) => void): void {
    // The tool reports a built-in chain like a missing one.
    if (isBuiltinChain(table, name) || !model.has(name)) refuse('NOT_FOUND', 'No chain/target/match by that name', 'deferred');
    const problem = busy(model, name);
    if (problem) later(problem);
    model.delete(name);
  }

  private deleteAllUserChains(table: string, model: TableModel, later: (r: Refusal, causes?: ReadonlySet<string>) => void): void {
    const user = [...model.keys()].filter((c) => !isBuiltinChain(table, c));
    for (const name of user) {
      const problem = busy(model, name);
      if (problem) later(problem);
    }
    for (const name of user) model.delete(name);
  }

  /** Checks the rule arguments (throwing parse and lookup refusals) and gives the rules to store. */
  private rules(open: OpenTable, chain: string, args: readonly string[], later: (r: Refusal, causes?: ReadonlySet<string>) => void): StoredRule[] {
    const checked = checkRule(args, { family: this.family, table: open.name, chain, hasSet: this.hasSet, unavailableMatches: this.unavailableMatches });
    const target = checked.target;
    if (target !== undefined && !checked.targetIsExtension) {
      // Jumps are resolved when the batch is built, before the chain the rule goes to.
      if (!open.model.has(target)) refuse('NOT_FOUND', `Chain '${target}' does not exist`, 'deferred');
      if (isBuiltinChain(open.name, target)) {
        // nf_tables: a jump to a base chain is EOPNOTSUPP from a base chain, ENOENT from a user chain.
        later(
          isBuiltinChain(open.name, chain)
            ? new Refusal('INVALID', 'RULE_APPEND failed (Operation not supported): jump to a built-in chain', 'kernel')
            : new Refusal('NOT_FOUND', 'RULE_APPEND failed (No such file or directory): jump to a built-in chain', 'kernel'),
          new Set([chain]),
        );
      }
    }
    if (checked.kernel) later(checked.kernel, new Set([chain]));
    return checked.specs.map((spec) => ({ spec, target, sets: checked.sets, hooks: checked.hooks }));
  }
}

/** Why the kernel refuses to delete the chain (EBUSY): it has rules, or a rule jumps to it. */
function busy(model: TableModel, name: string): Refusal | undefined {
  if ((model.get(name)?.rules.length ?? 0) > 0) return new Refusal('IN_USE', `CHAIN_DEL failed (Device or resource busy): chain ${name} has rules`, 'kernel');
  const from = referencedBy(model, name);
  if (from !== undefined) return new Refusal('IN_USE', `CHAIN_DEL failed (Device or resource busy): chain ${name} is jumped to from ${from}`, 'kernel');
  return undefined;
}

/** The chain a rule of the table jumps to `name` from, if any. */
function referencedBy(model: TableModel, name: string): string | undefined {
  for (const [chain, c] of model) if (c.rules.some((r) => r.target === name)) return chain;
  return undefined;
}

/** "KUBE-SERVICES" out of "-A KUBE-SERVICES ..." or ":KUBE-SERVICES - [0:0]", for error objects. */
function objectOf(text: string): string {
  const m = /^(?::(\S+)|-{1,2}[A-Za-z-]+\s+(\S+))/.exec(text);
  return m?.[1] ?? m?.[2] ?? '';
}
