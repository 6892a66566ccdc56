// An in-memory model of the iptables tables of one family, for tests: iptables-restore --noflush
// is interpreted against a copy of each table and committed at that table's COMMIT, and it refuses
// what the kernel and the tool refuse (a jump to a missing chain, --match-set of a missing set, a
// rule in a missing chain, deleting a chain still in use) with the codes RealIptables reports.
import type { IpFamily } from '../../model/types.js';
import { DataplaneError, type DataplaneErrorCode } from '../errors.js';
import { numberedLines } from '../text-error.js';
import type { IptablesBackend } from './backend.js';
import {
  BUILTIN_CHAINS,
  canonicalRuleSpec,
  isBuiltinChain,
  parseIptablesSave,
  renderIptablesSave,
  splitRuleSpec,
  type IptablesTableState,
  type IptablesTables,
} from './text.js';
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
}

interface StoredRule {
  /** Canonical spec, as iptables-save prints it. */
  readonly spec: string;
  /** -j/-g target. */
  readonly target: string | undefined;
  /** Sets named by --match-set. */
  readonly sets: readonly string[];
}

interface ChainModel {
  policy: string | undefined;
  rules: StoredRule[];
}

type TableModel = Map<string, ChainModel>;

/** The tables a fresh network namespace shows once touched. */
const INITIAL_TABLES: readonly string[] = ['filter', 'nat', 'mangle', 'raw'];

/** Verdicts and the target extensions we expect to meet; anything else must be a chain. */
const KNOWN_TARGETS: ReadonlySet<string> = new Set([
  'ACCEPT', 'DROP', 'RETURN', 'QUEUE', 'NFQUEUE', 'MASQUERADE', 'SNAT', 'DNAT', 'REDIRECT', 'MARK', 'CONNMARK',
  'REJECT', 'LOG', 'NFLOG', 'NOTRACK', 'CT', 'TRACE', 'TCPMSS', 'CHECKSUM', 'AUDIT', 'SET', 'TPROXY',
]);

/** Targets the kernel accepts in the nat table only (EINVAL elsewhere). */
const NAT_ONLY_TARGETS: ReadonlySet<string> = new Set(['MASQUERADE', 'SNAT', 'DNAT', 'REDIRECT']);

const KNOWN_MATCHES: ReadonlySet<string> = new Set([
  'addrtype', 'ah', 'bpf', 'cgroup', 'cluster', 'comment', 'connbytes', 'connlabel', 'connlimit', 'connmark',
  'conntrack', 'cpu', 'devgroup', 'dscp', 'ecn', 'esp', 'hashlimit', 'helper', 'hl', 'icmp', 'icmp6', 'iprange',
  'ipvs', 'length', 'limit', 'mac', 'mark', 'multiport', 'nfacct', 'owner', 'physdev', 'pkttype', 'policy',
  'quota', 'recent', 'rpfilter', 'sctp', 'set', 'socket', 'state', 'statistic', 'string', 'tcp', 'tcpmss', 'time',
  'tos', 'ttl', 'u32', 'udp', 'udplite',
]);

const HEAD_WITH_VALUE: ReadonlySet<string> = new Set([
  '-s', '--source', '--src', '-d', '--destination', '--dst', '-i', '--in-interface', '-o', '--out-interface',
  '-p', '--protocol',
]);

/** Options that load the protocol's match implicitly after "-p tcp" etc. */
const IMPLICIT_PROTO_OPTIONS: ReadonlySet<string> = new Set([
  '--dport', '--sport', '--destination-port', '--source-port', '--syn', '--tcp-flags', '--tcp-option', '--chunk-types',
  '--icmp-type', '--icmpv6-type',
]);

const PROTOCOLS_WITH_MATCH: ReadonlySet<string> = new Set(['tcp', 'udp', 'sctp', 'icmp', 'ipv6-icmp', 'icmpv6', '6', '17', '132', '1', '58']);

/** XT_EXTENSION_MAXNAMELEN is 29 including the NUL. */
const MAX_CHAIN_NAME = 28;

