// Pure encode/decode of IPVS generic netlink messages (no sockets): genetlink framing (netlink's
// own is ../netlink/framing.ts, bound here to IpvsError), the attribute payloads of every IPVS command kube-ipvs uses, and decoders that turn dump
// entries into model objects. Wire facts: Linux include/uapi/linux/ip_vs.h (commands, attributes,
// flags) and net/netfilter/ipvs/ip_vs_ctl.c (ip_vs_genl_policy and the dump replies).
import type { ForwardMethod, RealServer, VirtualServer } from '../../model/kernel.js';
import { VsFlag, rsKey, vsKey } from '../../model/kernel.js';
import type { IpFamily, Protocol } from '../../model/types.js';
import { formatIp, parseIp } from '../../model/ip.js';
import { LE, framingWith, readS32, readU16, readU32 } from '../netlink/framing.js';
import { IpvsError } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Constants

export const IPVS_GENL_NAME = 'IPVS';
export const IPVS_GENL_VERSION = 1;
/** The genetlink controller's fixed family id (GENL_ID_CTRL). */
export const GENL_ID_CTRL = 0x10;

// Netlink framing is shared with ipset (../netlink/framing.ts); re-exported for this codec's users.
export { NLA_F_NESTED, NlMsgType, NlmF, encodeNlMessage, parseNlError } from '../netlink/framing.js';
export type { NlMessage } from '../netlink/framing.js';

export const CtrlCmd = { NEWFAMILY: 1, GETFAMILY: 3 } as const;
export const CtrlAttr = { FAMILY_ID: 1, FAMILY_NAME: 2, VERSION: 3, HDRSIZE: 4, MAXATTR: 5, OPS: 6 } as const;

export const IpvsCmd = {
  NEW_SERVICE: 1,
  SET_SERVICE: 2,
  DEL_SERVICE: 3,
  GET_SERVICE: 4,
  NEW_DEST: 5,
  SET_DEST: 6,
  DEL_DEST: 7,
  GET_DEST: 8,
  SET_CONFIG: 12,
  GET_CONFIG: 13,
  SET_INFO: 14,
  GET_INFO: 15,
  ZERO: 16,
  FLUSH: 17,
} as const;

export const CmdAttr = { SERVICE: 1, DEST: 2, DAEMON: 3, TIMEOUT_TCP: 4, TIMEOUT_TCP_FIN: 5, TIMEOUT_UDP: 6 } as const;

export const SvcAttr = {
  AF: 1,
  PROTOCOL: 2,
  ADDR: 3,
  PORT: 4,
  FWMARK: 5,
  SCHED_NAME: 6,
  FLAGS: 7,
  TIMEOUT: 8,
  NETMASK: 9,
  STATS: 10,
  PE_NAME: 11,
  STATS64: 12,
} as const;

export const DestAttr = {
  ADDR: 1,
  PORT: 2,
  FWD_METHOD: 3,
  WEIGHT: 4,
  U_THRESH: 5,
  L_THRESH: 6,
  ACTIVE_CONNS: 7,
  INACT_CONNS: 8,
  PERSIST_CONNS: 9,
  STATS: 10,
  ADDR_FAMILY: 11,
  STATS64: 12,
  TUN_TYPE: 13,
  TUN_PORT: 14,
  TUN_FLAGS: 15,
} as const;

export const StatsAttr = {
  CONNS: 1,
  INPKTS: 2,
  OUTPKTS: 3,
  INBYTES: 4,
  OUTBYTES: 5,
  CPS: 6,
  INPPS: 7,
  OUTPPS: 8,
  INBPS: 9,
  OUTBPS: 10,
} as const;

export const InfoAttr = { VERSION: 1, CONN_TAB_SIZE: 2 } as const;

const AF_INET = 2;
const AF_INET6 = 10;

const PROTO_NUMBERS: Readonly<Record<Protocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };
const PROTO_NAMES: ReadonlyMap<number, Protocol> = new Map([
  [6, 'TCP'],
  [17, 'UDP'],
  [132, 'SCTP'],
]);

