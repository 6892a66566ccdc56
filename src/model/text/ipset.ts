// `ipset save` text (ipset 7.x): render desired sets as the tool prints them, parse what it prints,
// and build/normalise entries in the exact text ipset prints, because set state is compared as
// strings. Facts checked against ipset v7.17 (see test/fixtures/text/ipset-*.txt).
import type { IpsetFamily, IpsetSpec, IpsetState } from '../kernel.js';
import type { IpsetType } from '../names.js';
import type { Protocol } from '../types.js';
import { canonicalIp, formatIp, hostPrefix, parseCidr, parseIp } from '../ip.js';
import type { ParsedIp } from '../ip.js';
import { atLine, failLine, numberedLines } from './error.js';

/** kube-proxy's header values; also what parse fills in for fields a set type does not use. */
export const IPSET_DEFAULTS = { family: 'inet', hashSize: 1024, maxElem: 65536, range: '0-65535' } as const;

const IPSET_TYPES: readonly IpsetType[] = ['hash:ip', 'hash:ip,port', 'hash:ip,port,ip', 'hash:ip,port,net', 'bitmap:port'];

export function isIpsetType(s: string): s is IpsetType {
  return (IPSET_TYPES as readonly string[]).includes(s);
}

/** Protocols whose port ipset prints as a number (icmp types print as names; not supported). */
const PORT_PROTOCOLS: ReadonlySet<string> = new Set(['tcp', 'udp', 'sctp', 'udplite']);

// ---------------------------------------------------------------------------------------------
// Entry builders: programmer input, so invalid values throw.

function ipText(ip: string): string {
  const c = canonicalIp(ip);
  if (c === undefined) throw new Error(`ipset entry: invalid IP ${JSON.stringify(ip)}`);
  return c;
}

function portText(port: number): string {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`ipset entry: invalid port ${port}`);
  return String(port);
}

function protoPort(protocol: Protocol, port: number): string {
  return `${protocol.toLowerCase()}:${portText(port)}`;
}

/** hash:ip entry: "10.96.0.10". */
export function ipEntry(ip: string): string {
  return ipText(ip);
}

/** hash:ip,port entry: "10.96.0.10,tcp:53" (IPv6 without brackets: "fd00::a,tcp:53"). */
export function ipPortEntry(ip: string, protocol: Protocol, port: number): string {
  return `${ipText(ip)},${protoPort(protocol, port)}`;
}

/** hash:ip,port,ip entry: "10.244.1.2,tcp:8080,10.244.1.2". */
export function ipPortIpEntry(ip: string, protocol: Protocol, port: number, ip2: string): string {
  return `${ipText(ip)},${protoPort(protocol, port)},${ipText(ip2)}`;
}

/** hash:ip,port,net entry; ipset prints a host net without its prefix: "1.2.3.4,tcp:80,10.1.1.1". */
export function ipPortNetEntry(ip: string, protocol: Protocol, port: number, cidr: string): string {
  const net = netText(cidr);
  if (net === undefined) throw new Error(`ipset entry: invalid net ${JSON.stringify(cidr)}`);
  return `${ipText(ip)},${protoPort(protocol, port)},${net}`;
}

/** bitmap:port entry: "30080". */
export function bitmapPortEntry(port: number): string {
  return portText(port);
}

// ---------------------------------------------------------------------------------------------
// Normalisation: any entry text ipset accepts for one element → the text ipset prints.

interface IpPart {
  readonly ip: ParsedIp;
  readonly text: string;
}

function isZero(ip: ParsedIp): boolean {
  return ip.bytes.every((b) => b === 0);
}

/** An address, optionally with the host prefix (which ipset accepts and drops). */
function normIp(text: string): IpPart | undefined {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  if (slash >= 0 && text.slice(slash + 1) !== String(hostPrefix(ip.family))) return undefined;
  return { ip, text: formatIp(ip) };
}

/** A net: host bits cleared, prefix 1..max, the host prefix omitted (ipset's print form). */
function netText(text: string): string | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return normIp(text)?.text;
  if (!/^\d{1,3}$/.test(text.slice(slash + 1))) return undefined;
  const c = parseCidr(text);
  if (!c || c.prefix === 0) return undefined;
  const ip = formatIp(c);
  return c.prefix === hostPrefix(c.family) ? ip : `${ip}/${c.prefix}`;
}

