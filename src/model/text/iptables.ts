// iptables-save / iptables-restore text (iptables 1.8.x): parse what iptables-save prints, render
// the input kube-proxy gives `iptables-restore --noflush`, and turn rule specs into the form
// iptables-save prints them in, so desired and observed rules compare as strings. Facts checked
// against iptables v1.8.9 (nf_tables); see test/fixtures/text/ip*tables-save-*.txt.
import type { IptablesRule, IptablesTable } from '../kernel.js';
import type { IpFamily } from '../types.js';
import { formatIp, parseIp } from '../ip.js';
import { atLine, failLine, numberedLines, TextParseError } from './error.js';

export interface IptablesChainState {
  /** ACCEPT/DROP/... for built-in chains; undefined for user chains ("-"). */
  readonly policy: string | undefined;
}

export interface IptablesTableState {
  readonly chains: Map<string, IptablesChainState>;
  /** Every rule of the table, in text order. */
  readonly rules: IptablesRule[];
}

/** Tables by name ("nat", "filter", ...). */
export type IptablesTables = Map<string, IptablesTableState>;

/** Built-in chains per table, in the order iptables-save prints them. */
export const BUILTIN_CHAINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

/** Table order of our renderings (iptables-nft itself prints tables in creation order). */
const TABLE_ORDER: readonly string[] = ['filter', 'nat', 'mangle', 'raw', 'security'];

export function isBuiltinChain(table: string, chain: string): boolean {
  return BUILTIN_CHAINS[table]?.includes(chain) ?? false;
}

// ---------------------------------------------------------------------------------------------
// Tokenizing, exactly as iptables-restore's add_param_to_argv does it.

/**
 * Splits a rule spec into arguments like iptables-restore: whitespace separates; a double quote
 * opens a quoted part in which backslash escapes the next character; the closing quote ends the
 * argument (so `""` is an empty argument). Single quotes and backslashes outside double quotes
 * are ordinary characters. iptables-restore would swallow the rest of the line into an
 * unterminated quote; we throw instead.
 */
export function splitRuleSpec(spec: string): string[] {
  const args: string[] = [];
  let param = '';
  let inQuote = false;
  let started = false;
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i] ?? '';
    if (inQuote) {
      if (c === '\\' && i + 1 < spec.length) param += spec[++i];
      else if (c === '"') {
        args.push(param);
        param = '';
        started = false;
        inQuote = false;
      } else param += c;
    } else if (c === '"') {
      inQuote = true;
    } else if (c === ' ' || c === '\t' || c === '\n') {
      if (started) args.push(param);
      param = '';
      started = false;
    } else {
      param += c;
      started = true;
    }
  }
  if (inQuote) throw new Error(`unterminated quote in rule spec ${JSON.stringify(spec)}`);
  if (started) args.push(param);
  return args;
}

const SAVE_PLAIN = /^[_\-0-9a-zA-Z]+$/;

/** xtables_save_string: plain when only [_-0-9a-zA-Z], else double-quoted with " ' \ escaped. */
export function quoteSaveString(value: string): string {
  if (SAVE_PLAIN.test(value)) return value;
  return `"${value.replace(/["'\\]/g, (c) => `\\${c}`)}"`;
}

/** Options whose value iptables-save prints through xtables_save_string. */
const STRING_VALUED: ReadonlySet<string> = new Set(['--comment', '--log-prefix', '--nflog-prefix']);

