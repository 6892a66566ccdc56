// A small iptables rule evaluator for the packet tracer: compiles canonical rule specs (as the
// planner emits them, in iptables-save form) into predicates and walks chains the way the kernel's
// ip_tables does (first matching terminal target wins, RETURN pops, falling off a built-in chain
// applies its policy). It supports exactly the matches and targets kube-proxy's IPVS mode writes;
// anything else throws a TraceError, because an ignored match would make a trace lie.
import { BUILTIN_CHAINS, joinRuleSpec, splitRuleSpec } from '../model/text/iptables.js';
import { cidrContains, hostPrefix, parseCidr, parseIp } from '../model/ip.js';
import type { ParsedCidr, ParsedIp } from '../model/ip.js';
import type { IptablesTable } from '../model/kernel.js';
import type { TableName } from '../model/names.js';
import type { IpFamily, Protocol } from '../model/types.js';
import type { IpsetIndex } from './ipset-match.js';
import { parseSetDirs } from './ipset-match.js';
import { TraceError } from './trace-error.js';

export type ConntrackState = 'NEW' | 'ESTABLISHED';

/** What IPVS recorded on a packet it handled: what `-m ipvs` reads. */
export interface IpvsInfo {
  readonly vaddr: ParsedIp;
  readonly vproto: number;
  readonly vport: number;
}

/** The packet as one hook sees it. Only the mark changes during a traversal. */
export interface EvalPacket {
  readonly family: IpFamily;
  readonly src: ParsedIp;
  readonly dst: ParsedIp;
  readonly dstPort: number;
  readonly protocol: Protocol;
  /** The input interface; '' at hooks that have none (OUTPUT, POSTROUTING); undefined when unknown. */
  readonly inInterface: string | undefined;
  readonly ctState: ConntrackState;
  /** Set once IPVS has handled the packet. */
  readonly ipvs: IpvsInfo | undefined;
  /** skb->mark, unsigned 32 bits. */
  mark: number;
}

export interface MatchEnv {
  /** `-m addrtype` LOCAL: the node's local addresses. */
  readonly isLocal: (ip: ParsedIp) => boolean;
  readonly sets: IpsetIndex;
}

type Condition = (p: EvalPacket, env: MatchEnv) => boolean;

export type Target =
  | { readonly kind: 'ACCEPT' | 'DROP' | 'RETURN' | 'MASQUERADE' | 'NONE' }
  | { readonly kind: 'REJECT'; readonly rejectWith: string }
  | { readonly kind: 'JUMP'; readonly chain: string }
  | { readonly kind: 'MARK'; readonly value: number; readonly mask: number };

export interface CompiledRule {
  readonly chain: string;
  readonly spec: string;
  readonly conditions: readonly Condition[];
  readonly target: Target;
}

export const PROTOCOL_NUMBERS: Readonly<Record<Protocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

/** Target extensions we know exist but do not model; a user chain never has these names. */
const UNSUPPORTED_TARGETS: ReadonlySet<string> = new Set([
  'SNAT', 'DNAT', 'REDIRECT', 'NETMAP', 'LOG', 'NFLOG', 'ULOG', 'CT', 'NOTRACK', 'TRACE', 'CONNMARK', 'CLASSIFY',
  'TCPMSS', 'TPROXY', 'CHECKSUM', 'NFQUEUE', 'QUEUE', 'AUDIT', 'SET', 'TEE', 'DSCP', 'TOS', 'TTL', 'HL', 'SECMARK',
  'CONNSECMARK', 'IDLETIMER', 'LED', 'HMARK', 'SYNPROXY', 'RATEEST', 'MIRROR',
]);

const CT_STATES: ReadonlySet<string> = new Set(['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED']);

function bad(spec: string, why: string): never {
  throw new TraceError(`cannot evaluate rule ${JSON.stringify(spec)}: ${why}`);
}