function normPortNumber(text: string): string | undefined {
  // Decimal only: ipset also takes 0x.. and service names, which no caller of ours writes.
  if (!/^(0|[1-9]\d{0,4})$/.test(text) || Number(text) > 65535) return undefined;
  return text;
}

/** "[proto:]port" → "proto:port"; a bare port means tcp, as in ipset. */
function normProtoPort(text: string): string | undefined {
  const colon = text.indexOf(':');
  const proto = colon < 0 ? 'tcp' : text.slice(0, colon).toLowerCase();
  const port = normPortNumber(colon < 0 ? text : text.slice(colon + 1));
  if (!PORT_PROTOCOLS.has(proto) || port === undefined) return undefined;
  return `${proto}:${port}`;
}

function familyOk(ip: ParsedIp, family: IpsetFamily | undefined): boolean {
  return family === undefined || (family === 'inet') === (ip.family === 'IPv4');
}

function normalizeHashEntry(type: Exclude<IpsetType, 'bitmap:port'>, parts: string[], family: IpsetFamily | undefined): string | undefined {
  const arity = type.split(',').length;
  if (parts.length !== arity) return undefined;
  const first = normIp(parts[0] ?? '');
  // The all-zero address is refused by hash:ip ("Null-valued element") and hash:ip,port (EINVAL),
  // but stored by hash:ip,port,ip and hash:ip,port,net (checked with ipset v7.17 on 6.x).
  if (!first || (arity <= 2 && isZero(first.ip)) || !familyOk(first.ip, family)) return undefined;
  if (arity === 1) return first.text;
  const pp = normProtoPort(parts[1] ?? '');
  if (pp === undefined) return undefined;
  if (arity === 2) return `${first.text},${pp}`;
  const third = parts[2] ?? '';
  const tail = type === 'hash:ip,port,ip' ? (third.includes('/') ? undefined : normIp(third)?.text) : netText(third);
  if (tail === undefined || parseIp(tail.split('/')[0] ?? '')?.family !== first.ip.family) return undefined;
  return `${first.text},${pp},${tail}`;
}

/**
 * The text ipset prints for one entry given as ipset accepts it ("10.96.0.10,TCP:53",
 * "10.1.1.1/32", "FD00::A"), or undefined when it is not exactly one valid element of this type
 * (ranges, non-host CIDRs for an IP, a wrong family, service names, hex ports, icmp types).
 */
export function normalizeIpsetEntry(type: IpsetType, text: string, family?: IpsetFamily): string | undefined {
  const t = text.trim();
  if (type === 'bitmap:port') {
    // bitmap:port also takes "tcp:80" and stores the port only.
    const colon = t.indexOf(':');
    if (colon >= 0 && !PORT_PROTOCOLS.has(t.slice(0, colon).toLowerCase())) return undefined;
    return normPortNumber(colon < 0 ? t : t.slice(colon + 1));
  }
  return normalizeHashEntry(type, t.split(','), family);
}

// ---------------------------------------------------------------------------------------------
// Ordering: numeric-aware, so 10.96.0.9 < 10.96.0.10 and port 9 < 80.

function partKey(part: string): string {
  const slash = part.indexOf('/');
  const ip = parseIp(slash < 0 ? part : part.slice(0, slash));
  if (ip) {
    const hex = Buffer.from(ip.bytes).toString('hex');
    const prefix = slash < 0 ? hostPrefix(ip.family) : Number(part.slice(slash + 1));
    return `${ip.family === 'IPv4' ? 4 : 6}${hex}/${String(prefix).padStart(3, '0')}`;
  }
  const m = /^(?:([a-z]+):)?(\d+)$/.exec(part);
  if (m) return `${(m[2] ?? '').padStart(5, '0')}:${m[1] ?? ''}`;
  // Anything else (foreign forms) sorts after known forms, by text.
  return `~${part}`;
}

/** A sort key per entry; plain string order of keys is the entry order. */
export function ipsetEntrySortKey(entry: string): string {
  return entry.split(',').map(partKey).join(',');
}

