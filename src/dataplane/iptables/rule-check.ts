// What iptables-restore (1.8, nf_tables build) and the kernel check in one rule spec, for the fake:
// the argument loop (options of each loaded extension, values, repeats), the checks after it
// (required options, addresses, interfaces of built-in chains) and what the kernel refuses later
// (targets outside their table or hooks, a match the kernel lacks). Each refusal carries the phase
// in which the real tool reports it, since iptables-nft reports parse errors at once but chain
// lookups and kernel errors only at COMMIT. Checked against iptables v1.8.9 (nf_tables) on 6.x.
import type { IpFamily } from '../../model/types.js';
import { formatIp, parseIp } from '../../model/ip.js';
import type { DataplaneErrorCode } from '../errors.js';
import { canonicalRuleSpec, isBuiltinChain, joinRuleSpec } from '../../model/text/iptables.js';

/**
 * parse: while reading the line (reported at once, before anything earlier in the table);
 * deferred: by iptables-nft when it builds the table's batch at COMMIT (chain and rule lookups);
 * kernel: by the kernel when the batch is sent (after every deferred check passed).
 */
export type RefusalPhase = 'parse' | 'deferred' | 'kernel';

/** Thrown inside a restore; becomes a DataplaneError with the line number. */
export class Refusal extends Error {
  constructor(
    readonly code: DataplaneErrorCode,
    message: string,
    readonly phase: RefusalPhase = 'parse',
  ) {
    super(message);
  }
}

export function refuse(code: DataplaneErrorCode, message: string, phase: RefusalPhase = 'parse'): never {
  throw new Refusal(code, message, phase);
}

/** Verdicts and the target extensions we know; anything else after -j must be a chain. */
export const KNOWN_TARGETS: ReadonlySet<string> = new Set([
  'ACCEPT', 'DROP', 'RETURN', 'QUEUE', 'NFQUEUE', 'MASQUERADE', 'SNAT', 'DNAT', 'REDIRECT', 'MARK', 'CONNMARK',
  'REJECT', 'LOG', 'NFLOG', 'NOTRACK', 'CT', 'TRACE', 'TCPMSS', 'CHECKSUM', 'AUDIT', 'SET', 'TPROXY',
]);

const KNOWN_MATCHES: ReadonlySet<string> = new Set([
  'addrtype', 'ah', 'bpf', 'cgroup', 'cluster', 'comment', 'connbytes', 'connlabel', 'connlimit', 'connmark',
  'conntrack', 'cpu', 'devgroup', 'dscp', 'ecn', 'esp', 'hashlimit', 'helper', 'hl', 'icmp', 'icmp6', 'iprange',
  'ipvs', 'length', 'limit', 'mac', 'mark', 'multiport', 'nfacct', 'owner', 'physdev', 'pkttype', 'policy',
  'quota', 'recent', 'rpfilter', 'sctp', 'set', 'socket', 'state', 'statistic', 'string', 'tcp', 'tcpmss', 'time',
  'tos', 'ttl', 'u32', 'udp', 'udplite',
]);

/** Targets the kernel accepts in one table only (EINVAL elsewhere, reachable or not). */
const TARGET_TABLE: Readonly<Record<string, string>> = {
  MASQUERADE: 'nat',
  SNAT: 'nat',
  DNAT: 'nat',
  REDIRECT: 'nat',
  REJECT: 'filter',
  CT: 'raw',
  NOTRACK: 'raw',
};

/** Hooks (built-in chains) a target may be reached from; EINVAL when a rule makes it reachable from another. */
const TARGET_HOOKS: Readonly<Record<string, readonly string[]>> = {
  MASQUERADE: ['POSTROUTING'],
  SNAT: ['POSTROUTING', 'INPUT'],
  DNAT: ['PREROUTING', 'OUTPUT'],
  REDIRECT: ['PREROUTING', 'OUTPUT'],
  REJECT: ['INPUT', 'FORWARD', 'OUTPUT'],
};

// ---------------------------------------------------------------------------------------------
// Extension options

interface OptionSpec {
  /** Values the option takes (0: a flag). */
  readonly argc: 0 | 1 | 2;
  /** Why the value is refused, or undefined. */
  readonly check?: (values: readonly string[], ctx: ParseContext, head: Head) => string | undefined;
}