/** IP_VS_CONN_F_FWD_MASK values. */
export const FORWARD_CODES: Readonly<Record<ForwardMethod, number>> = { masq: 0, local: 1, tunnel: 2, route: 3, bypass: 4 };
const FORWARD_NAMES: readonly ForwardMethod[] = ['masq', 'local', 'tunnel', 'route', 'bypass'];

export type TunnelType = 'ipip' | 'gue' | 'gre';
export const TUNNEL_CODES: Readonly<Record<TunnelType, number>> = { ipip: 0, gue: 1, gre: 2 };
const TUNNEL_NAMES: readonly TunnelType[] = ['ipip', 'gue', 'gre'];
/** IP_VS_TUNNEL_ENCAP_FLAG_* bits for `tunnelFlags`. */
export const TunnelFlag = { CSUM: 0x1, REMCSUM: 0x2 } as const;

/** IP_VS_SCHEDNAME_MAXLEN / IP_VS_PENAME_MAXLEN include the NUL. */
const NAME_MAXLEN = 16;

// ---------------------------------------------------------------------------------------------
// Types

/** Per-object counters and rate estimates, as `ipvsadm --stats/--rate` shows them. */
export interface IpvsStats {
  readonly conns: number;
  readonly inpkts: number;
  readonly outpkts: number;
  readonly inbytes: number;
  readonly outbytes: number;
  readonly cps: number;
  readonly inpps: number;
  readonly outpps: number;
  readonly inbps: number;
  readonly outbps: number;
}

export const ZERO_STATS: IpvsStats = {
  conns: 0,
  inpkts: 0,
  outpkts: 0,
  inbytes: 0,
  outbytes: 0,
  cps: 0,
  inpps: 0,
  outpps: 0,
  inbps: 0,
  outbps: 0,
};

/**
 * What the codec needs to program a virtual server. With `fwmark` > 0 the identity is AF + mark
 * and protocol/address/port are not sent. `netmask`: for IPv4 the 32-bit mask value
 * (default 0xffffffff), for IPv6 the prefix length (default 128) — persistence granularity.
 */
export type IpvsServiceSpec = VirtualServer & {
  readonly fwmark?: number;
  readonly netmask?: number;
  /** Persistence engine, e.g. "sip". */
  readonly peName?: string;
};

/** A virtual server as the kernel reports it. Flags never include VsFlag.HASHED. */
export type ObservedVirtualServer = VirtualServer & {
  /**
   * Set on firewall-mark services. The kernel keeps no protocol/address/port for them, so those
   * read as 'TCP', '' and 0: callers must check `fwmark` before using the address.
   */
  readonly fwmark?: number;
  readonly netmask: number;
  readonly peName?: string;
  readonly stats: IpvsStats;
};

/** A virtual server as the kernel reports it, without its traffic counters. */
export type ObservedVirtualServerSetup = Omit<ObservedVirtualServer, 'stats'>;

/** What the codec needs to program a real server. Thresholds default to 0 (no limit). */
export type IpvsDestSpec = RealServer & {
  readonly upperThreshold?: number;
  readonly lowerThreshold?: number;
  /** Tunnel forwarding only (5.2+); the kernel defaults to ipip. */
  readonly tunnelType?: TunnelType;
  /** Required by the kernel for gue. */
  readonly tunnelPort?: number;
  /** TunnelFlag bits (5.3+). */
  readonly tunnelFlags?: number;
};

/** A real server as the kernel reports it. */
export type ObservedRealServer = RealServer & {
  /** May differ from the virtual server's with tunnel forwarding. */
  readonly family: IpFamily;
  readonly upperThreshold: number;
  readonly lowerThreshold: number;
  readonly activeConns: number;
  readonly inactiveConns: number;
  readonly persistConns: number;
  readonly stats: IpvsStats;
  readonly tunnelType?: TunnelType;
  readonly tunnelPort?: number;
  readonly tunnelFlags?: number;
};

/** Global IPVS connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`); 0 = unchanged. */
export interface IpvsTimeouts {
  readonly tcp: number;
  readonly tcpFin: number;
  readonly udp: number;
}

export interface IpvsInfo {
  /** IP_VS_VERSION_CODE, e.g. 0x010201. */
  readonly version: number;
  /** "1.2.1". */
  readonly versionText: string;
  readonly connTableSize: number;
}