export function sortIpsetEntries(entries: Iterable<string>): string[] {
  return [...entries]
    .map((e) => ({ e, k: ipsetEntrySortKey(e) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.e < b.e ? -1 : a.e > b.e ? 1 : 0))
    .map((x) => x.e);
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** The header as kube-proxy creates it and ipset prints it (less bucketsize/initval). */
export function renderIpsetCreate(spec: IpsetSpec): string {
  if (spec.type === 'bitmap:port') return `create ${spec.name} bitmap:port range ${spec.range}`;
  return `create ${spec.name} ${spec.type} family ${spec.family} hashsize ${spec.hashSize} maxelem ${spec.maxElem}`;
}

/** `ipset save` text: sets by name, entries in numeric-aware order. */
export function renderIpsetSave(sets: Iterable<IpsetState>): string {
  const sorted = [...sets].sort((a, b) => (a.spec.name < b.spec.name ? -1 : a.spec.name > b.spec.name ? 1 : 0));
  const lines: string[] = [];
  for (const set of sorted) {
    lines.push(renderIpsetCreate(set.spec));
    for (const e of sortIpsetEntries(set.entries)) lines.push(`add ${set.spec.name} ${e}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** Equal headers, comparing only the fields the set type uses. */
export function sameIpsetSpec(a: IpsetSpec, b: IpsetSpec): boolean {
  if (a.name !== b.name || a.type !== b.type) return false;
  if (a.type === 'bitmap:port') return a.range === b.range;
  return a.family === b.family && a.hashSize === b.hashSize && a.maxElem === b.maxElem;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** Header options that take a value; everything else on a create line is a flag. */
const VALUED_OPTIONS: ReadonlySet<string> = new Set([
  'family',
  'hashsize',
  'maxelem',
  'bucketsize',
  'initval',
  'range',
  'timeout',
  'netmask',
  'markmask',
  'size',
  'resize',
  'probes',
]);
const FLAG_OPTIONS: ReadonlySet<string> = new Set(['counters', 'comment', 'skbinfo', 'forceadd']);

/** Per-entry options after the element: values we ignore, and the nomatch flag. */
const ENTRY_VALUED: ReadonlySet<string> = new Set(['timeout', 'packets', 'bytes', 'comment', 'skbmark', 'skbprio', 'skbqueue']);
const ENTRY_FLAGS: ReadonlySet<string> = new Set(['nomatch']);

export interface IpsetSkipped {
  readonly line: number;
  readonly name: string;
  readonly type: string;
}

export interface IpsetParseResult {
  readonly sets: IpsetState[];
  /** Sets of types the model does not have (hash:net, list:set, ...), skipped with their entries. */
  readonly skipped: IpsetSkipped[];
}

/**
 * Splits a line into words; a double-quoted part (a comment) may hold spaces. ipset prints
 * comments as "%s" and strips quotes on input, so a backslash inside is an ordinary character.
 */
function words(line: string): string[] {
  const out: string[] = [];
  let word = '';
  let quoted = false;
  for (const c of line) {
    if (c === '"') {
      quoted = !quoted;
      word += c;
    } else if (!quoted && /\s/.test(c)) {
      if (word !== '') out.push(word);
      word = '';
    } else {
      word += c;
    }
  }
  if (quoted) failLine('unterminated quote');
  if (word !== '') out.push(word);
  return out;
}

function positiveInt(value: string | undefined, what: string): number {
  if (value === undefined || !/^[1-9]\d*$/.test(value)) failLine(`invalid ${what} ${JSON.stringify(value ?? '')}`);
  return Number(value);
}

function parseHeaderOptions(opts: string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (let i = 0; i < opts.length; i++) {
    const k = opts[i] ?? '';
    if (FLAG_OPTIONS.has(k)) continue;
    if (!VALUED_OPTIONS.has(k)) failLine(`unknown create option ${JSON.stringify(k)}`);
    const v = opts[i + 1];
    if (v === undefined) failLine(`create option ${k} needs a value`);
    values.set(k, v);
    i++;
  }
  return values;
}

function parseSpec(name: string, type: IpsetType, opts: string[]): IpsetSpec {
  const values = parseHeaderOptions(opts);
  if (type === 'bitmap:port') {
    const range = values.get('range');
    if (range === undefined || !/^\d{1,5}-\d{1,5}$/.test(range)) failLine('bitmap:port needs "range FROM-TO"');
    return { ...IPSET_DEFAULTS, name, type, range };
  }
  const family = values.get('family') ?? 'inet';
  if (family !== 'inet' && family !== 'inet6') failLine(`invalid family ${JSON.stringify(family)}`);
  const hashSize = values.has('hashsize') ? positiveInt(values.get('hashsize'), 'hashsize') : IPSET_DEFAULTS.hashSize;
  const maxElem = values.has('maxelem') ? positiveInt(values.get('maxelem'), 'maxelem') : IPSET_DEFAULTS.maxElem;
  return { name, type, family, hashSize, maxElem, range: IPSET_DEFAULTS.range };
}

function checkEntryOptions(opts: string[]): void {
  for (let i = 0; i < opts.length; i++) {
    const k = opts[i] ?? '';
    if (ENTRY_FLAGS.has(k)) continue;
    if (!ENTRY_VALUED.has(k)) failLine(`unknown entry option ${JSON.stringify(k)}`);
    if (opts[i + 1] === undefined) failLine(`entry option ${k} needs a value`);
    i++;
  }
}

const SET_NAME = /^[^\s"]{1,31}$/;

class SaveParser {
  readonly sets = new Map<string, { spec: IpsetSpec; entries: Set<string> }>();
  readonly skipped: IpsetSkipped[] = [];
  private readonly skippedNames = new Set<string>();

  line(n: number, line: string): void {
    // -exist (or -!) may be given on any line of a restore file; it changes nothing here.
    const w = words(line).filter((t) => t !== '-exist' && t !== '-!');
    const [command, name, ...rest] = w;
    if (command === undefined) return;
    if (name === undefined || !SET_NAME.test(name)) failLine('missing or invalid set name');
    if (command === 'create' || command === '-N' || command === 'n') return this.create(n, name, rest);
    if (command === 'add' || command === '-A' || command === 'a') return this.add(name, rest);
    failLine(`unsupported command ${JSON.stringify(command)}`);
  }

  private create(n: number, name: string, rest: string[]): void {
    const [type, ...opts] = rest;
    if (type === undefined) failLine('create needs a type');
    if (this.sets.has(name) || this.skippedNames.has(name)) failLine(`set ${name} created twice`);
    if (!isIpsetType(type)) {
      this.skipped.push({ line: n, name, type });
      this.skippedNames.add(name);
      return;
    }
    this.sets.set(name, { spec: parseSpec(name, type, opts), entries: new Set() });
  }

  private add(name: string, rest: string[]): void {
    if (this.skippedNames.has(name)) return;
    const set = this.sets.get(name);
    if (!set) failLine(`add to set ${name} that was not created before`);
    const [entry, ...opts] = rest;
    if (entry === undefined) failLine('add needs an entry');
    checkEntryOptions(opts);
    const family = set.spec.type === 'bitmap:port' ? undefined : set.spec.family;
    const canonical = normalizeIpsetEntry(set.spec.type, entry, family);
    if (canonical === undefined) failLine(`invalid ${set.spec.type} entry ${JSON.stringify(entry)}`);
    set.entries.add(canonical);
  }
}

/** Parses `ipset save` text; also lists sets of types the model does not know. */
export function parseIpsetSaveDetailed(text: string): IpsetParseResult {
  const parser = new SaveParser();
  for (const { n, line } of numberedLines(text)) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    atLine('ipset', n, line, () => parser.line(n, trimmed));
  }
  const sets = [...parser.sets.values()].map((s) => ({ spec: s.spec, entries: s.entries as ReadonlySet<string> }));
  return { sets, skipped: parser.skipped };
}

/**
 * Parses `ipset save` output (ipset 7.x) into sets in text order, entries in canonical form.
 * bucketsize/initval, timeout/counters/comment/skbinfo options and -exist are accepted and
 * ignored; sets of other types are skipped. Malformed lines throw a TextParseError naming them.
 */
export function parseIpsetSave(text: string): IpsetState[] {
  return parseIpsetSaveDetailed(text).sets;
}