/** Thrown inside a restore; becomes a DataplaneError with the line number. */
class Refusal extends Error {
  constructor(
    readonly code: DataplaneErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function refuse(code: DataplaneErrorCode, message: string): never {
  throw new Refusal(code, message);
}


function newTable(name: string): TableModel {
  const t: TableModel = new Map();
  for (const c of BUILTIN_CHAINS[name] ?? []) t.set(c, { policy: 'ACCEPT', rules: [] });
  return t;
}

function cloneTable(t: TableModel): TableModel {
  return new Map([...t].map(([name, c]) => [name, { policy: c.policy, rules: [...c.rules] }]));
}

function storedRule(spec: string): StoredRule {
  const args = splitRuleSpec(spec);
  let target: string | undefined;
  const sets: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-j' || a === '--jump' || a === '-g' || a === '--goto') target = args[i + 1];
    else if (a === '--match-set' && args[i + 1] !== undefined) sets.push(args[i + 1] ?? '');
  }
  return { spec, target, sets };
}

function checkChainName(name: string): void {
  if (name.length > MAX_CHAIN_NAME) refuse('INVALID', `chain name \`${name}' too long (must be under 29 chars)`);
  if (name === '' || name.startsWith('-') || name.startsWith('!') || KNOWN_TARGETS.has(name)) {
    refuse('INVALID', `invalid chain name \`${name}'`);
  }
}

export class FakeIptables implements IptablesBackend {
  readonly family: IpFamily;
  private tables = new Map<string, TableModel>();
  private readonly hasSet: (name: string) => boolean;
  private readonly random: (() => number) | undefined;
  private readonly failureRate: number;
  private readonly randomFully: boolean;
  /** How many restores were attempted, and how many the fault option failed. */
  restores = 0;
  injectedFailures = 0;

  constructor(options: FakeIptablesOptions) {
    this.family = options.family;
    this.hasSet = options.hasSet ?? (() => true);
    this.failureRate = options.faults?.failureRate ?? 0;
    this.random = options.faults ? seededRandom(options.faults.seed) : undefined;
    this.randomFully = options.randomFully ?? true;
    for (const t of INITIAL_TABLES) this.tables.set(t, newTable(t));
  }

  observe(): Promise<IptablesTables> {
    return Promise.resolve(this.snapshot());
  }

  supportsRandomFully(): Promise<boolean> {
    return Promise.resolve(this.randomFully);
  }

  restore(payload: string): Promise<void> {
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
      for (const r of state.rules) t.get(r.chain)?.rules.push(storedRule(canonicalRuleSpec(r.spec, this.family)));
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
    let open: { name: string; model: TableModel } | undefined;
    const lines = numberedLines(payload);
    for (const { n, line } of lines) {
      const text = line.trim();
      if (text === '' || text.startsWith('#')) continue;
      try {
        if (text.startsWith('*')) {
          if (open) refuse('INVALID', `table ${open.name} not committed before *${text.slice(1)}`);
          const name = text.slice(1).trim();
          if (!BUILTIN_CHAINS[name]) refuse('INVALID', `table name '${name}' invalid`);
          open = { name, model: cloneTable(this.tables.get(name) ?? newTable(name)) };
        } else if (!open) {
          refuse('INVALID', 'no table opened ("*table" expected)');
        } else if (text === 'COMMIT') {
          this.tables.set(open.name, open.model);
          open = undefined;
        } else if (text.startsWith(':')) {
          this.declareChain(open.name, open.model, text.slice(1));
        } else {
          this.command(open.name, open.model, text);
        }
      } catch (e) {
        if (e instanceof Refusal) {
          const table = open?.name ?? '';
          throw new DataplaneError(e.code, 'iptables', 'restore', `${table} ${objectOf(text)}`.trim(), `${e.message} at line ${n}: ${JSON.stringify(line)}`, n);
        }
        throw e;
      }
    }
    if (open) {
      const n = (lines[lines.length - 1]?.n ?? 0) + 1;
      throw new DataplaneError('INVALID', 'iptables', 'restore', open.name, `COMMIT expected at line ${n}`, n);
    }
  }