export interface GenlFamily {
  readonly id: number;
  readonly name: string;
  readonly version: number;
  readonly maxAttr: number;
  /** Number of operations the family registered. */
  readonly ops: number;
}

export interface GenlMessage {
  readonly cmd: number;
  readonly version: number;
  readonly attrs: AttrMap;
}

/** Attributes by type (flags masked off); a repeated type keeps the last, as nla_parse does. */
export type AttrMap = ReadonlyMap<number, Buffer>;

// ---------------------------------------------------------------------------------------------
// Host-order integers (netlink integers are host order unless the attribute says otherwise)

function putU16(v: number): Buffer {
  const b = Buffer.alloc(2);
  if (LE) b.writeUInt16LE(v);
  else b.writeUInt16BE(v);
  return b;
}

function putU32(v: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(v >>> 0);
  else b.writeUInt32BE(v >>> 0);
  return b;
}

function putS32(v: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeInt32LE(v);
  else b.writeInt32BE(v);
  return b;
}

function putU16be(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function putU32be(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

function putString(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]);
}

/** u32 or u64 by the attribute's length (STATS mixes both; STATS64 is all u64). */
function readCounter(b: Buffer | undefined): number {
  if (!b) return 0;
  if (b.length >= 8) return Number(LE ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0));
  if (b.length >= 4) return readU32(b);
  return 0;
}

function readString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

function protocolError(detail: string): IpvsError {
  return new IpvsError({ code: 'PROTOCOL', errno: 0, op: 'decode', object: '', detail });
}

function encodeError(object: string, detail: string): IpvsError {
  return new IpvsError({ code: 'EINVAL', errno: 22, op: 'encode', object, detail });
}

// ---------------------------------------------------------------------------------------------
// Netlink framing

/** Netlink framing throwing PROTOCOL for what the kernel sent, EINVAL for what we could not encode. */
export const { encodeAttr, encodeNested, eachAttr: eachPayloadAttr, parseAttrs, parseNlMessages } = framingWith({
  malformed: (detail) => protocolError(`bad ${detail}`),
  tooLong: (detail) => encodeError('', detail),
});

export function encodeGenl(cmd: number, version: number, attrs: readonly Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([cmd, version, 0, 0]), ...attrs]);
}

export function parseGenl(payload: Buffer): GenlMessage {
  if (payload.length < 4) throw protocolError('short generic netlink header');
  return { cmd: payload[0] ?? 0, version: payload[1] ?? 0, attrs: parseAttrs(payload.subarray(4)) };
}

// ---------------------------------------------------------------------------------------------
// Controller (family id resolution)

export function encodeGetFamily(name: string): Buffer {
  return encodeGenl(CtrlCmd.GETFAMILY, 1, [encodeAttr(CtrlAttr.FAMILY_NAME, putString(name))]);
}

export function decodeFamily(payload: Buffer): GenlFamily {
  const { attrs } = parseGenl(payload);
  const id = attrs.get(CtrlAttr.FAMILY_ID);
  if (!id || id.length < 2) throw protocolError('controller reply without a family id');
  const name = attrs.get(CtrlAttr.FAMILY_NAME);
  const version = attrs.get(CtrlAttr.VERSION);
  const maxAttr = attrs.get(CtrlAttr.MAXATTR);
  const ops = attrs.get(CtrlAttr.OPS);
  return {
    id: readU16(id),
    name: name ? readString(name) : '',
    version: version && version.length >= 4 ? readU32(version) : 0,
    maxAttr: maxAttr && maxAttr.length >= 4 ? readU32(maxAttr) : 0,
    ops: ops ? parseAttrs(ops).size : 0,
  };
}

// ---------------------------------------------------------------------------------------------
// IPVS attribute payloads

function afOf(family: IpFamily): number {
  return family === 'IPv4' ? AF_INET : AF_INET6;
}

function familyOfAf(af: number): IpFamily | undefined {
  if (af === AF_INET) return 'IPv4';
  if (af === AF_INET6) return 'IPv6';
  return undefined;
}

/** Short text naming a service in errors: kube-proxy's identity, or "fwmark:N/IPv4". */
export function serviceLabel(vs: Pick<IpvsServiceSpec, 'address' | 'port' | 'protocol' | 'family'> & { fwmark?: number }): string {
  if (vs.fwmark) return `fwmark:${vs.fwmark}/${vs.family}`;
  return vsKey(vs);
}