interface ExtensionSpec {
  /** Every option of the extension; options we do not validate have no check. */
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Options that may appear only once (all of them unless said otherwise). */
  readonly repeatable?: ReadonlySet<string>;
  /** Checks once the whole line is read. */
  readonly final?: (s: Section, head: Head) => string | undefined;
}

const flag: OptionSpec = { argc: 0 };
const value: OptionSpec = { argc: 1 };

function uint32(text: string): number | undefined {
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(text)) n = parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) n = parseInt(text, 8);
  else if (/^[1-9]\d*$/.test(text)) n = Number(text);
  else return undefined;
  return n <= 0xffffffff ? n : undefined;
}

function valueMask(text: string): boolean {
  const [v, m, extra] = text.split('/');
  return extra === undefined && uint32(v ?? '') !== undefined && (m === undefined || uint32(m) !== undefined);
}

function port(text: string): boolean {
  return /^\d{1,5}$/.test(text) && Number(text) <= 65535;
}

function portRange(text: string): boolean {
  const [a, b, extra] = text.split(':');
  return extra === undefined && (a === '' || port(a ?? '')) && (b === undefined || b === '' || port(b)) && !(a === '' && (b === undefined || b === ''));
}

const portOption: OptionSpec = { argc: 1, check: ([v]) => (portRange(v ?? '') ? undefined : `invalid port/service \`${v ?? ''}' specified`) };
/** libxt_udp takes any number (see MATCHES.udp). */
const udpPort: OptionSpec = { argc: 1, check: ([v]) => (/^\d*(:\d*)?$/.test(v ?? '') && /\d/.test(v ?? '') ? undefined : `invalid port/service \`${v ?? ''}' specified`) };
const MULTIPORT_PROTOCOLS = new Set(['tcp', 'udp', 'udplite', 'sctp', 'dccp']);

/** libxt_multiport looks at -p while it reads its ports, so "-p" must come first. */
const portList: OptionSpec = {
  argc: 1,
  check: ([v], _ctx, head) => {
    const p = head.protocol;
    if (p === undefined || p.invert || !MULTIPORT_PROTOCOLS.has(p.name)) return "multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'";
    const ports = (v ?? '').split(',');
    if (ports.length > 15) return 'too many ports specified';
    return ports.every(portRange) ? undefined : `invalid port/service \`${v ?? ''}' specified`;
  },
};

const CT_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];
const ADDR_TYPES = ['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE'];

const addrTypes: OptionSpec = {
  argc: 1,
  check: ([v]) => {
    const bad = (v ?? '').split(',').find((t) => !ADDR_TYPES.includes(t.toUpperCase()));
    return bad === undefined ? undefined : `addrtype: bad type "${bad}"`;
  },
};

const REJECT_TYPES: Readonly<Record<IpFamily, readonly string[]>> = {
  IPv4: [
    'icmp-net-unreachable', 'net-unreach', 'icmp-host-unreachable', 'host-unreach', 'icmp-proto-unreachable',
    'proto-unreach', 'icmp-port-unreachable', 'port-unreach', 'icmp-net-prohibited', 'net-prohib',
    'icmp-host-prohibited', 'host-prohib', 'tcp-reset', 'tcp-rst', 'icmp-admin-prohibited', 'admin-prohib',
  ],
  IPv6: [
    'icmp6-no-route', 'no-route', 'icmp6-adm-prohibited', 'adm-prohibited', 'admin-prohib', 'icmp6-addr-unreachable',
    'addr-unreach', 'icmp6-port-unreachable', 'port-unreach', 'tcp-reset', 'icmp6-policy-fail', 'policy-fail',
    'icmp6-reject-route', 'reject-route',
  ],
};

const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'udplite', 'sctp', 'dccp']);

function needsProtocol(name: string, protos: readonly string[]): (s: Section, head: Head) => string | undefined {
  return (s, head) => {
    // Loaded by "-p tcp --dport …" itself: not checked again (even after "! -p tcp").
    if (s.implicit) return undefined;
    const p = head.protocol;
    return p !== undefined && !p.invert && protos.includes(p.name) ? undefined : `${name.toUpperCase()} match requires '-p ${protos[0] ?? ''}'`;
  };
}

function required(...names: string[]): (s: Section) => string | undefined {
  return (s) => (names.some((n) => s.seen.has(n)) ? undefined : `option "${names[0] ?? ''}" must be specified`);
}