/** Joins arguments back into a spec that splitRuleSpec splits into the same arguments. */
export function joinRuleSpec(args: readonly string[]): string {
  return args
    .map((a, i) => {
      if (i > 0 && STRING_VALUED.has(args[i - 1] ?? '')) return quoteSaveString(a);
      return a === '' || /[\s"]/.test(a) ? quoteSaveString(a) : a;
    })
    .join(' ');
}

// ---------------------------------------------------------------------------------------------
// Parsing iptables-save output

const CHAIN_NAME = /^[^\s!-][^\s]{0,28}$/;

interface OpenTable {
  readonly name: string;
  readonly state: IptablesTableState;
}

class SaveParser {
  readonly tables: IptablesTables = new Map();
  private open: OpenTable | undefined;

  constructor(private readonly strict: boolean) {}

  line(line: string): void {
    if (line.startsWith('*')) return this.table(line.slice(1).trim());
    const open = this.open;
    if (!open) failLine('expected "*table" first');
    if (line.trim() === 'COMMIT') {
      this.open = undefined;
      return;
    }
    if (line.startsWith(':')) return this.chain(open, line.slice(1));
    this.rule(open, line);
  }

  private table(name: string): void {
    if (this.open) failLine(`table ${this.open.name} not committed before the next one`);
    if (!/^[a-z_]+$/.test(name)) failLine('invalid table name');
    if (this.tables.has(name)) failLine(`table ${name} given twice`);
    const state: IptablesTableState = { chains: new Map(), rules: [] };
    this.tables.set(name, state);
    this.open = { name, state };
  }

  private chain(open: OpenTable, rest: string): void {
    const [name, policy, counters, extra] = rest.trim().split(/\s+/);
    if (name === undefined || !CHAIN_NAME.test(name)) failLine('invalid chain name');
    if (policy === undefined || !/^(-|[A-Z]+)$/.test(policy)) failLine('invalid chain policy');
    if (counters !== undefined && !/^\[\d+:\d+\]$/.test(counters)) failLine('invalid chain counters');
    if (extra !== undefined) failLine('unexpected text after chain counters');
    if (open.state.chains.has(name)) failLine(`chain ${name} declared twice`);
    if (policy !== '-' && !isBuiltinChain(open.name, name) && this.strict) failLine(`policy on user chain ${name}`);
    open.state.chains.set(name, { policy: policy === '-' ? undefined : policy });
  }

  private rule(open: OpenTable, line: string): void {
    // iptables-save -c prefixes rules with "[packets:bytes] ".
    const m = /^(?:\[\d+:\d+\]\s+)?(?:-A|--append)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m) failLine('expected "-A CHAIN ...", ":CHAIN POLICY [0:0]" or COMMIT');
    const chain = m[1] ?? '';
    const spec = (m[2] ?? '').trim();
    if (this.strict && !open.state.chains.has(chain)) failLine(`rule for undeclared chain ${chain}`);
    try {
      splitRuleSpec(spec);
    } catch (e) {
      failLine((e as Error).message);
    }
    open.state.rules.push({ chain, spec });
  }

  finish(lastLine: number, lastText: string): void {
    if (this.open) throw new TextParseError('iptables', lastLine, lastText, `table ${this.open.name} has no COMMIT`);
  }
}

function parseTables(text: string, strict: boolean): IptablesTables {
  const parser = new SaveParser(strict);
  let last = { n: 0, line: '' };
  for (const entry of numberedLines(text)) {
    last = entry;
    const { n, line } = entry;
    if (line.trim() === '' || line.startsWith('#')) continue;
    atLine('iptables', n, line, () => parser.line(line));
  }
  parser.finish(last.n, last.line);
  return parser.tables;
}

/**
 * Parses iptables-save output: every table, its chains (built-ins with their policy) and its
 * rules in order, spec text as printed. Comment lines and counters are skipped; a rule for an
 * undeclared chain, a missing COMMIT or any other line is a TextParseError naming the line.
 */
export function parseIptablesSave(text: string): IptablesTables {
  return parseTables(text, true);
}

/**
 * Parses iptables-restore input (what renderIptablesRestore writes): like parseIptablesSave, but
 * a rule may append to a chain the input does not declare (--noflush leaves it as it is). The
 * declared chains are the ones the restore flushes.
 */
export function parseIptablesRestore(text: string): IptablesTables {
  return parseTables(text, false);
}

// ---------------------------------------------------------------------------------------------
// Rendering

function ruleLine(rule: IptablesRule): string {
  return rule.spec === '' ? `-A ${rule.chain}` : `-A ${rule.chain} ${rule.spec}`;
}

/**
 * iptables-restore --noflush input: per table, every owned chain declared (so the restore flushes
 * and rewrites exactly those), the rules, COMMIT. A rule outside the declared chains would be
 * appended again on every sync, so it is refused.
 */