export function destLabel(vs: Parameters<typeof serviceLabel>[0], rs: Pick<RealServer, 'address' | 'port'>): string {
  return `${serviceLabel(vs)} -> ${rsKey(rs)}`;
}

function checkPort(port: number, object: string, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw encodeError(object, `${what} ${port} is not a port number`);
}

function checkU32(v: number, object: string, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw encodeError(object, `${what} ${v} is not an unsigned 32-bit integer`);
}

function checkName(name: string, object: string, what: string): void {
  if (name.length === 0 || Buffer.byteLength(name) >= NAME_MAXLEN || name.includes('\0')) {
    throw encodeError(object, `${what} "${name}" must be 1..${NAME_MAXLEN - 1} bytes`);
  }
}

/** The identity attributes of a service (inside the SERVICE nest). */
function serviceIdentityAttrs(vs: IpvsServiceSpec): Buffer[] {
  const object = serviceLabel(vs);
  const af = encodeAttr(SvcAttr.AF, putU16(afOf(vs.family)));
  if (vs.fwmark !== undefined && vs.fwmark !== 0) {
    checkU32(vs.fwmark, object, 'fwmark');
    return [af, encodeAttr(SvcAttr.FWMARK, putU32(vs.fwmark))];
  }
  const ip = parseIp(vs.address);
  if (!ip) throw encodeError(object, `"${vs.address}" is not an IP address`);
  if (ip.family !== vs.family) throw encodeError(object, `address ${vs.address} is not ${vs.family}`);
  checkPort(vs.port, object, 'port');
  const proto = PROTO_NUMBERS[vs.protocol];
  if (proto === undefined) throw encodeError(object, `unknown protocol ${String(vs.protocol)}`);
  return [
    af,
    encodeAttr(SvcAttr.PROTOCOL, putU16(proto)),
    // IPv4 as its 4 bytes: the kernel zero-fills the rest of nf_inet_addr (nla_memcpy).
    encodeAttr(SvcAttr.ADDR, ip.bytes),
    encodeAttr(SvcAttr.PORT, putU16be(vs.port)),
  ];
}

function defaultNetmask(family: IpFamily): number {
  return family === 'IPv4' ? 0xffffffff : 128;
}

function serviceNest(vs: IpvsServiceSpec, full: boolean): Buffer {
  const attrs = serviceIdentityAttrs(vs);
  if (full) {
    const object = serviceLabel(vs);
    checkName(vs.scheduler, object, 'scheduler');
    checkU32(vs.flags, object, 'flags');
    checkU32(vs.timeout, object, 'timeout');
    const netmask = vs.netmask ?? defaultNetmask(vs.family);
    checkU32(netmask, object, 'netmask');
    if (vs.family === 'IPv6' && (netmask < 1 || netmask > 128)) {
      throw encodeError(object, `IPv6 netmask is a prefix length 1..128, got ${netmask}`);
    }
    // struct ip_vs_flags {flags, mask}: mask all ones so the kernel takes our flags verbatim;
    // HASHED is the kernel's own bit and must not be sent.
    const flags = Buffer.concat([putU32(vs.flags & ~VsFlag.HASHED), putU32(0xffffffff)]);
    attrs.push(
      encodeAttr(SvcAttr.SCHED_NAME, putString(vs.scheduler)),
      encodeAttr(SvcAttr.FLAGS, flags),
      encodeAttr(SvcAttr.TIMEOUT, putU32(vs.timeout)),
      // IPv4: the mask in network order (as ipvsadm's htonl'd value); IPv6: a host-order prefix length.
      encodeAttr(SvcAttr.NETMASK, vs.family === 'IPv4' ? putU32be(netmask) : putU32(netmask)),
    );
    if (vs.peName !== undefined && vs.peName !== '') {
      checkName(vs.peName, object, 'persistence engine');
      attrs.push(encodeAttr(SvcAttr.PE_NAME, putString(vs.peName)));
    }
  }
  return encodeNested(CmdAttr.SERVICE, attrs);
}