const MATCHES: Readonly<Record<string, ExtensionSpec>> = {
  comment: { options: { '--comment': value }, final: required('--comment') },
  mark: {
    options: { '--mark': { argc: 1, check: ([v]) => (valueMask(v ?? '') ? undefined : 'mark: bad integer value for option "--mark", or out of range.') } },
    final: required('--mark'),
  },
  set: {
    options: {
      '--match-set': {
        argc: 2,
        check: ([name, dirs], ctx) => {
          if (!ctx.hasSet(name ?? '')) return undefined; // NOT_FOUND is raised by the caller
          const list = (dirs ?? '').split(',');
          if (list.length > 6) return "Can't be more src/dst options than 6.";
          return list.every((d) => d === 'src' || d === 'dst') ? undefined : "You must spefify (the comma separated list of) 'src' or 'dst'.";
        },
      },
      '--return-nomatch': flag,
      '--update-counters': flag,
      '--update-subcounters': flag,
      '--packets-eq': value,
      '--packets-lt': value,
      '--packets-gt': value,
      '--bytes-eq': value,
      '--bytes-lt': value,
      '--bytes-gt': value,
    },
    final: (s) => (s.seen.has('--match-set') ? undefined : "You must specify `--match-set' with proper arguments"),
  },
  conntrack: {
    options: {
      '--ctstate': {
        argc: 1,
        check: ([v]) => {
          const bad = (v ?? '').split(',').find((st) => !CT_STATES.includes(st.toUpperCase()));
          return bad === undefined ? undefined : `Bad ctstate "${bad}"`;
        },
      },
      '--ctproto': value,
      '--ctorigsrc': value,
      '--ctorigdst': value,
      '--ctreplsrc': value,
      '--ctrepldst': value,
      '--ctorigsrcport': value,
      '--ctorigdstport': value,
      '--ctreplsrcport': value,
      '--ctrepldstport': value,
      '--ctstatus': value,
      '--ctexpire': value,
      '--ctdir': value,
    },
    final: (s) => (s.seen.size > 0 ? undefined : 'conntrack: At least one option is required'),
  },
  addrtype: {
    options: { '--src-type': addrTypes, '--dst-type': addrTypes, '--limit-iface-in': flag, '--limit-iface-out': flag },
    final: (s) => {
      if (!s.seen.has('--src-type') && !s.seen.has('--dst-type')) return 'addrtype: you must specify --src-type or --dst-type';
      if (s.seen.has('--limit-iface-in') && s.seen.has('--limit-iface-out')) return 'addrtype: you can\'t specify both --limit-iface-in and --limit-iface-out';
      return undefined;
    },
  },
  physdev: {
    options: { '--physdev-in': value, '--physdev-out': value, '--physdev-is-in': flag, '--physdev-is-out': flag, '--physdev-is-bridged': flag },
    final: (s) => (s.seen.size > 0 ? undefined : 'PHYSDEV: no physdev option specified'),
  },
  tcp: {
    options: { '--sport': portOption, '--source-port': portOption, '--dport': portOption, '--destination-port': portOption, '--syn': flag, '--tcp-flags': { argc: 2 }, '--tcp-option': value },
    final: needsProtocol('tcp', ['tcp']),
  },
  udp: {
    // libxt_udp (1.8.9) takes any number and keeps it modulo 65536 (tcp and sctp refuse).
    options: { '--sport': udpPort, '--source-port': udpPort, '--dport': udpPort, '--destination-port': udpPort },
    final: needsProtocol('udp', ['udp']),
  },
  sctp: {
    // libxt_sctp, unlike tcp and udp, does not insist on "-p sctp" while parsing.
    options: { '--sport': portOption, '--source-port': portOption, '--dport': portOption, '--destination-port': portOption, '--chunk-types': { argc: 2 } },
  },
  multiport: {
    options: { '--sports': portList, '--source-ports': portList, '--dports': portList, '--destination-ports': portList, '--ports': portList },
    final: (s) => (s.seen.size > 0 ? undefined : 'multiport: no ports specified'),
  },
  icmp: { options: { '--icmp-type': value } },
  icmp6: { options: { '--icmpv6-type': value } },
  ipvs: {
    options: { '--ipvs': flag, '--vproto': value, '--vaddr': value, '--vport': portOption, '--vdir': value, '--vmethod': value, '--vportctl': portOption },
  },
};