export function renderIptablesRestore(tables: readonly IptablesTable[]): string {
  const lines: string[] = [];
  for (const t of tables) {
    const owned = new Set(t.chains);
    lines.push(`*${t.table}`);
    for (const c of t.chains) lines.push(`:${c} - [0:0]`);
    for (const r of t.rules) {
      if (!owned.has(r.chain)) throw new Error(`iptables restore: rule for chain ${r.chain} not declared in table ${t.table}`);
      lines.push(ruleLine(r));
    }
    lines.push('COMMIT');
  }
  return lines.map((l) => `${l}\n`).join('');
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function tableRank(name: string): number {
  const i = TABLE_ORDER.indexOf(name);
  return i < 0 ? TABLE_ORDER.length : i;
}

/** Chains as iptables-save orders them: built-ins in hook order, then user chains by name. */
function chainOrder(table: string, chains: Iterable<string>): string[] {
  const builtins = BUILTIN_CHAINS[table] ?? [];
  const all = [...new Set(chains)];
  const rank = (c: string): number => (builtins.includes(c) ? builtins.indexOf(c) : builtins.length);
  return all.sort((a, b) => rank(a) - rank(b) || byteOrder(a, b));
}

function renderTable(name: string, state: IptablesTableState): string[] {
  const chains = chainOrder(name, [...state.chains.keys(), ...state.rules.map((r) => r.chain)]);
  const lines = [`*${name}`];
  for (const c of chains) {
    const policy = state.chains.get(c)?.policy ?? (isBuiltinChain(name, c) ? 'ACCEPT' : '-');
    lines.push(`:${c} ${policy} [0:0]`);
  }
  const byChain = new Map<string, IptablesRule[]>();
  for (const r of state.rules) {
    const list = byChain.get(r.chain);
    if (list) list.push(r);
    else byChain.set(r.chain, [r]);
  }
  for (const c of chains) for (const r of byChain.get(c) ?? []) lines.push(ruleLine(r));
  lines.push('COMMIT');
  return lines;
}

function toTables(input: readonly IptablesTable[] | ReadonlyMap<string, IptablesTableState>): IptablesTables {
  if (input instanceof Map) return input as IptablesTables;
  const out: IptablesTables = new Map();
  for (const t of input as readonly IptablesTable[]) {
    out.set(t.table, { chains: new Map(t.chains.map((c) => [c, { policy: undefined }])), rules: [...t.rules] });
  }
  return out;
}

/**
 * iptables-save style text for display and fake dumps: tables filter, nat, mangle, raw,
 * security (then others by name); chains built-ins first then by name; rules grouped by chain in
 * that order; zero counters; no timestamp comments.
 */
export function renderIptablesSave(input: readonly IptablesTable[] | ReadonlyMap<string, IptablesTableState>): string {
  const tables = toTables(input);
  const names = [...tables.keys()].sort((a, b) => tableRank(a) - tableRank(b) || byteOrder(a, b));
  const lines: string[] = [];
  for (const n of names) {
    const state = tables.get(n);
    if (state) lines.push(...renderTable(n, state));
  }
  return lines.map((l) => `${l}\n`).join('');
}

// ---------------------------------------------------------------------------------------------
// Canonical rule specs

/** The generic options iptables-save prints first, in its order (save_ipv4_addr, save_rule_details). */
const HEAD_OPTIONS: ReadonlyMap<string, string> = new Map([
  ['-s', '-s'],
  ['--source', '-s'],
  ['--src', '-s'],
  ['-d', '-d'],
  ['--destination', '-d'],
  ['--dst', '-d'],
  ['-i', '-i'],
  ['--in-interface', '-i'],
  ['-o', '-o'],
  ['--out-interface', '-o'],
  ['-p', '-p'],
  ['--protocol', '-p'],
  ['-f', '-f'],
  ['--fragment', '-f'],
]);
const HEAD_ORDER = ['-s', '-d', '-i', '-o', '-p', '-f'];

/** Options that make iptables load the protocol's match implicitly ("-p tcp --dport 80"). */
const PROTO_MATCH_OPTIONS: Readonly<Record<string, ReadonlySet<string>>> = {
  tcp: new Set(['--dport', '--sport', '--destination-port', '--source-port', '--syn', '--tcp-flags', '--tcp-option']),
  udp: new Set(['--dport', '--sport', '--destination-port', '--source-port']),
  sctp: new Set(['--dport', '--sport', '--destination-port', '--source-port', '--chunk-types']),
};

const PROTO_NAMES: Readonly<Record<string, string>> = {
  '1': 'icmp',
  '6': 'tcp',
  '17': 'udp',
  '58': 'ipv6-icmp',
  '132': 'sctp',
  '136': 'udplite',
  icmpv6: 'ipv6-icmp',
};

interface HeadOption {
  readonly invert: boolean;
  readonly value: string | undefined;
}

interface Section {
  /** "-m NAME", "-j TARGET", "-g CHAIN" or "" for stray arguments. */
  readonly kind: '-m' | '-j' | '-g' | '';
  readonly name: string;
  readonly args: string[];
}

const SECTION_OPTIONS: ReadonlyMap<string, Section['kind']> = new Map([
  ['-m', '-m'],
  ['--match', '-m'],
  ['-j', '-j'],
  ['--jump', '-j'],
  ['-g', '-g'],
  ['--goto', '-g'],
]);

interface RuleParts {
  readonly head: Map<string, HeadOption>;
  readonly sections: Section[];
}

function headValue(args: readonly string[], i: number, key: string): string | undefined {
  return key === '-f' ? undefined : args[i + 1];
}

/** Splits arguments into the generic head options and the match/target sections, in order. */
function splitSections(args: readonly string[]): RuleParts {
  const head = new Map<string, HeadOption>();
  const sections: Section[] = [];
  let current: Section | undefined;
  let invert = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    const key = HEAD_OPTIONS.get(a);
    if (a === '!') {
      invert = true;
      continue;
    }
    if (key) {
      head.set(key, { invert, value: headValue(args, i, key) });
      if (key !== '-f') i++;
    } else if (SECTION_OPTIONS.has(a)) {
      current = { kind: SECTION_OPTIONS.get(a) ?? '', name: args[++i] ?? '', args: [] };
      sections.push(current);
    } else {
      current = sectionFor(head, sections, current, a);
      if (invert) current.args.push('!');
      current.args.push(a);
    }
    invert = false;
  }
  return { head, sections };
}