function destNest(vs: IpvsServiceSpec, rs: IpvsDestSpec, full: boolean): Buffer {
  const object = destLabel(vs, rs);
  const ip = parseIp(rs.address);
  if (!ip) throw encodeError(object, `"${rs.address}" is not an IP address`);
  checkPort(rs.port, object, 'port');
  const attrs = [
    encodeAttr(DestAttr.ADDR, ip.bytes),
    encodeAttr(DestAttr.PORT, putU16be(rs.port)),
    // Kernels before 3.18 ignore it and assume the service's family.
    encodeAttr(DestAttr.ADDR_FAMILY, putU16(afOf(ip.family))),
  ];
  if (full) {
    const fwd = FORWARD_CODES[rs.forward];
    if (fwd === undefined) throw encodeError(object, `unknown forwarding method ${String(rs.forward)}`);
    // The kernel reads the weight as a signed int and answers ERANGE when negative; let it.
    if (!Number.isInteger(rs.weight) || rs.weight < -0x80000000 || rs.weight > 0x7fffffff) {
      throw encodeError(object, `weight ${rs.weight} is not a 32-bit integer`);
    }
    const upper = rs.upperThreshold ?? 0;
    const lower = rs.lowerThreshold ?? 0;
    checkU32(upper, object, 'upper threshold');
    checkU32(lower, object, 'lower threshold');
    attrs.push(
      encodeAttr(DestAttr.FWD_METHOD, putU32(fwd)),
      encodeAttr(DestAttr.WEIGHT, putS32(rs.weight)),
      encodeAttr(DestAttr.U_THRESH, putU32(upper)),
      encodeAttr(DestAttr.L_THRESH, putU32(lower)),
    );
    if (rs.tunnelType !== undefined) {
      const t = TUNNEL_CODES[rs.tunnelType];
      if (t === undefined) throw encodeError(object, `unknown tunnel type ${String(rs.tunnelType)}`);
      attrs.push(encodeAttr(DestAttr.TUN_TYPE, Buffer.from([t])));
    }
    if (rs.tunnelPort !== undefined) {
      checkPort(rs.tunnelPort, object, 'tunnel port');
      attrs.push(encodeAttr(DestAttr.TUN_PORT, putU16be(rs.tunnelPort)));
    }
    if (rs.tunnelFlags !== undefined) {
      if (!Number.isInteger(rs.tunnelFlags) || rs.tunnelFlags < 0 || rs.tunnelFlags > 0xffff) {
        throw encodeError(object, `tunnel flags ${rs.tunnelFlags} out of range`);
      }
      attrs.push(encodeAttr(DestAttr.TUN_FLAGS, putU16(rs.tunnelFlags)));
    }
  }
  return encodeNested(CmdAttr.DEST, attrs);
}

function ipvs(cmd: number, attrs: readonly Buffer[]): Buffer {
  return encodeGenl(cmd, IPVS_GENL_VERSION, attrs);
}

// Each encoder returns the generic netlink payload (genlmsghdr + attributes) of one request.

export function encodeNewService(vs: IpvsServiceSpec): Buffer {
  return ipvs(IpvsCmd.NEW_SERVICE, [serviceNest(vs, true)]);
}

export function encodeSetService(vs: IpvsServiceSpec): Buffer {
  return ipvs(IpvsCmd.SET_SERVICE, [serviceNest(vs, true)]);
}

export function encodeDelService(vs: IpvsServiceSpec): Buffer {
  return ipvs(IpvsCmd.DEL_SERVICE, [serviceNest(vs, false)]);
}

/** GET_SERVICE doit: one service by identity (ESRCH when missing). */
export function encodeGetService(vs: IpvsServiceSpec): Buffer {
  return ipvs(IpvsCmd.GET_SERVICE, [serviceNest(vs, false)]);
}

/** GET_SERVICE dump: send with NLM_F_DUMP. */
export function encodeListServices(): Buffer {
  return ipvs(IpvsCmd.GET_SERVICE, []);
}

export function encodeNewDest(vs: IpvsServiceSpec, rs: IpvsDestSpec): Buffer {
  return ipvs(IpvsCmd.NEW_DEST, [serviceNest(vs, false), destNest(vs, rs, true)]);
}