const MARK_OPS = ['--set-xmark', '--set-mark', '--and-mark', '--or-mark', '--xor-mark'];
const markOp = (masked: boolean): OptionSpec => ({
  argc: 1,
  check: ([v]) => {
    const ok = masked ? valueMask(v ?? '') : uint32(v ?? '') !== undefined;
    return ok ? undefined : `MARK: bad value for option, or out of range (0-4294967295).`;
  },
});

const NO_OPTIONS: ExtensionSpec = { options: {} };

const TARGETS: Readonly<Record<string, ExtensionSpec>> = {
  ACCEPT: NO_OPTIONS,
  DROP: NO_OPTIONS,
  RETURN: NO_OPTIONS,
  QUEUE: NO_OPTIONS,
  MARK: {
    options: { '--set-xmark': markOp(true), '--set-mark': markOp(true), '--and-mark': markOp(false), '--or-mark': markOp(false), '--xor-mark': markOp(false) },
    final: (s) => (MARK_OPS.some((o) => s.seen.has(o)) ? undefined : 'MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is required'),
  },
  MASQUERADE: {
    options: { '--to-ports': value, '--random': flag, '--random-fully': flag },
    final: (s, head) => {
      if (!s.seen.has('--to-ports')) return undefined;
      const p = head.protocol;
      return p !== undefined && !p.invert && PORT_PROTOCOLS.has(p.name) ? undefined : 'Need TCP, UDP, SCTP or DCCP with port specification';
    },
  },
  SNAT: { options: { '--to-source': value, '--random': flag, '--random-fully': flag, '--persistent': flag }, final: required('--to-source') },
  DNAT: { options: { '--to-destination': value, '--random': flag, '--persistent': flag }, final: required('--to-destination') },
  REJECT: {
    options: {
      '--reject-with': { argc: 1, check: ([v], ctx) => (REJECT_TYPES[ctx.family].includes(v ?? '') ? undefined : `unknown reject type "${v ?? ''}"`) },
    },
  },
};