/** The section a match/target option belongs to, opening an implicit protocol match if needed. */
function sectionFor(head: Map<string, HeadOption>, sections: Section[], current: Section | undefined, arg: string): Section {
  const proto = canonicalProtocol(head.get('-p')?.value ?? '');
  const implicit = PROTO_MATCH_OPTIONS[proto];
  if (implicit?.has(arg) && (current === undefined || (current.kind === '-m' && !PROTO_MATCH_OPTIONS[current.name]))) {
    const s: Section = { kind: '-m', name: proto, args: [] };
    sections.push(s);
    return s;
  }
  if (current) return current;
  const stray: Section = { kind: '', name: '', args: [] };
  sections.push(stray);
  return stray;
}

function canonicalProtocol(p: string): string {
  const lower = p.toLowerCase();
  return PROTO_NAMES[lower] ?? lower;
}

/** "-s" value as iptables-save prints it: address/prefix, host bits cleared. */
function canonicalAddress(value: string, family: IpFamily): { text: string; zero: boolean } | undefined {
  if (value.includes(',')) return undefined;
  const slash = value.indexOf('/');
  const ip = parseIp(slash < 0 ? value : value.slice(0, slash));
  if (!ip || ip.family !== family) return undefined;
  const bits = ip.bytes.length * 8;
  const prefix = slash < 0 ? bits : maskPrefix(value.slice(slash + 1), family);
  if (prefix === undefined || prefix > bits) return undefined;
  const masked = new Uint8Array(ip.bytes.length);
  for (let i = 0; i < masked.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    masked[i] = (ip.bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return { text: `${formatIp({ family, bytes: masked })}/${prefix}`, zero: prefix === 0 };
}

/** A prefix length, or (IPv4) a contiguous dotted mask; other masks are left alone. */
function maskPrefix(mask: string, family: IpFamily): number | undefined {
  if (/^\d{1,3}$/.test(mask)) return Number(mask);
  const m = family === 'IPv4' ? parseIp(mask) : undefined;
  if (!m || m.family !== 'IPv4') return undefined;
  const n = (((m.bytes[0] ?? 0) << 24) | ((m.bytes[1] ?? 0) << 16) | ((m.bytes[2] ?? 0) << 8) | (m.bytes[3] ?? 0)) >>> 0;
  const prefix = 32 - Math.log2(((~n >>> 0) + 1) || 2 ** 32);
  return Number.isInteger(prefix) ? prefix : undefined;
}

function renderHead(head: Map<string, HeadOption>, family: IpFamily): string[] {
  const out: string[] = [];
  for (const key of HEAD_ORDER) {
    const opt = head.get(key);
    if (!opt) continue;
    let value = opt.value;
    if ((key === '-s' || key === '-d') && value !== undefined) {
      const addr = canonicalAddress(value, family);
      // A /0 address matches everything; iptables stores and prints nothing for it.
      if (addr?.zero && !opt.invert) continue;
      value = addr?.text ?? value;
    }
    if (key === '-p' && value !== undefined) {
      value = canonicalProtocol(value);
      if ((value === 'all' || value === '0') && !opt.invert) continue;
    }
    if (opt.invert) out.push('!');
    out.push(key);
    if (value !== undefined) out.push(value);
  }
  return out;
}

/** strtoul(…, 0): 0x hex, leading-0 octal, else decimal. */
function parseUint32(text: string): number | undefined {
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(text)) n = parseInt(text.slice(2), 16);
  else if (/^0[0-7]+$/.test(text)) n = parseInt(text, 8);
  else if (/^\d+$/.test(text)) n = Number(text);
  else return undefined;
  return n <= 0xffffffff ? n : undefined;
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

/** "V[/M]" → [V, M] with M defaulting to all ones. */
function valueMask(text: string): [number, number] | undefined {
  const [v, m, extra] = text.split('/');
  const value = parseUint32(v ?? '');
  const mask = m === undefined ? 0xffffffff : parseUint32(m);
  if (value === undefined || mask === undefined || extra !== undefined) return undefined;
  return [value, mask];
}

/** libxt_mark: "--mark 0x4000/0x4000", the mask omitted when it is all ones. */
function canonicalMarkMatch(args: string[]): string[] {
  return args.map((a, i) => {
    if (args[i - 1] !== '--mark') return a;
    const vm = valueMask(a);
    if (!vm) return a;
    return vm[1] === 0xffffffff ? hex(vm[0]) : `${hex(vm[0])}/${hex(vm[1])}`;
  });
}

/** libxt_MARK revision 2 saves every form as --set-xmark VALUE/MASK. */
function canonicalMarkTarget(args: string[]): string[] {
  const [op, arg, ...rest] = args;
  if (op === undefined || arg === undefined || rest.length > 0) return args;
  const vm = valueMask(arg);
  if (!vm) return args;
  const [v, m] = vm;
  const bare = !arg.includes('/');
  switch (op) {
    case '--set-xmark':
      return ['--set-xmark', `${hex(v)}/${hex(m)}`];
    case '--set-mark':
      return ['--set-xmark', `${hex(v)}/${hex((v | m) >>> 0)}`];
    case '--or-mark':
      return bare ? ['--set-xmark', `${hex(v)}/${hex(v)}`] : args;
    case '--xor-mark':
      return bare ? ['--set-xmark', `${hex(v)}/0x0`] : args;
    case '--and-mark':
      return bare ? ['--set-xmark', `0x0/${hex(~v >>> 0)}`] : args;
    default:
      return args;
  }
}

const CT_STATE_ORDER = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];

/** libxt_conntrack prints states in a fixed order. */
function canonicalConntrack(args: string[]): string[] {
  return args.map((a, i) => {
    if (args[i - 1] !== '--ctstate') return a;
    const states = a.toUpperCase().split(',');
    if (!states.every((s) => CT_STATE_ORDER.includes(s))) return a;
    return CT_STATE_ORDER.filter((s) => states.includes(s)).join(',');
  });
}

const PROTO_NUMBERS: Readonly<Record<string, string>> = { icmp: '1', tcp: '6', udp: '17', sctp: '132', udplite: '136' };
const IPVS_ORDER = ['--ipvs', '--vproto', '--vaddr', '--vport', '--vdir', '--vmethod', '--vportctl'];

/**
 * libxt_ipvs saves options in bitmask order (proto, vaddr, vport, ...), the protocol as a number
 * and the address without a host prefix. From the extension's source: this host has no xt_ipvs.
 */
function canonicalIpvsMatch(args: string[], family: IpFamily): string[] {
  const groups = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const invert = args[i] === '!';
    const opt = args[invert ? ++i : i] ?? '';
    if (!IPVS_ORDER.includes(opt) || groups.has(opt)) return args;
    const value = opt === '--ipvs' ? undefined : args[++i];
    groups.set(opt, [...(invert ? ['!'] : []), opt, ...(value === undefined ? [] : [ipvsValue(opt, value, family)])]);
  }
  if (groups.size > 1) groups.delete('--ipvs');
  return IPVS_ORDER.flatMap((k) => groups.get(k) ?? []);
}