export function encodeSetDest(vs: IpvsServiceSpec, rs: IpvsDestSpec): Buffer {
  return ipvs(IpvsCmd.SET_DEST, [serviceNest(vs, false), destNest(vs, rs, true)]);
}

export function encodeDelDest(vs: IpvsServiceSpec, rs: Pick<IpvsDestSpec, 'address' | 'port'>): Buffer {
  // Only address and port identify a destination; the placeholders are never sent.
  const id: IpvsDestSpec = { address: rs.address, port: rs.port, weight: 0, forward: 'masq' };
  return ipvs(IpvsCmd.DEL_DEST, [serviceNest(vs, false), destNest(vs, id, false)]);
}

/** GET_DEST is dump-only: send with NLM_F_DUMP. A missing service yields an empty dump, not ESRCH. */
export function encodeListDests(vs: IpvsServiceSpec): Buffer {
  return ipvs(IpvsCmd.GET_DEST, [serviceNest(vs, false)]);
}

export function encodeSetTimeouts(t: Partial<IpvsTimeouts>): Buffer {
  const attrs: Buffer[] = [];
  const add = (type: number, v: number | undefined, what: string): void => {
    if (v === undefined) return;
    // The kernel rejects more than INT_MAX/HZ; HZ is at most 1000.
    if (!Number.isInteger(v) || v < 0 || v > 2147483) throw encodeError('', `${what} timeout ${v} out of range`);
    attrs.push(encodeAttr(type, putU32(v)));
  };
  add(CmdAttr.TIMEOUT_TCP, t.tcp, 'tcp');
  add(CmdAttr.TIMEOUT_TCP_FIN, t.tcpFin, 'tcpfin');
  add(CmdAttr.TIMEOUT_UDP, t.udp, 'udp');
  return ipvs(IpvsCmd.SET_CONFIG, attrs);
}

export function encodeGetTimeouts(): Buffer {
  return ipvs(IpvsCmd.GET_CONFIG, []);
}

export function encodeGetInfo(): Buffer {
  return ipvs(IpvsCmd.GET_INFO, []);
}

/**
 * A request of `bytes` payload bytes that IPVS refuses with EOPNOTSUPP before reading its body:
 * command 0 (IPVS_CMD_UNSPEC) has no handler, and genetlink looks the command up before it parses
 * any attribute (genl_family_rcv_msg, net/netlink/genetlink.c). One attribute of type 0 fills it.
 */
export function encodeRefusedCommand(bytes: number): Buffer {
  return encodeGenl(0, IPVS_GENL_VERSION, [encodeAttr(0, Buffer.alloc(Math.max(0, bytes - 8)))]);
}

export function encodeFlush(): Buffer {
  return ipvs(IpvsCmd.FLUSH, []);
}

/** Zero the counters of one service, or of everything without an argument. */
export function encodeZero(vs?: IpvsServiceSpec): Buffer {
  return ipvs(IpvsCmd.ZERO, vs ? [serviceNest(vs, false)] : []);
}

// ---------------------------------------------------------------------------------------------
// Decoders

export function decodeStats(attrs: AttrMap, stats64Type: number, statsType: number): IpvsStats {
  // STATS64 (4.1+) has 64-bit counters everywhere; STATS truncates packets and conns to 32 bits.
  const nest = attrs.get(stats64Type) ?? attrs.get(statsType);
  if (!nest) return ZERO_STATS;
  const s = parseAttrs(nest);
  return {
    conns: readCounter(s.get(StatsAttr.CONNS)),
    inpkts: readCounter(s.get(StatsAttr.INPKTS)),
    outpkts: readCounter(s.get(StatsAttr.OUTPKTS)),
    inbytes: readCounter(s.get(StatsAttr.INBYTES)),
    outbytes: readCounter(s.get(StatsAttr.OUTBYTES)),
    cps: readCounter(s.get(StatsAttr.CPS)),
    inpps: readCounter(s.get(StatsAttr.INPPS)),
    outpps: readCounter(s.get(StatsAttr.OUTPPS)),
    inbps: readCounter(s.get(StatsAttr.INBPS)),
    outbps: readCounter(s.get(StatsAttr.OUTBPS)),
  };
}

function u32Attr(attrs: AttrMap, type: number): number {
  const b = attrs.get(type);
  return b && b.length >= 4 ? readU32(b) : 0;
}