  /** ":CHAIN POLICY [p:b]": a built-in gets the policy; a user chain is created or flushed. */
  private declareChain(table: string, model: TableModel, rest: string): void {
    const [name = '', policy = '-'] = rest.trim().split(/\s+/);
    if (isBuiltinChain(table, name)) {
      const chain = model.get(name);
      if (!chain) return;
      if (policy === '-') return;
      if (policy !== 'ACCEPT' && policy !== 'DROP') refuse('INVALID', 'Bad policy name');
      chain.policy = policy;
      return;
    }
    checkChainName(name);
    // The tool ignores a policy given for a user chain.
    const chain = model.get(name);
    if (chain) chain.rules = [];
    else model.set(name, { policy: undefined, rules: [] });
  }

  private command(table: string, model: TableModel, text: string): void {
    let args: string[];
    try {
      args = splitRuleSpec(text);
    } catch (e) {
      refuse('INVALID', (e as Error).message);
    }
    const [cmd = '', chainArg, ...rest] = args;
    const chainOf = (): ChainModel => {
      if (chainArg === undefined) refuse('INVALID', `option "${cmd}" requires a chain`);
      const c = model.get(chainArg);
      if (!c) refuse('NOT_FOUND', 'No chain/target/match by that name');
      return c;
    };
    switch (cmd) {
      case '-A':
      case '--append': {
        const chain = chainOf();
        chain.rules.push(this.rule(table, model, rest));
        return;
      }
      case '-I':
      case '--insert': {
        const chain = chainOf();
        const hasIndex = rest[0] !== undefined && /^\d+$/.test(rest[0]);
        const index = hasIndex ? Number(rest[0]) : 1;
        const rule = this.rule(table, model, hasIndex ? rest.slice(1) : rest);
        if (index < 1 || index > chain.rules.length + 1) refuse('INVALID', 'Index of insertion too big');
        chain.rules.splice(index - 1, 0, rule);
        return;
      }
      case '-D':
      case '--delete': {
        const chain = chainOf();
        if (rest.length === 1 && /^\d+$/.test(rest[0] ?? '')) {
          const index = Number(rest[0]);
          if (index < 1 || index > chain.rules.length) refuse('NOT_FOUND', 'Index of deletion too big');
          chain.rules.splice(index - 1, 1);
          return;
        }
        const spec = this.rule(table, model, rest).spec;
        const at = chain.rules.findIndex((r) => r.spec === spec);
        if (at < 0) refuse('NOT_FOUND', 'Bad rule (does a matching rule exist in that chain?)');
        chain.rules.splice(at, 1);
        return;
      }
      case '-F':
      case '--flush':
        if (chainArg === undefined) for (const c of model.values()) c.rules = [];
        else chainOf().rules = [];
        return;
      case '-X':
      case '--delete-chain':
        if (chainArg === undefined) this.deleteAllUserChains(table, model);
        else this.deleteChain(table, model, chainArg);
        return;
      case '-N':
      case '--new-chain':
        if (chainArg === undefined) refuse('INVALID', 'option "-N" requires a chain');
        checkChainName(chainArg);
        if (model.has(chainArg)) refuse('EXISTS', 'Chain already exists');
        model.set(chainArg, { policy: undefined, rules: [] });
        return;
      case '-P':
      case '--policy': {
        if (chainArg === undefined || !isBuiltinChain(table, chainArg)) refuse('INVALID', 'Bad built-in chain name');
        const policy = rest[0];
        if (policy !== 'ACCEPT' && policy !== 'DROP') refuse('INVALID', 'Bad policy name');
        chainOf().policy = policy;
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

  private deleteChain(table: string, model: TableModel, name: string): void {
    // The tool reports a built-in chain like a missing one.
    if (isBuiltinChain(table, name)) refuse('NOT_FOUND', 'No chain/target/match by that name');
    const chain = model.get(name);
    if (!chain) refuse('NOT_FOUND', 'No chain/target/match by that name');
    if (chain.rules.length > 0) refuse('IN_USE', `CHAIN_DEL failed (Device or resource busy): chain ${name} has rules`);
    const from = referencedBy(model, name);
    if (from !== undefined) refuse('IN_USE', `CHAIN_DEL failed (Device or resource busy): chain ${name} is jumped to from ${from}`);
    model.delete(name);
  }

  private deleteAllUserChains(table: string, model: TableModel): void {
    const user = [...model.keys()].filter((c) => !isBuiltinChain(table, c));
    for (const name of user) {
      const chain = model.get(name);
      if (chain && chain.rules.length > 0) refuse('IN_USE', `CHAIN_DEL failed (Device or resource busy): chain ${name} has rules`);
      const from = referencedBy(model, name);
      if (from !== undefined) refuse('IN_USE', `CHAIN_DEL failed (Device or resource busy): chain ${name} is jumped to from ${from}`);
    }
    for (const name of user) model.delete(name);
  }

  /** Checks a rule spec as the tool and the kernel would, and returns it canonical. */
  private rule(table: string, model: TableModel, args: readonly string[]): StoredRule {
    let proto: string | undefined;
    let section: string | undefined;
    for (let i = 0; i < args.length; i++) {
      const a = args[i] ?? '';
      if (a === '!') continue;
      if (HEAD_WITH_VALUE.has(a)) {
        const value = args[++i];
        if (value === undefined) refuse('INVALID', `option "${a}" requires an argument`);
        if (a === '-p' || a === '--protocol') proto = value.toLowerCase();
      } else if (a === '-f' || a === '--fragment') {
        continue;
      } else if (a === '-m' || a === '--match') {
        const name = args[++i] ?? '';
        if (!KNOWN_MATCHES.has(name)) refuse('UNAVAILABLE', `Couldn't load match \`${name}'`);
        section = name;
      } else if (a === '-j' || a === '--jump' || a === '-g' || a === '--goto') {
        const target = args[++i] ?? '';
        this.checkTarget(table, model, target, a === '-g' || a === '--goto');
        section = target;
      } else if (a === '--match-set' && section === 'set') {
        const name = args[++i] ?? '';
        if (!this.hasSet(name)) refuse('NOT_FOUND', `Set ${name} doesn't exist.`);
      } else if (section === undefined) {
        // Before any -m/-j only generic options and the protocol's implicit ones are understood.
        const implicit = proto !== undefined && PROTOCOLS_WITH_MATCH.has(proto) && IMPLICIT_PROTO_OPTIONS.has(a);
        if (!implicit) refuse('INVALID', a.startsWith('-') ? `unknown option "${a}"` : `Bad argument \`${a}'`);
        section = proto;
      }
    }
    try {
      return storedRule(canonicalRuleSpec(args.map(quoteIfNeeded).join(' '), this.family));
    } catch (e) {
      refuse('INVALID', (e as Error).message);
    }
  }

  private checkTarget(table: string, model: TableModel, target: string, isGoto: boolean): void {
    if (target === '') refuse('INVALID', 'target name missing');
    if (model.has(target)) {
      if (isBuiltinChain(table, target)) refuse('INVALID', `cannot jump to built-in chain ${target}`);
      return;
    }
    if (isGoto || !KNOWN_TARGETS.has(target)) refuse('NOT_FOUND', `Chain '${target}' does not exist`);
    if (NAT_ONLY_TARGETS.has(target) && table !== 'nat') refuse('INVALID', `RULE_APPEND failed (Invalid argument): ${target} is valid in the nat table only`);
  }
}

/** The chain a rule of the table jumps to `name` from, if any. */
function referencedBy(model: TableModel, name: string): string | undefined {
  for (const [chain, c] of model) if (c.rules.some((r) => r.target === name)) return chain;
  return undefined;
}

/** Re-quotes an argument splitRuleSpec produced, so the joined spec splits the same way. */
function quoteIfNeeded(arg: string): string {
  return arg === '' || /[\s"\\]/.test(arg) ? `"${arg.replace(/["\\]/g, (c) => `\\${c}`)}"` : arg;
}

/** "KUBE-SERVICES" out of "-A KUBE-SERVICES ..." or ":KUBE-SERVICES - [0:0]", for error objects. */
function objectOf(text: string): string {
  const m = /^(?::(\S+)|-{1,2}[A-Za-z-]+\s+(\S+))/.exec(text);
  return m?.[1] ?? m?.[2] ?? '';
}