function ipvsValue(opt: string, value: string, family: IpFamily): string {
  if (opt === '--vproto') return PROTO_NUMBERS[value.toLowerCase()] ?? value;
  if (opt !== '--vaddr') return value;
  const addr = canonicalAddress(value, family)?.text;
  if (addr === undefined) return value;
  const host = family === 'IPv4' ? '/32' : '/128';
  return addr.endsWith(host) ? addr.slice(0, -host.length) : addr;
}

/** libxt_tcp/udp/sctp save the short option names. */
function canonicalPortMatch(args: string[], udp: boolean): string[] {
  return args.map((a, i) => {
    if (a === '--destination-port') return '--dport';
    if (a === '--source-port') return '--sport';
    // libxt_udp (1.8.9) does not range-check its ports: it keeps them modulo 65536.
    const prev = args[i - 1];
    if (udp && (prev === '--dport' || prev === '--sport' || prev === '--destination-port' || prev === '--source-port') && /^\d*(:\d*)?$/.test(a)) {
      return a.replace(/\d+/g, (n) => String(Number(n) % 65536));
    }
    return a;
  });
}

const ADDRTYPE_ORDER = ['--src-type', '--dst-type', '--limit-iface-in', '--limit-iface-out'];
const ADDR_TYPE_BITS = ['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE'];