function u16Attr(attrs: AttrMap, type: number): number | undefined {
  const b = attrs.get(type);
  return b && b.length >= 2 ? readU16(b) : undefined;
}

function decodeAddress(b: Buffer | undefined, family: IpFamily, what: string): string {
  const n = family === 'IPv4' ? 4 : 16;
  // Replies carry the whole 16-byte nf_inet_addr; IPv4 is its first 4 bytes.
  if (!b || b.length < n) throw protocolError(`${what} address missing or short`);
  return formatIp({ family, bytes: new Uint8Array(b.subarray(0, n)) });
}

/**
 * Decodes the SERVICE nest of a NEW_SERVICE reply/dump entry (the genl payload). Returns
 * undefined for services kube-ipvs cannot represent (unknown family or protocol) — they are not
 * ours, so skipping them keeps them untouched.
 */
export function decodeService(payload: Buffer): ObservedVirtualServer | undefined {
  return decodeServiceAttrs(serviceNestAttrs(payload));
}

/** decodeService without the counters. */
export function decodeServiceSetup(payload: Buffer): ObservedVirtualServerSetup | undefined {
  return decodeServiceSetupAttrs(serviceNestAttrs(payload));
}

/** The attributes of the SERVICE nest of a NEW_SERVICE reply or dump entry (the genl payload). */
function serviceNestAttrs(payload: Buffer): AttrMap {
  const { attrs } = parseGenl(payload);
  const nest = attrs.get(CmdAttr.SERVICE);
  if (!nest) throw protocolError('service reply without a SERVICE attribute');
  return parseAttrs(nest);
}

export function decodeServiceAttrs(s: AttrMap): ObservedVirtualServer | undefined {
  const setup = decodeServiceSetupAttrs(s);
  return setup && { ...setup, stats: decodeStats(s, SvcAttr.STATS64, SvcAttr.STATS) };
}

/** A SERVICE nest's virtual server without its counters (undefined as decodeService). */
export function decodeServiceSetupAttrs(s: AttrMap): ObservedVirtualServerSetup | undefined {
  const family = familyOfAf(u16Attr(s, SvcAttr.AF) ?? 0);
  if (!family) return undefined;
  const flagsBuf = s.get(SvcAttr.FLAGS);
  const flags = flagsBuf && flagsBuf.length >= 4 ? readU32(flagsBuf) & ~VsFlag.HASHED : 0;
  const netmaskBuf = s.get(SvcAttr.NETMASK);
  let netmask = defaultNetmask(family);
  if (netmaskBuf && netmaskBuf.length >= 4) netmask = family === 'IPv4' ? netmaskBuf.readUInt32BE(0) : readU32(netmaskBuf);
  const sched = s.get(SvcAttr.SCHED_NAME);
  const pe = s.get(SvcAttr.PE_NAME);
  const peName = pe ? readString(pe) : '';
  const common = {
    family,
    scheduler: sched ? readString(sched) : '',
    flags: flags >>> 0,
    timeout: u32Attr(s, SvcAttr.TIMEOUT),
    netmask,
    ...(peName ? { peName } : {}),
  };
  const fwmark = u32Attr(s, SvcAttr.FWMARK);
  if (fwmark !== 0) return { ...common, protocol: 'TCP', address: '', port: 0, fwmark };
  const protocol = PROTO_NAMES.get(u16Attr(s, SvcAttr.PROTOCOL) ?? 0);
  if (!protocol) return undefined;
  const port = s.get(SvcAttr.PORT);
  return {
    ...common,
    protocol,
    address: decodeAddress(s.get(SvcAttr.ADDR), family, 'service'),
    port: port && port.length >= 2 ? port.readUInt16BE(0) : 0,
  };
}

/**
 * Where a NEW_SERVICE dump entry (the genl payload) says which virtual server it is and how it is
 * set up: from the SERVICE nest's start to its first counter attribute. The kernel puts STATS and
 * STATS64 after every other attribute (ip_vs_genl_fill_service), so two entries whose ranges hold
 * the same bytes decode to the same virtual server. Undefined when the entry is not laid out so.
 */