/** Which extension options are mutually exclusive with an option seen before. */
function conflict(s: Section, opt: string): string | undefined {
  if (s.kind === 'target' && s.name === 'MARK' && MARK_OPS.includes(opt)) {
    const other = MARK_OPS.find((o) => s.seen.has(o));
    if (other !== undefined) return `MARK: option "${other}" cannot be used together with "${opt}".`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The line

interface Section {
  readonly kind: 'match' | 'target';
  readonly name: string;
  readonly spec: ExtensionSpec | undefined;
  readonly seen: Map<string, { readonly invert: boolean; readonly values: readonly string[] }>;
  /** Loaded by a protocol option after -p, not by -m. */
  readonly implicit?: boolean;
}

interface HeadValue {
  readonly invert: boolean;
  readonly value: string;
}

interface Head {
  readonly values: Map<string, HeadValue>;
  protocol: { readonly invert: boolean; readonly name: string } | undefined;
}

interface ParseContext {
  readonly family: IpFamily;
  readonly hasSet: (name: string) => boolean;
}

export interface RuleContext extends ParseContext {
  readonly table: string;
  /** The chain the command names (-A CHAIN ...), for the built-in chain interface checks. */
  readonly chain: string;
  /** Matches whose kernel module is missing (the kernel refuses a rule using them). */
  readonly unavailableMatches: ReadonlySet<string>;
}

export interface CheckedRule {
  /** Canonical specs as iptables-save prints them: one per source × destination address. */
  readonly specs: readonly string[];
  /** -j/-g name, if any. */
  readonly target: string | undefined;
  readonly isGoto: boolean;
  /** Whether the target is an extension (verdict or target module) rather than a chain. */
  readonly targetIsExtension: boolean;
  /** Sets named by --match-set. */
  readonly sets: readonly string[];
  /** Built-in chains the rule may be reached from; undefined when any. */
  readonly hooks: ReadonlySet<string> | undefined;
  /** Why the kernel refuses the rule wherever it is (EINVAL, ENOENT of a missing module). */
  readonly kernel: Refusal | undefined;
}

const HEAD_KEYS: ReadonlyMap<string, string> = new Map([
  ['-s', '-s'], ['--source', '-s'], ['--src', '-s'],
  ['-d', '-d'], ['--destination', '-d'], ['--dst', '-d'],
  ['-i', '-i'], ['--in-interface', '-i'],
  ['-o', '-o'], ['--out-interface', '-o'],
  ['-p', '-p'], ['--protocol', '-p'],
]);

/** /etc/protocols names iptables resolves (netbase), plus "all". */
const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  all: 0, ip: 0, icmp: 1, igmp: 2, tcp: 6, udp: 17, ipv6: 41, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, icmpv6: 58,
  ipip: 94, pim: 103, sctp: 132, udplite: 136, mh: 135, dccp: 33,
};
const NUMBER_NAMES: Readonly<Record<number, string>> = { 6: 'tcp', 17: 'udp', 132: 'sctp', 136: 'udplite', 33: 'dccp', 1: 'icmp', 58: 'ipv6-icmp' };

/** Options that load the protocol's match implicitly ("-p tcp --dport 80"). */
const IMPLICIT: Readonly<Record<string, string>> = { tcp: 'tcp', udp: 'udp', sctp: 'sctp', icmp: 'icmp', 'ipv6-icmp': 'icmp6' };

function protocolName(text: string): string | undefined {
  const lower = text.toLowerCase();
  if (PROTOCOL_NUMBERS[lower] !== undefined) return lower === 'icmpv6' ? 'ipv6-icmp' : lower;
  if (/^\d{1,3}$/.test(lower) && Number(lower) <= 255) return NUMBER_NAMES[Number(lower)] ?? lower;
  return undefined;
}

/** "10.1.2.3/24" → canonical "10.1.2.0/24" (or "10.0.2.0/255.0.255.0" for a non-contiguous mask). */
export function canonicalHostMask(text: string, family: IpFamily): { text: string; zero: boolean } | string {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addr);
  if (!ip || ip.family !== family) return `host/network \`${addr}' not found`;
  const bits = ip.bytes.length * 8;
  let mask: Uint8Array;
  if (slash < 0) mask = new Uint8Array(ip.bytes.length).fill(0xff);
  else {
    const m = text.slice(slash + 1);
    if (/^\d+$/.test(m)) {
      const prefix = Number(m);
      if (prefix > bits) return `invalid mask \`${m}' specified`;
      mask = new Uint8Array(ip.bytes.length).map((_, i) => (0xff << (8 - Math.max(0, Math.min(8, prefix - i * 8)))) & 0xff);
    } else {
      const mp = parseIp(m);
      if (!mp || mp.family !== family) return `invalid mask \`${m}' specified`;
      mask = mp.bytes;
    }
  }
  const masked = ip.bytes.map((b, i) => b & (mask[i] ?? 0));
  let prefix = 0;
  while (prefix < bits && ((mask[prefix >> 3] ?? 0) & (0x80 >> (prefix & 7))) !== 0) prefix++;
  const contiguous = [...Array(bits).keys()].every((i) => (((mask[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0) === i < prefix);
  const address = formatIp({ family, bytes: masked });
  const maskText = contiguous ? String(prefix) : formatIp({ family, bytes: mask });
  return { text: `${address}/${maskText}`, zero: prefix === 0 && contiguous };
}

function optionOwner(sections: readonly Section[], opt: string): Section | undefined {
  const target = sections.find((s) => s.kind === 'target');
  if (target?.spec?.options[opt] !== undefined) return target;
  for (let i = sections.length - 1; i >= 0; i--) {
    const s = sections[i];
    if (s?.kind === 'match' && s.spec?.options[opt] !== undefined) return s;
  }
  return undefined;
}

/**
 * Checks the arguments of one -A/-I/-D rule as iptables-restore and the kernel would, and gives
 * its canonical spec(s). Parse-phase refusals are thrown; what the kernel would refuse is returned
 * in `kernel` (and `hooks`), since whether it applies depends on the table's state at COMMIT.
 */
export function checkRule(args: readonly string[], ctx: RuleContext): CheckedRule {
  const head: Head = { values: new Map(), protocol: undefined };
  const sections: Section[] = [];
  const sets: string[] = [];
  let invert = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '!') {
      if (invert) refuse('INVALID', 'multiple consecutive ! not allowed');
      invert = true;
      continue;
    }
    const key = HEAD_KEYS.get(a);
    const takeValue = (): string => {
      const v = args[++i];
      if (v === undefined) refuse('INVALID', `option "${a}" requires an argument`);
      return v;
    };
    if (key !== undefined) {
      if (head.values.has(key)) refuse('INVALID', `multiple ${key} flags not allowed`);
      const v = takeValue();
      if ((key === '-i' || key === '-o') && v.length > 15) refuse('INVALID', `interface name \`${v}' must be shorter than IFNAMSIZ (15)`);
      if (key === '-p') {
        const name = protocolName(v);
        if (name === undefined) refuse('INVALID', `unknown protocol "${v}" specified`);
        head.protocol = { invert, name };
      }
      head.values.set(key, { invert, value: v });
    } else if (a === '-m' || a === '--match') {
      if (invert) refuse('INVALID', 'unexpected ! flag before --match');
      const name = takeValue();
      if (!KNOWN_MATCHES.has(name)) refuse('UNAVAILABLE', `Couldn't load match \`${name}':No such file or directory`);
      sections.push({ kind: 'match', name, spec: MATCHES[name], seen: new Map() });
    } else if (a === '-j' || a === '--jump' || a === '-g' || a === '--goto') {
      if (invert) refuse('INVALID', `cannot have ! before ${a}`);
      if (sections.some((s) => s.kind === 'target')) refuse('INVALID', 'multiple -j flags not allowed');
      const name = takeValue();
      const isGoto = a === '-g' || a === '--goto';
      sections.push({ kind: 'target', name, spec: isGoto ? undefined : (TARGETS[name] ?? (KNOWN_TARGETS.has(name) ? undefined : NO_OPTIONS)), seen: new Map([...(isGoto ? [['-g', { invert: false, values: [] }] as const] : [])]) });
    } else if (a.startsWith('-') && a.length > 1) {
      let owner = optionOwner(sections, a);
      const proto = head.protocol?.name;
      const implicit = proto === undefined ? undefined : IMPLICIT[proto];
      if (owner === undefined && implicit !== undefined && MATCHES[implicit]?.options[a] !== undefined && !sections.some((s) => s.name === implicit)) {
        owner = { kind: 'match', name: implicit, spec: MATCHES[implicit], seen: new Map(), implicit: true };
        sections.push(owner);
      }
      // A known target or match we do not model takes its options unchecked.
      if (owner === undefined) owner = [...sections].reverse().find((s) => s.spec === undefined && !s.seen.has('-g'));
      if (owner === undefined) refuse('INVALID', `unknown option "${a}"`);
      const opt = owner.spec?.options[a];
      const values: string[] = [];
      for (let k = 0; k < (opt?.argc ?? 0); k++) values.push(takeValue());
      // An option of an extension we do not model takes whatever values follow it.
      if (owner.spec === undefined) while (args[i + 1] !== undefined && !(args[i + 1] ?? '').startsWith('-') && args[i + 1] !== '!') values.push(args[++i] ?? '');
      if (owner.spec !== undefined) {
        if (owner.seen.has(a)) refuse('INVALID', a === '--match-set' ? '--match-set can be specified only once' : `${owner.name}: option "${a}" can only be used once.`);
        const clash = conflict(owner, a);
        if (clash !== undefined) refuse('INVALID', clash);
        if (a === '--match-set') {
          const name = values[0] ?? '';
          if (!ctx.hasSet(name)) refuse('NOT_FOUND', `Set ${name} doesn't exist.`);
          sets.push(name);
        }
        const bad = opt?.check?.(values, ctx, head);
        if (bad !== undefined) refuse('INVALID', bad);
      }
      owner.seen.set(a, { invert, values });
    } else {
      refuse('INVALID', `Bad argument \`${a}'`);
    }
    invert = false;
  }

  // After the argument loop: each extension's own final check, then the generic options.
  for (const s of sections) {
    const bad = s.spec?.final?.(s, head);
    if (bad !== undefined) refuse('INVALID', bad);
  }
  const addresses = (key: '-s' | '-d'): { invert: boolean; list: { text: string; zero: boolean }[] } | undefined => {
    const v = head.values.get(key);
    if (!v) return undefined;
    if (v.invert && v.value.includes(',')) refuse('INVALID', '! not allowed with multiple source or destination IP addresses');
    const list = v.value.split(',').map((one) => {
      const c = canonicalHostMask(one, ctx.family);
      if (typeof c === 'string') refuse('INVALID', c);
      return c;
    });
    return { invert: v.invert, list };
  };
  const src = addresses('-s');
  const dst = addresses('-d');
  if (isBuiltinChain(ctx.table, ctx.chain)) {
    if (head.values.has('-o') && (ctx.chain === 'INPUT' || ctx.chain === 'PREROUTING')) refuse('INVALID', `Can't use -o with ${ctx.chain}`);
    if (head.values.has('-i') && (ctx.chain === 'OUTPUT' || ctx.chain === 'POSTROUTING')) refuse('INVALID', `Can't use -i with ${ctx.chain}`);
  }
  const target = sections.find((s) => s.kind === 'target');
  if (ctx.table === 'nat' && target?.name === 'DROP') refuse('INVALID', 'The "nat" table is not intended for filtering, the use of DROP is therefore inhibited.');

  const kernel = kernelRefusal(ctx, head, sections, src, dst);
  const hooks = ruleHooks(sections);
  const isGoto = target?.seen.has('-g') ?? false;
  return {
    specs: expand(args, src, dst, ctx.family),
    target: target?.name,
    isGoto,
    targetIsExtension: target !== undefined && !isGoto && KNOWN_TARGETS.has(target.name),
    sets,
    hooks,
    kernel,
  };
}

function kernelRefusal(
  ctx: RuleContext,
  head: Head,
  sections: readonly Section[],
  src: { invert: boolean; list: { zero: boolean }[] } | undefined,
  dst: { invert: boolean; list: { zero: boolean }[] } | undefined,
): Refusal | undefined {
  const einval = (why: string): Refusal => new Refusal('INVALID', `RULE_APPEND failed (Invalid argument): ${why}`, 'kernel');
  for (const s of sections) {
    if (s.kind === 'match' && ctx.unavailableMatches.has(s.name)) {
      return new Refusal('UNAVAILABLE', `Extension ${s.name} revision 0 not supported, missing kernel module?`, 'kernel');
    }
  }
  // An inverted match-everything address matches nothing; nf_tables refuses it.
  if ((src?.invert && src.list.some((a) => a.zero)) || (dst?.invert && dst.list.some((a) => a.zero))) return einval('inverted /0 address');
  const target = sections.find((s) => s.kind === 'target');
  if (target && !target.seen.has('-g')) {
    const only = TARGET_TABLE[target.name];
    if (only !== undefined && only !== ctx.table) return einval(`${target.name} is valid in the ${only} table only`);
    const reject = target.seen.get('--reject-with')?.values[0];
    if (target.name === 'REJECT' && reject === 'tcp-reset' && (head.protocol?.name !== 'tcp' || head.protocol.invert)) return einval('tcp-reset needs -p tcp');
  }
  return undefined;
}

function ruleHooks(sections: readonly Section[]): ReadonlySet<string> | undefined {
  let hooks: Set<string> | undefined;
  const limit = (allowed: readonly string[]): void => {
    hooks = new Set(hooks ? [...hooks].filter((h) => allowed.includes(h)) : allowed);
  };
  for (const s of sections) {
    if (s.kind === 'target' && !s.seen.has('-g') && TARGET_HOOKS[s.name]) limit(TARGET_HOOKS[s.name] ?? []);
    if (s.kind === 'match' && s.name === 'addrtype') {
      if (s.seen.has('--limit-iface-in')) limit(['PREROUTING', 'INPUT', 'FORWARD']);
      if (s.seen.has('--limit-iface-out')) limit(['POSTROUTING', 'OUTPUT', 'FORWARD']);
    }
  }
  return hooks;
}

/** One canonical spec per source × destination address, as iptables adds one rule each. */
function expand(
  args: readonly string[],
  src: { list: { text: string }[] } | undefined,
  dst: { list: { text: string }[] } | undefined,
  family: IpFamily,
): string[] {
  const out: string[] = [];
  for (const s of src?.list ?? [undefined]) {
    for (const d of dst?.list ?? [undefined]) {
      const one = args.map((a, i) => {
        const key = HEAD_KEYS.get(args[i - 1] ?? '');
        if (key === '-s' && s) return s.text;
        if (key === '-d' && d) return d.text;
        return a;
      });
      out.push(canonicalRuleSpec(joinRuleSpec(one), family));
    }
  }
  return out;
}