/** libxt_addrtype: src then dst type, types upper-case in bit order, the limit flag last. */
function canonicalAddrtype(args: string[]): string[] {
  const groups = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const invert = args[i] === '!';
    const opt = args[invert ? ++i : i] ?? '';
    if (!ADDRTYPE_ORDER.includes(opt) || groups.has(opt)) return args;
    const flagOnly = opt.startsWith('--limit');
    const raw = flagOnly ? undefined : args[++i];
    if (!flagOnly && raw === undefined) return args;
    const types = raw?.toUpperCase().split(',');
    if (types && !types.every((t) => ADDR_TYPE_BITS.includes(t))) return args;
    const value = types ? ADDR_TYPE_BITS.filter((t) => types.includes(t)).join(',') : undefined;
    groups.set(opt, [...(invert ? ['!'] : []), opt, ...(value === undefined ? [] : [value])]);
  }
  return ADDRTYPE_ORDER.flatMap((k) => groups.get(k) ?? []);
}

const MASQUERADE_ORDER = ['--to-ports', '--random', '--random-fully'];

/** libxt_MASQUERADE prints --to-ports, then --random, then --random-fully. */
function canonicalMasquerade(args: string[]): string[] {
  const groups = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const opt = args[i] ?? '';
    if (!MASQUERADE_ORDER.includes(opt) || groups.has(opt)) return args;
    groups.set(opt, opt === '--to-ports' ? [opt, args[++i] ?? ''] : [opt]);
  }
  return MASQUERADE_ORDER.flatMap((k) => groups.get(k) ?? []);
}

function canonicalSection(s: Section, family: IpFamily): string[] {
  let args = s.args;
  if (s.kind === '-m') {
    if (s.name === 'addrtype') args = canonicalAddrtype(args);
    else if (s.name === 'mark') args = canonicalMarkMatch(args);
    else if (s.name === 'conntrack') args = canonicalConntrack(args);
    else if (s.name === 'ipvs') args = canonicalIpvsMatch(args, family);
    else if (PROTO_MATCH_OPTIONS[s.name]) args = canonicalPortMatch(args, s.name === 'udp');
  } else if (s.kind === '-j') {
    if (s.name === 'MARK') args = canonicalMarkTarget(args);
    else if (s.name === 'MASQUERADE') args = canonicalMasquerade(args);
    else if (s.name === 'REJECT' && !args.includes('--reject-with')) {
      // REJECT's default, printed explicitly by iptables-save; it differs per family.
      args = [...args, '--reject-with', family === 'IPv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'];
    }
  }
  return s.kind === '' ? args : [s.kind, s.name, ...args];
}

/**
 * The form iptables-save prints for a rule spec written as iptables-restore input: generic
 * options (-s -d -i -o -p -f) first, addresses as address/prefix, implicit protocol matches made
 * explicit, MARK targets as --set-xmark V/M, marks in hex, conntrack states ordered, REJECT with
 * its default --reject-with for the family, comments quoted as iptables-save quotes them.
 * Matches keep their order; anything unknown is kept as written.
 */
export function canonicalRuleSpec(spec: string, family: IpFamily = 'IPv4'): string {
  const { head, sections } = splitSections(splitRuleSpec(spec));
  // Targets are printed last whatever their position in the input.
  const matches = sections.filter((s) => s.kind !== '-j' && s.kind !== '-g');
  const targets = sections.filter((s) => s.kind === '-j' || s.kind === '-g');
  const args = [...renderHead(head, family), ...[...matches, ...targets].flatMap((s) => canonicalSection(s, family))];
  return joinRuleSpec(args);
}