export function serviceSetupRange(payload: Buffer): { readonly from: number; readonly to: number } | undefined {
  let nest: { from: number; to: number } | undefined;
  eachPayloadAttr(payload, 4, payload.length, (type, from, to) => {
    if (type === CmdAttr.SERVICE) nest = { from, to };
  });
  if (!nest) return undefined;
  let statsAt: number | undefined;
  let afterStats = false;
  eachPayloadAttr(payload, nest.from, nest.to, (type, from) => {
    const counters = type === SvcAttr.STATS || type === SvcAttr.STATS64;
    if (counters) statsAt ??= from - 4;
    else if (statsAt !== undefined) afterStats = true;
  });
  if (afterStats) return undefined;
  return { from: nest.from, to: statsAt ?? nest.to };
}

/** Decodes a NEW_DEST dump entry. `serviceFamily` stands in when the kernel omits ADDR_FAMILY (<3.18). */
export function decodeDest(payload: Buffer, serviceFamily: IpFamily): ObservedRealServer {
  const { attrs } = parseGenl(payload);
  const nest = attrs.get(CmdAttr.DEST);
  if (!nest) throw protocolError('destination reply without a DEST attribute');
  return decodeDestAttrs(parseAttrs(nest), serviceFamily);
}

export function decodeDestAttrs(d: AttrMap, serviceFamily: IpFamily): ObservedRealServer {
  const afAttr = u16Attr(d, DestAttr.ADDR_FAMILY);
  const family = (afAttr !== undefined ? familyOfAf(afAttr) : undefined) ?? serviceFamily;
  const port = d.get(DestAttr.PORT);
  const weight = d.get(DestAttr.WEIGHT);
  const fwd = FORWARD_NAMES[u32Attr(d, DestAttr.FWD_METHOD) & 0x7] ?? 'masq';
  const tunType = d.get(DestAttr.TUN_TYPE);
  const tunPort = d.get(DestAttr.TUN_PORT);
  const tunFlags = u16Attr(d, DestAttr.TUN_FLAGS);
  const tunnel =
    fwd === 'tunnel'
      ? {
          ...(tunType && tunType.length >= 1 ? { tunnelType: TUNNEL_NAMES[tunType[0] ?? 0] ?? 'ipip' } : {}),
          ...(tunPort && tunPort.length >= 2 ? { tunnelPort: tunPort.readUInt16BE(0) } : {}),
          ...(tunFlags !== undefined ? { tunnelFlags: tunFlags } : {}),
        }
      : {};
  return {
    address: decodeAddress(d.get(DestAttr.ADDR), family, 'destination'),
    port: port && port.length >= 2 ? port.readUInt16BE(0) : 0,
    weight: weight && weight.length >= 4 ? readS32(weight) : 0,
    forward: fwd,
    family,
    upperThreshold: u32Attr(d, DestAttr.U_THRESH),
    lowerThreshold: u32Attr(d, DestAttr.L_THRESH),
    activeConns: u32Attr(d, DestAttr.ACTIVE_CONNS),
    inactiveConns: u32Attr(d, DestAttr.INACT_CONNS),
    persistConns: u32Attr(d, DestAttr.PERSIST_CONNS),
    stats: decodeStats(d, DestAttr.STATS64, DestAttr.STATS),
    ...tunnel,
  };
}

/** GET_CONFIG reply (cmd SET_CONFIG). */
export function decodeTimeouts(payload: Buffer): IpvsTimeouts {
  const { attrs } = parseGenl(payload);
  return {
    tcp: u32Attr(attrs, CmdAttr.TIMEOUT_TCP),
    tcpFin: u32Attr(attrs, CmdAttr.TIMEOUT_TCP_FIN),
    udp: u32Attr(attrs, CmdAttr.TIMEOUT_UDP),
  };
}

/** GET_INFO reply (cmd SET_INFO). */
export function decodeInfo(payload: Buffer): IpvsInfo {
  const { attrs } = parseGenl(payload);
  const version = u32Attr(attrs, InfoAttr.VERSION);
  return {
    version,
    versionText: `${(version >> 16) & 0xff}.${(version >> 8) & 0xff}.${version & 0xff}`,
    connTableSize: u32Attr(attrs, InfoAttr.CONN_TAB_SIZE),
  };
}