function parseNumber32(text: string, spec: string): number {
  if (!/^(0x[0-9a-fA-F]{1,8}|\d{1,10})$/.test(text)) bad(spec, `bad number ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n > 0xffffffff) bad(spec, `number ${text} exceeds 32 bits`);
  return n >>> 0;
}

/** "V/M" or "V" (mask all ones), as the mark match and MARK target take them. */
function parseValueMask(text: string, spec: string): { value: number; mask: number } {
  const [v, m, extra] = text.split('/');
  if (extra !== undefined || v === undefined) bad(spec, `bad mark ${JSON.stringify(text)}`);
  return { value: parseNumber32(v, spec), mask: m === undefined ? 0xffffffff : parseNumber32(m, spec) };
}

function parseAddress(text: string, family: IpFamily, spec: string): ParsedCidr {
  const ip = text.includes('/') ? undefined : parseIp(text);
  const cidr = ip ? parseCidr(`${text}/${hostPrefix(ip.family)}`) : parseCidr(text);
  if (!cidr) bad(spec, `bad address ${JSON.stringify(text)}`);
  if (cidr.family !== family) bad(spec, `${text} is not an ${family} address (wrong table family)`);
  return cidr;
}

function parseProtocol(text: string, spec: string): number | 'all' {
  const t = text.toLowerCase();
  if (t === 'all' || t === '0') return 'all';
  if (t === 'tcp' || t === 'udp' || t === 'sctp') return PROTOCOL_NUMBERS[t.toUpperCase() as Protocol];
  if (/^\d{1,3}$/.test(t) && Number(t) <= 255) return Number(t);
  bad(spec, `unsupported protocol ${JSON.stringify(text)}`);
}

/** iptables' interface match: a trailing '+' makes the name a prefix. */
function interfaceMatches(pattern: string, name: string): boolean {
  return pattern.endsWith('+') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

interface IpvsOption {
  readonly negate: boolean;
  readonly test: (info: IpvsInfo) => boolean;
}

/**
 * Compiles one rule. Options are taken in canonical order: generic matches, `-m MODULE` followed by
 * that module's options, then `-j TARGET` and the target's options last.
 */
export function compileRule(chain: string, spec: string, family: IpFamily): CompiledRule {
  const args = splitRuleSpec(spec);
  const conditions: Condition[] = [];
  let target: Target = { kind: 'NONE' };
  let module: string | undefined;
  let ipvsOptions: IpvsOption[] | undefined;
  let negate = false;
  let i = 0;
  const value = (opt: string): string => {
    const v = args[++i];
    if (v === undefined) bad(spec, `${opt} needs a value`);
    return v;
  };
  const add = (neg: boolean, c: Condition): void => void conditions.push(neg ? (p, env) => !c(p, env) : c);
  // xt_ipvs: a packet IPVS did not handle matches only a rule that is exactly `! --ipvs`.
  const flushIpvs = (): void => {
    if (!ipvsOptions) return;
    const opts = ipvsOptions;
    ipvsOptions = undefined;
    conditions.push((p) => {
      if (!p.ipvs) return opts.length === 1 && opts[0]?.negate === true && opts[0].test === IS_IPVS;
      const info = p.ipvs;
      return opts.every((o) => o.test(info) !== o.negate);
    });
  };

  for (; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '!') {
      if (negate) bad(spec, 'double negation');
      negate = true;
      continue;
    }
    const neg = negate;
    negate = false;
    switch (a) {
      case '-s':
      case '--source':
      case '-d':
      case '--destination': {
        const cidr = parseAddress(value(a), family, spec);
        const useSrc = a === '-s' || a === '--source';
        add(neg, (p) => cidrContains(cidr, useSrc ? p.src : p.dst));
        break;
      }
      case '-i':
      case '--in-interface': {
        const pattern = value(a);
        add(neg, (p) => {
          if (p.inInterface === undefined) bad(spec, 'it matches on the input interface (-i), which was not given');
          return interfaceMatches(pattern, p.inInterface);
        });
        break;
      }
      case '-p':
      case '--protocol': {
        const proto = parseProtocol(value(a), spec);
        add(neg, (p) => proto === 'all' || PROTOCOL_NUMBERS[p.protocol] === proto);
        break;
      }
      case '-m':
      case '--match': {
        if (neg) bad(spec, '"!" before -m');
        flushIpvs();
        module = value(a);
        if (!['comment', 'set', 'addrtype', 'physdev', 'mark', 'conntrack', 'ipvs'].includes(module)) bad(spec, `unsupported match module "${module}"`);
        if (module === 'ipvs') ipvsOptions = [];
        break;
      }
      case '-j':
      case '--jump': {
        if (neg) bad(spec, '"!" before -j');
        flushIpvs();
        const name = value(a);
        target = compileTarget(args.slice(i + 1), name, spec);
        i = args.length;
        break;
      }
      default: {
        if (!a.startsWith('--')) bad(spec, `unsupported option ${JSON.stringify(a)}`);
        const consumed = moduleOption(module, a, neg);
        if (consumed) add(neg && consumed !== ALWAYS, consumed);
      }
    }
  }
  if (negate) bad(spec, 'dangling "!"');
  flushIpvs();
  return { chain, spec, conditions, target };

  // Returns the option's condition (negation applied by the caller), ALWAYS for options that do
  // not filter (comments), or undefined when it was folded into a module-level condition.
  function moduleOption(mod: string | undefined, opt: string, neg: boolean): Condition | undefined {
    switch (`${mod ?? ''} ${opt}`) {
      case 'comment --comment':
        if (neg) bad(spec, '"!" before --comment');
        value(opt);
        return ALWAYS;
      case 'set --match-set': {
        const name = value(opt);
        const dirs = parseSetDirs(value(opt));
        return (p, env) => env.sets.test(name, dirs, p);
      }
      case 'addrtype --src-type':
      case 'addrtype --dst-type': {
        const type = value(opt);
        if (type !== 'LOCAL') bad(spec, `address type ${type} is not modelled (only LOCAL)`);
        const src = opt === '--src-type';
        return (p, env) => env.isLocal(src ? p.src : p.dst);
      }
      case 'physdev --physdev-is-in':
        // Model: no bridge, so no packet came in through a bridge port.
        return () => false;
      case 'mark --mark': {
        const { value: v, mask } = parseValueMask(value(opt), spec);
        return (p) => ((p.mark & mask) >>> 0) === v;
      }
      case 'conntrack --ctstate': {
        const states = value(opt).split(',');
        for (const s of states) if (!CT_STATES.has(s)) bad(spec, `conntrack state ${s} is not modelled`);
        return (p) => states.includes(p.ctState);
      }
      case 'ipvs --ipvs':
        (ipvsOptions as IpvsOption[]).push({ negate: neg, test: IS_IPVS });
        return undefined;
      case 'ipvs --vaddr': {
        const cidr = parseAddress(value(opt), family, spec);
        (ipvsOptions as IpvsOption[]).push({ negate: neg, test: (info) => cidrContains(cidr, info.vaddr) });
        return undefined;
      }
      case 'ipvs --vproto': {
        const proto = parseProtocol(value(opt), spec);
        (ipvsOptions as IpvsOption[]).push({ negate: neg, test: (info) => proto === 'all' || info.vproto === proto });
        return undefined;
      }
      case 'ipvs --vport': {
        const port = value(opt);
        if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) bad(spec, `bad --vport ${port}`);
        (ipvsOptions as IpvsOption[]).push({ negate: neg, test: (info) => info.vport === Number(port) });
        return undefined;
      }
      default:
        bad(spec, mod ? `unsupported option ${opt} of match "${mod}"` : `unsupported option ${opt}`);
    }
  }
}

const ALWAYS: Condition = () => true;
const IS_IPVS = (): boolean => true;

function compileTarget(rest: readonly string[], name: string, spec: string): Target {
  const only = (allowed: readonly string[]): void => {
    for (let k = 0; k < rest.length; k++) {
      const opt = rest[k] as string;
      if (!allowed.includes(opt)) bad(spec, `unsupported option ${opt} of target ${name}`);
    }
  };
  switch (name) {
    case 'ACCEPT':
    case 'DROP':
    case 'RETURN':
      only([]);
      return { kind: name };
    case 'MASQUERADE':
      // Port randomisation changes which source port is used, not whether the packet is SNATed.
      only(['--random', '--random-fully']);
      return { kind: 'MASQUERADE' };
    case 'REJECT': {
      if (rest.length === 0) return { kind: 'REJECT', rejectWith: 'icmp-port-unreachable' };
      if (rest.length !== 2 || rest[0] !== '--reject-with') bad(spec, 'unsupported REJECT options');
      return { kind: 'REJECT', rejectWith: rest[1] as string };
    }
    case 'MARK':
      return compileMark(rest, spec);
    default:
      if (UNSUPPORTED_TARGETS.has(name)) bad(spec, `target ${name} is not modelled`);
      only([]);
      return { kind: 'JUMP', chain: name };
  }
}

function compileMark(rest: readonly string[], spec: string): Target {
  const [opt, v, extra] = rest;
  if (v === undefined || extra !== undefined) bad(spec, 'MARK needs exactly one option');
  const vm = parseValueMask(v, spec);
  // Every form reduces to --set-xmark: x = (x & ~mask) ^ value.
  switch (opt) {
    case '--set-xmark':
      return { kind: 'MARK', ...vm };
    case '--set-mark':
      return { kind: 'MARK', value: vm.value, mask: (vm.mask | vm.value) >>> 0 };
    case '--or-mark':
      return { kind: 'MARK', value: vm.value, mask: vm.value };
    case '--xor-mark':
      return { kind: 'MARK', value: vm.value, mask: 0 };
    case '--and-mark':
      return { kind: 'MARK', value: 0, mask: ~vm.value >>> 0 };
    default:
      bad(spec, `unsupported MARK option ${String(opt)}`);
  }
}

/** One table's chains (built-in and ours) with their compiled rules. */
export interface RuleTable {
  readonly name: TableName;
  readonly chains: ReadonlyMap<string, readonly CompiledRule[]>;
}

/** Compiles a planned table; a jump to a chain the table lacks throws, as iptables-restore would. */
export function compileTable(t: IptablesTable, family: IpFamily): RuleTable {
  const chains = new Map<string, CompiledRule[]>();
  for (const c of [...(BUILTIN_CHAINS[t.table] ?? []), ...t.chains]) chains.set(c, []);
  for (const r of t.rules) {
    const list = chains.get(r.chain);
    if (!list) throw new TraceError(`${t.table}: rule in undeclared chain ${r.chain}: ${r.spec}`);
    list.push(compileRule(r.chain, r.spec, family));
  }
  for (const list of chains.values()) {
    for (const r of list) {
      if (r.target.kind === 'JUMP' && !chains.has(r.target.chain)) throw new TraceError(`${t.table}: rule jumps to missing chain ${r.target.chain}: ${r.spec}`);
    }
  }
  return { name: t.table, chains };
}

export type HookVerdict =
  | { readonly verdict: 'ACCEPT'; readonly rule: string | undefined }
  | { readonly verdict: 'DROP' | 'MASQUERADE'; readonly rule: string }
  | { readonly verdict: 'REJECT'; readonly rule: string; readonly rejectWith: string };

export interface TraversalLog {
  readonly step: (text: string) => void;
  /**
   * Called when a MARK target changes the packet's mark; `via` holds the jump rules that led to
   * the marking chain, outermost first.
   */
  readonly marked?: (mark: { path: readonly string[]; rule: string; via: readonly string[]; before: number; after: number }) => void;
}

const MAX_DEPTH = 64;

export function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

/**
 * Runs a packet through a built-in chain of the table. Built-in chains' policies are not part of
 * the desired state; they are taken to be ACCEPT (kube-proxy never changes them).
 */
export function traverse(table: RuleTable, hook: string, p: EvalPacket, env: MatchEnv, log: TraversalLog): HookVerdict {
  const run = (chain: string, path: readonly string[], via: readonly string[]): HookVerdict | 'RETURN' => {
    if (path.length > MAX_DEPTH) throw new TraceError(`${table.name}: chain recursion deeper than ${MAX_DEPTH} at ${chain}`);
    const where = `${table.name} ${path.join(' → ')}`;
    for (const rule of table.chains.get(chain) ?? []) {
      if (!rule.conditions.every((c) => c(p, env))) {
        log.step(`${where}: ${rule.spec} (no match)`);
        continue;
      }
      const t = rule.target;
      switch (t.kind) {
        case 'NONE':
          log.step(`${where}: ${rule.spec} (match, no target)`);
          continue;
        case 'MARK': {
          const before = p.mark;
          p.mark = ((p.mark & ~t.mask) ^ t.value) >>> 0;
          log.step(`${where}: ${rule.spec} (match: mark ${hex(before)} → ${hex(p.mark)})`);
          log.marked?.({ path, rule: rule.spec, via, before, after: p.mark });
          continue;
        }
        case 'JUMP': {
          log.step(`${where}: ${rule.spec} (match: jump to ${t.chain})`);
          const r = run(t.chain, [...path, t.chain], [...via, rule.spec]);
          if (r !== 'RETURN') return r;
          continue;
        }
        case 'RETURN':
          log.step(`${where}: ${rule.spec} (match: RETURN)`);
          return 'RETURN';
        case 'ACCEPT':
          log.step(`${where}: ${rule.spec} (match: ACCEPT)`);
          return { verdict: 'ACCEPT', rule: rule.spec };
        case 'DROP':
          log.step(`${where}: ${rule.spec} (match: DROP)`);
          return { verdict: 'DROP', rule: rule.spec };
        case 'MASQUERADE':
          if (table.name !== 'nat') throw new TraceError(`MASQUERADE outside the nat table: ${rule.spec}`);
          log.step(`${where}: ${rule.spec} (match: MASQUERADE)`);
          return { verdict: 'MASQUERADE', rule: rule.spec };
        case 'REJECT':
          log.step(`${where}: ${rule.spec} (match: REJECT with ${t.rejectWith})`);
          return { verdict: 'REJECT', rule: rule.spec, rejectWith: t.rejectWith };
      }
    }
    return 'RETURN';
  };
  if (!table.chains.has(hook)) throw new TraceError(`${table.name} has no chain ${hook}`);
  const r = run(hook, [hook], []);
  if (r !== 'RETURN') return r;
  log.step(`${table.name} ${hook}: end of chain, policy ACCEPT`);
  return { verdict: 'ACCEPT', rule: undefined };
}

/** A rule spec without its `-m comment --comment "..."` parts, for short explanations. */
export function withoutComments(spec: string): string {
  const args = splitRuleSpec(spec);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-m' && args[i + 1] === 'comment' && args[i + 2] === '--comment') i += 3;
    else out.push(args[i] as string);
  }
  return joinRuleSpec(out);
}
