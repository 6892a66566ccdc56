// ipset's netlink protocol (NETLINK_NETFILTER, subsystem IPSET): pure encode/decode of requests
// and replies, and the mapping between entry text (as `ipset save` prints it) and element
// attributes. Wire facts: Linux include/uapi/linux/netfilter/ipset/ip_set.h and
// net/netfilter/ipset/ip_set_core.c, and what kernel 6.18 answered (the byte fixtures
// in test/dataplane/ipset/netlink-codec.test.ts were captured from it).
import type { IpsetFamily, IpsetSpec, IpsetState } from '../../model/kernel.js';
import type { IpsetType } from '../../model/names.js';
import { formatIp, hostPrefix, parseIp } from '../../model/ip.js';
import { DataplaneError } from '../errors.js';
import { LE, NLA_F_NESTED, NLA_F_NET_BYTEORDER, align4, framingWith, parseNlError, readU32 } from '../netlink/framing.js';
import { parseBitmapRange } from './restore-script.js';
import { IPSET_DEFAULTS, isIpsetType, normalizeIpsetEntry } from '../../model/text/ipset.js';

// ---------------------------------------------------------------------------------------------
// Constants

export const NFNL_SUBSYS_IPSET = 6;
/** What we speak; kernels since 3.x answer 7 with a minimum of 6, older ones only 6. */
export const IPSET_PROTOCOL = 7;
export const IPSET_PROTOCOL_MIN = 6;

// nlmsghdr framing is shared with IPVS (../netlink/framing.ts); re-exported for this codec's users.
export { NlMsgType, NlmF, encodeNlMessage } from '../netlink/framing.js';
export type { NlMessage } from '../netlink/framing.js';

export const NfProto = { UNSPEC: 0, IPV4: 2, IPV6: 10 } as const;

export const IpsetCmd = {
  PROTOCOL: 1,
  CREATE: 2,
  DESTROY: 3,
  FLUSH: 4,
  LIST: 7,
  SAVE: 8,
  ADD: 9,
  DEL: 10,
  HEADER: 12,
  TYPE: 13,
} as const;

/** Command-level attributes. */
export const IpsetAttr = {
  PROTOCOL: 1,
  SETNAME: 2,
  TYPENAME: 3,
  REVISION: 4,
  FAMILY: 5,
  FLAGS: 6,
  DATA: 7,
  ADT: 8,
  LINENO: 9,
  /** PROTOCOL_MIN in PROTOCOL replies, REVISION_MIN in TYPE replies. */
  PROTOCOL_MIN: 10,
  INDEX: 11,
} as const;

/** Attributes inside DATA. Create data and element data share numbers below 17 and differ above. */
export const DataAttr = {
  IP: 1,
  IP_TO: 2,
  CIDR: 3,
  PORT: 4,
  PORT_TO: 5,
  TIMEOUT: 6,
  PROTO: 7,
  CADT_FLAGS: 8,
  LINENO: 9,
  // create data (set headers)
  INITVAL: 17,
  HASHSIZE: 18,
  MAXELEM: 19,
  BUCKETSIZE: 21,
  ELEMENTS: 24,
  REFERENCES: 25,
  MEMSIZE: 26,
  // element data
  IP2: 20,
  CIDR2: 21,
  BYTES: 24,
  PACKETS: 25,
  COMMENT: 26,
} as const;

const IpaddrAttr = { IPV4: 1, IPV6: 2 } as const;

/** IPSET_ATTR_CADT_FLAGS bits: per element (nomatch) and per set (extensions it was created with). */
export const CadtFlag = { NOMATCH: 1 << 2, WITH_COUNTERS: 1 << 3, WITH_COMMENT: 1 << 4, WITH_FORCEADD: 1 << 5, WITH_SKBINFO: 1 << 6 } as const;

/** ipset's private errno values (negated in NLMSG_ERROR like any errno). */
export const IpsetErrno = {
  PROTOCOL: 4097,
  FIND_TYPE: 4098,
  MAX_SETS: 4099,
  BUSY: 4100,
  EXIST_SETNAME2: 4101,
  TYPE_MISMATCH: 4102,
  EXIST: 4103,
  INVALID_CIDR: 4104,
  INVALID_NETMASK: 4105,
  INVALID_FAMILY: 4106,
  TIMEOUT: 4107,
  REFERENCED: 4108,
  IPADDR_IPV4: 4109,
  IPADDR_IPV6: 4110,
  /** Type-specific codes start here and mean different things per type family (hash, bitmap). */
  TYPE_SPECIFIC: 4352,
} as const;

/**
 * The revision ipset v7.17 creates for each type (`ipset list` on kernel 6.18), used when the
 * kernel offers it so the sets we create stay readable by the ipset tool of that era.
 */
export const PREFERRED_REVISION: Readonly<Record<IpsetType, number>> = {
  'hash:ip': 6,
  'hash:ip,port': 7,
  'hash:ip,port,ip': 6,
  'hash:ip,port,net': 8,
  'bitmap:port': 3,
};

/** Elements per ADT attribute are bounded by its u16 nla_len; stay well below it. */
export const MAX_ADT_BYTES = 60_000;

/** Protocols whose elements carry a port, by number (the names ipset prints). */
const PROTO_NAMES: ReadonlyMap<number, string> = new Map([
  [6, 'tcp'],
  [17, 'udp'],
  [132, 'sctp'],
  [136, 'udplite'],
]);
const PROTO_NUMBERS: ReadonlyMap<string, number> = new Map([...PROTO_NAMES].map(([n, s]) => [s, n]));

// ---------------------------------------------------------------------------------------------
// Types

/** One element as the kernel holds it; addresses as canonical text. */
export interface IpsetElement {
  readonly ip?: string;
  readonly proto?: number;
  readonly port?: number;
  readonly ip2?: string;
  /** Prefix length of ip2 (hash:ip,port,net). */
  readonly cidr2?: number;
  readonly nomatch?: boolean;
  readonly timeout?: number;
  readonly comment?: string;
}

/** A set's header as LIST/SAVE dumps it (the first message of each set). */
export interface IpsetHeader {
  readonly name: string;
  readonly typeName: string;
  /** NFPROTO_*: 2 or 10 for hash types, 0 for bitmap:port. */
  readonly family: number;
  readonly revision: number;
  readonly hashSize?: number;
  readonly maxElem?: number;
  readonly portFrom?: number;
  readonly portTo?: number;
  /** Default timeout, when the set was created with timeout support. */
  readonly timeout?: number;
  readonly references?: number;
  readonly elements?: number;
  readonly memSize?: number;
  /** Created with the comment extension (`create ... comment`). */
  readonly comment: boolean;
  readonly counters: boolean;
  readonly skbinfo: boolean;
  readonly forceadd: boolean;
}

/** One LIST/SAVE dump message: every message names its set; the first also has the header. */
export interface IpsetListMessage {
  readonly name: string;
  readonly header?: IpsetHeader;
  readonly elements: IpsetElement[];
}

export interface IpsetProtocolReply {
  readonly protocol: number;
  /** The oldest protocol the kernel still accepts (absent before protocol 7: then = protocol). */
  readonly protocolMin: number;
}

export interface IpsetTypeReply {
  readonly typeName: string;
  readonly family: number;
  readonly revision: number;
  readonly revisionMin: number;
}

/** HEADER reply: enough to know a set's type and family (not its create data). */
export interface IpsetHeaderReply {
  readonly name: string;
  readonly typeName: string;
  readonly family: number;
  readonly revision: number;
}

export interface IpsetNlError {
  /** Positive errno (ipset's own are ≥ 4096); 0 for an ACK. */
  readonly errno: number;
  /** The failed element's LINENO, when the kernel rewrote it into its copy of our request. */
  readonly lineno?: number;
}

// ---------------------------------------------------------------------------------------------
// Errors: framing (../netlink/framing.ts) reports bad input through these.

function parseError(detail: string): DataplaneError {
  return new DataplaneError('PARSE', 'ipset', 'decode', '', `malformed netlink reply: ${detail}`);
}

function encodeError(object: string, detail: string): DataplaneError {
  return new DataplaneError('INVALID', 'ipset', 'encode', object, detail);
}

/**
 * Netlink framing throwing PARSE (malformed reply) and INVALID (attribute over the u16 length).
 * encodeNested sets NLA_F_NESTED, without which the kernel refuses a nest (IPSET_ERR_PROTOCOL).
 */
const wire = framingWith({ malformed: parseError, tooLong: (detail) => encodeError('', detail) });
export const { encodeAttr, encodeNested, parseNlMessages } = wire;
/** Attributes by type (last wins, as nla_parse does), as payload views. */
const { eachAttr, parseAttrs: attrMap } = wire;

// ---------------------------------------------------------------------------------------------
// Attribute encoding

function attrU8(type: number, v: number): Buffer {
  return encodeAttr(type, Uint8Array.of(v));
}

/** ipset reads u16/u32 data attributes big-endian and requires the flag saying so. */
function attrBe16(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return encodeAttr(type | NLA_F_NET_BYTEORDER, b);
}

function attrBe32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return encodeAttr(type | NLA_F_NET_BYTEORDER, b);
}

/** LINENO is a plain u32: the kernel only copies it back, never interprets it. */
function attrU32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(v >>> 0);
  else b.writeUInt32BE(v >>> 0);
  return encodeAttr(type, b);
}

function attrString(type: number, s: string): Buffer {
  return encodeAttr(type, Buffer.from(`${s}\0`, 'utf8'));
}

// ---------------------------------------------------------------------------------------------
// nfnetlink: message type and nfgenmsg

export function ipsetMsgType(cmd: number): number {
  return (NFNL_SUBSYS_IPSET << 8) | cmd;
}

/** The attributes after the 4-byte nfgenmsg of an ipset message payload. */
function ipsetAttrs(payload: Buffer): Map<number, Buffer> {
  if (payload.length < 4) throw parseError('short nfgenmsg');
  return attrMap(payload.subarray(4));
}

function getString(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

function getU8(b: Buffer | undefined): number | undefined {
  return b && b.length >= 1 ? (b[0] ?? 0) : undefined;
}

function getBe16(b: Buffer | undefined): number | undefined {
  return b && b.length >= 2 ? b.readUInt16BE(0) : undefined;
}

function getBe32(b: Buffer | undefined): number | undefined {
  return b && b.length >= 4 ? b.readUInt32BE(0) : undefined;
}

/**
 * An NLMSG_ERROR payload: s32 −errno, our nlmsghdr, and (uncapped) our payload. For a failed
 * ADT bulk request the kernel rewrites the command-level LINENO of that copy to the failed
 * element's, so the failed element is known.
 */
export function parseIpsetNlError(payload: Buffer): IpsetNlError {
  const errno = parseNlError(payload);
  if (errno === 0 || payload.length < 4 + 16 + 4) return { errno };
  const len = Math.min(readU32(payload, 4), payload.length - 4);
  let lineno: number | undefined;
  try {
    const b = payload.subarray(4 + 16 + 4, 4 + len);
    eachAttr(b, 0, b.length, (type, from, to) => {
      if (type === IpsetAttr.LINENO && to - from >= 4) lineno = readU32(b, from);
    });
  } catch {
    // A copy we cannot read still has its errno.
  }
  return lineno === undefined ? { errno } : { errno, lineno };
}

// ---------------------------------------------------------------------------------------------
// Requests. Every one starts with nfgenmsg and carries IPSET_ATTR_PROTOCOL.

function request(protocol: number, family: number, attrs: readonly Buffer[]): Buffer {
  return Buffer.concat([Uint8Array.of(family, 0, 0, 0), attrU8(IpsetAttr.PROTOCOL, protocol), ...attrs]);
}

/** A set name for a request that would act on every set without one (FLUSH, DESTROY, ...). */
function nameAttr(name: string): Buffer {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > 31 || name.includes('\0')) throw encodeError(name, `invalid set name ${JSON.stringify(name)}`);
  return attrString(IpsetAttr.SETNAME, name);
}

export function encodeProtocolRequest(protocol: number): Buffer {
  return request(protocol, NfProto.UNSPEC, []);
}

export function encodeTypeRequest(protocol: number, typeName: string, family: number): Buffer {
  return request(protocol, family, [attrString(IpsetAttr.TYPENAME, typeName), attrU8(IpsetAttr.FAMILY, family)]);
}

export function encodeHeaderRequest(protocol: number, name: string): Buffer {
  return request(protocol, NfProto.UNSPEC, [nameAttr(name)]);
}

/** The NFPROTO a spec is created with: hash types per family, bitmap:port for any. */
export function specFamily(spec: IpsetSpec): number {
  if (spec.type === 'bitmap:port') return NfProto.UNSPEC;
  return spec.family === 'inet6' ? NfProto.IPV6 : NfProto.IPV4;
}

export function encodeCreate(protocol: number, spec: IpsetSpec, revision: number): Buffer {
  const family = specFamily(spec);
  let data: Buffer[];
  if (spec.type === 'bitmap:port') {
    const range = parseBitmapRange(spec.range);
    if (!range) throw encodeError(spec.name, `invalid bitmap:port range ${JSON.stringify(spec.range)}`);
    data = [attrBe16(DataAttr.PORT, range.from), attrBe16(DataAttr.PORT_TO, range.to)];
  } else {
    data = [attrBe32(DataAttr.HASHSIZE, spec.hashSize), attrBe32(DataAttr.MAXELEM, spec.maxElem)];
  }
  return request(protocol, family, [
    nameAttr(spec.name),
    attrString(IpsetAttr.TYPENAME, spec.type),
    attrU8(IpsetAttr.REVISION, revision),
    attrU8(IpsetAttr.FAMILY, family),
    encodeNested(IpsetAttr.DATA, data),
  ]);
}

export function encodeDestroy(protocol: number, name: string): Buffer {
  return request(protocol, NfProto.UNSPEC, [nameAttr(name)]);
}

export function encodeFlush(protocol: number, name: string): Buffer {
  return request(protocol, NfProto.UNSPEC, [nameAttr(name)]);
}

/** SAVE (a dump): of one set, or of all sets without a name. */
export function encodeSave(protocol: number, name?: string): Buffer {
  return request(protocol, NfProto.UNSPEC, name === undefined ? [] : [nameAttr(name)]);
}

/** Writes attributes into one preallocated buffer: an element costs one allocation, not ten. */
class AttrWriter {
  private off = 0;
  constructor(readonly buf: Buffer) {}

  private head(type: number, payloadLen: number): number {
    const at = this.off;
    if (LE) {
      this.buf.writeUInt16LE(4 + payloadLen, at);
      this.buf.writeUInt16LE(type, at + 2);
    } else {
      this.buf.writeUInt16BE(4 + payloadLen, at);
      this.buf.writeUInt16BE(type, at + 2);
    }
    this.off += align4(4 + payloadLen);
    return at + 4;
  }

  nest(type: number, payloadLen: number): void {
    this.head(type | NLA_F_NESTED, payloadLen);
    // Children follow right after the nest header.
    this.off -= align4(4 + payloadLen) - 4;
  }

  u8(type: number, v: number): void {
    this.buf[this.head(type, 1)] = v;
  }

  be16(type: number, v: number): void {
    this.buf.writeUInt16BE(v, this.head(type | NLA_F_NET_BYTEORDER, 2));
  }

  be32(type: number, v: number): void {
    this.buf.writeUInt32BE(v >>> 0, this.head(type | NLA_F_NET_BYTEORDER, 4));
  }

  u32(type: number, v: number): void {
    const at = this.head(type, 4);
    if (LE) this.buf.writeUInt32LE(v >>> 0, at);
    else this.buf.writeUInt32BE(v >>> 0, at);
  }

  /** IP/IP2: a nest of one address, NET_BYTEORDER on both families (6.18 refuses IPv6 without). */
  ip(type: number, bytes: Uint8Array): void {
    this.nest(type, 4 + bytes.length);
    this.buf.set(bytes, this.head((bytes.length === 4 ? IpaddrAttr.IPV4 : IpaddrAttr.IPV6) | NLA_F_NET_BYTEORDER, bytes.length));
  }
}

function addrBytes(text: string | undefined, what: string, object: string): Uint8Array {
  const ip = text === undefined ? undefined : parseIp(text);
  if (!ip) throw encodeError(object, `missing or invalid ${what} ${JSON.stringify(text ?? '')}`);
  return ip.bytes;
}

/** One element's DATA attribute; `lineno` (≥ 1) lets the kernel name it when it fails in a bulk. */
export function encodeElement(type: IpsetType, el: IpsetElement, lineno: number): Buffer {
  const object = `${type} element`;
  const hasIp = type !== 'bitmap:port';
  const hasPort = type !== 'hash:ip';
  // bitmap:port refuses PROTO (IPSET_ERR_PROTOCOL): it stores ports only.
  const hasProto = hasPort && hasIp;
  const hasIp2 = type === 'hash:ip,port,ip' || type === 'hash:ip,port,net';
  const hasCidr2 = type === 'hash:ip,port,net' && el.cidr2 !== undefined;
  const ip = hasIp ? addrBytes(el.ip, 'address', object) : undefined;
  const ip2 = hasIp2 ? addrBytes(el.ip2, 'second address', object) : undefined;
  if (hasPort && el.port === undefined) throw encodeError(object, 'missing port');
  if (hasProto && el.proto === undefined) throw encodeError(object, 'missing protocol');
  const len =
    4 +
    (ip ? 8 + ip.length : 0) +
    (hasPort ? 8 : 0) +
    (hasProto ? 8 : 0) +
    (ip2 ? 8 + ip2.length : 0) +
    (hasCidr2 ? 8 : 0) +
    (el.nomatch ? 8 : 0) +
    (lineno > 0 ? 8 : 0);
  const w = new AttrWriter(Buffer.alloc(len));
  w.nest(IpsetAttr.DATA, len - 4);
  if (ip) w.ip(DataAttr.IP, ip);
  if (hasPort) w.be16(DataAttr.PORT, el.port ?? 0);
  if (hasProto) w.u8(DataAttr.PROTO, el.proto ?? 0);
  if (ip2) w.ip(DataAttr.IP2, ip2);
  if (hasCidr2) w.u8(DataAttr.CIDR2, el.cidr2 ?? 0);
  if (el.nomatch) w.be32(DataAttr.CADT_FLAGS, CadtFlag.NOMATCH);
  if (lineno > 0) w.u32(DataAttr.LINENO, lineno);
  return w.buf;
}

/**
 * ADD or DEL of many elements in one message (IPSET_ATTR_ADT). The kernel applies them in order
 * and stops at the first failure; the command-level LINENO (required with ADT) is sent as 0 so a
 * rewritten one is told apart from ours.
 */
export function encodeAdt(protocol: number, cmd: typeof IpsetCmd.ADD | typeof IpsetCmd.DEL, name: string, elements: readonly Buffer[]): Buffer {
  return request(protocol, NfProto.UNSPEC, [nameAttr(name), attrU32(IpsetAttr.LINENO, 0), encodeNested(IpsetAttr.ADT, elements)]);
}

// ---------------------------------------------------------------------------------------------
// Replies

export function decodeProtocolReply(payload: Buffer): IpsetProtocolReply {
  const a = ipsetAttrs(payload);
  const protocol = getU8(a.get(IpsetAttr.PROTOCOL));
  if (protocol === undefined) throw parseError('PROTOCOL reply without IPSET_ATTR_PROTOCOL');
  return { protocol, protocolMin: getU8(a.get(IpsetAttr.PROTOCOL_MIN)) ?? protocol };
}

export function decodeTypeReply(payload: Buffer): IpsetTypeReply {
  const a = ipsetAttrs(payload);
  const revision = getU8(a.get(IpsetAttr.REVISION));
  if (revision === undefined) throw parseError('TYPE reply without IPSET_ATTR_REVISION');
  return {
    typeName: getString(a.get(IpsetAttr.TYPENAME)) ?? '',
    family: getU8(a.get(IpsetAttr.FAMILY)) ?? 0,
    revision,
    revisionMin: getU8(a.get(IpsetAttr.PROTOCOL_MIN)) ?? revision,
  };
}

export function decodeHeaderReply(payload: Buffer): IpsetHeaderReply {
  const a = ipsetAttrs(payload);
  const name = getString(a.get(IpsetAttr.SETNAME));
  const typeName = getString(a.get(IpsetAttr.TYPENAME));
  if (name === undefined || typeName === undefined) throw parseError('HEADER reply without set name or type');
  return { name, typeName, family: getU8(a.get(IpsetAttr.FAMILY)) ?? 0, revision: getU8(a.get(IpsetAttr.REVISION)) ?? 0 };
}

function formatAddr(buf: Buffer, from: number, to: number): string | undefined {
  let out: string | undefined;
  eachAttr(buf, from, to, (type, a, b) => {
    if (type === IpaddrAttr.IPV4 && b - a === 4) out = `${buf[a]}.${buf[a + 1]}.${buf[a + 2]}.${buf[a + 3]}`;
    else if (type === IpaddrAttr.IPV6 && b - a === 16) out = formatIp({ family: 'IPv6', bytes: buf.subarray(a, b) });
  });
  return out;
}

/** One element DATA attribute (payload bounds within buf); extensions other than these are ignored. */
function decodeElement(buf: Buffer, from: number, to: number): IpsetElement {
  let ip: string | undefined;
  let ip2: string | undefined;
  let port: number | undefined;
  let proto: number | undefined;
  let cidr2: number | undefined;
  let flags = 0;
  let timeout: number | undefined;
  let comment: string | undefined;
  eachAttr(buf, from, to, (type, a, b) => {
    switch (type) {
      case DataAttr.IP:
        ip = formatAddr(buf, a, b);
        break;
      case DataAttr.IP2:
        ip2 = formatAddr(buf, a, b);
        break;
      case DataAttr.PORT:
        if (b - a >= 2) port = buf.readUInt16BE(a);
        break;
      case DataAttr.PROTO:
        if (b - a >= 1) proto = buf[a];
        break;
      case DataAttr.CIDR2:
        if (b - a >= 1) cidr2 = buf[a];
        break;
      case DataAttr.CADT_FLAGS:
        if (b - a >= 4) flags = buf.readUInt32BE(a);
        break;
      case DataAttr.TIMEOUT:
        if (b - a >= 4) timeout = buf.readUInt32BE(a);
        break;
      case DataAttr.COMMENT:
        comment = getString(buf.subarray(a, b));
        break;
    }
  });
  const el: { -readonly [K in keyof IpsetElement]: IpsetElement[K] } = {};
  if (ip !== undefined) el.ip = ip;
  if (proto !== undefined) el.proto = proto;
  if (port !== undefined) el.port = port;
  if (ip2 !== undefined) el.ip2 = ip2;
  if (cidr2 !== undefined) el.cidr2 = cidr2;
  if (flags & CadtFlag.NOMATCH) el.nomatch = true;
  if (timeout !== undefined) el.timeout = timeout;
  if (comment !== undefined) el.comment = comment;
  return el;
}

function decodeHeader(name: string, a: Map<number, Buffer>): IpsetHeader {
  const d = a.get(IpsetAttr.DATA);
  const data = d ? attrMap(d) : new Map<number, Buffer>();
  const cadt = getBe32(data.get(DataAttr.CADT_FLAGS)) ?? 0;
  const h: { -readonly [K in keyof IpsetHeader]: IpsetHeader[K] } = {
    name,
    typeName: getString(a.get(IpsetAttr.TYPENAME)) ?? '',
    family: getU8(a.get(IpsetAttr.FAMILY)) ?? 0,
    revision: getU8(a.get(IpsetAttr.REVISION)) ?? 0,
    comment: (cadt & CadtFlag.WITH_COMMENT) !== 0,
    counters: (cadt & CadtFlag.WITH_COUNTERS) !== 0,
    skbinfo: (cadt & CadtFlag.WITH_SKBINFO) !== 0,
    forceadd: (cadt & CadtFlag.WITH_FORCEADD) !== 0,
  };
  const set = <K extends keyof IpsetHeader>(k: K, v: IpsetHeader[K] | undefined): void => {
    if (v !== undefined) h[k] = v;
  };
  // Attribute numbers above 16 mean create data here (ELEMENTS, not BYTES).
  set('hashSize', getBe32(data.get(DataAttr.HASHSIZE)));
  set('maxElem', getBe32(data.get(DataAttr.MAXELEM)));
  set('portFrom', getBe16(data.get(DataAttr.PORT)));
  set('portTo', getBe16(data.get(DataAttr.PORT_TO)));
  set('timeout', getBe32(data.get(DataAttr.TIMEOUT)));
  set('references', getBe32(data.get(DataAttr.REFERENCES)));
  set('elements', getBe32(data.get(DataAttr.ELEMENTS)));
  set('memSize', getBe32(data.get(DataAttr.MEMSIZE)));
  return h;
}

/** One message of a LIST/SAVE dump. */
export function decodeListMessage(payload: Buffer): IpsetListMessage {
  if (payload.length < 4) throw parseError('short nfgenmsg');
  let adt: [number, number] | undefined;
  const top = new Map<number, Buffer>();
  eachAttr(payload, 4, payload.length, (type, from, to) => {
    if (type === IpsetAttr.ADT) adt = [from, to];
    else top.set(type, payload.subarray(from, to));
  });
  const name = getString(top.get(IpsetAttr.SETNAME));
  if (name === undefined) throw parseError('LIST message without a set name');
  const elements: IpsetElement[] = [];
  if (adt) {
    eachAttr(payload, adt[0], adt[1], (type, from, to) => {
      if (type === IpsetAttr.DATA) elements.push(decodeElement(payload, from, to));
    });
  }
  const header = top.has(IpsetAttr.TYPENAME) ? decodeHeader(name, top) : undefined;
  return header ? { name, header, elements } : { name, elements };
}

// ---------------------------------------------------------------------------------------------
// Entry text <-> elements

function familyOf(family: number): IpsetFamily | undefined {
  if (family === NfProto.IPV4) return 'inet';
  if (family === NfProto.IPV6) return 'inet6';
  return undefined;
}

/** The model's spec of a dumped header; undefined for set types the model does not have. */
export function headerSpec(h: IpsetHeader): IpsetSpec | undefined {
  if (!isIpsetType(h.typeName)) return undefined;
  if (h.typeName === 'bitmap:port') {
    if (h.portFrom === undefined || h.portTo === undefined) throw parseError(`set ${h.name}: bitmap:port header without its range`);
    return { ...IPSET_DEFAULTS, name: h.name, type: h.typeName, range: `${h.portFrom}-${h.portTo}` };
  }
  const family = familyOf(h.family);
  if (family === undefined) throw parseError(`set ${h.name}: ${h.typeName} with family ${h.family}`);
  return {
    name: h.name,
    type: h.typeName,
    family,
    hashSize: h.hashSize ?? IPSET_DEFAULTS.hashSize,
    maxElem: h.maxElem ?? IPSET_DEFAULTS.maxElem,
    range: IPSET_DEFAULTS.range,
  };
}

/**
 * The text `ipset save` prints for an element (less extensions such as timeout, comment and
 * nomatch, which the text parser drops too), or undefined when the model cannot hold it (icmp
 * "ports", other protocols, missing parts).
 */
export function elementText(type: IpsetType, el: IpsetElement): string | undefined {
  if (type === 'bitmap:port') return el.port === undefined ? undefined : String(el.port);
  if (el.ip === undefined) return undefined;
  if (type === 'hash:ip') return el.ip;
  const proto = el.proto === undefined ? undefined : PROTO_NAMES.get(el.proto);
  if (proto === undefined || el.port === undefined) return undefined;
  const head = `${el.ip},${proto}:${el.port}`;
  if (type === 'hash:ip,port') return head;
  if (el.ip2 === undefined) return undefined;
  if (type === 'hash:ip,port,ip') return `${head},${el.ip2}`;
  const host = hostPrefix(el.ip2.includes(':') ? 'IPv6' : 'IPv4');
  const cidr = el.cidr2 ?? host;
  // ipset prints a host net without its prefix.
  return cidr === host ? `${head},${el.ip2}` : `${head},${el.ip2}/${cidr}`;
}

/**
 * An entry as ipset accepts it ("10.96.0.10,TCP:53", "tcp:9", "10.1.1.5/24" in a net) → its
 * canonical text and element, or undefined when it is not one valid element of this type and
 * family (the same judgement as normalizeIpsetEntry, which the fake uses).
 */
export function entryElement(type: IpsetType, entry: string, family?: IpsetFamily): { readonly text: string; readonly element: IpsetElement } | undefined {
  const text = normalizeIpsetEntry(type, entry, type === 'bitmap:port' ? undefined : family);
  if (text === undefined) return undefined;
  if (type === 'bitmap:port') return { text, element: { port: Number(text) } };
  const [ip, pp, third] = text.split(',');
  if (ip === undefined) return undefined;
  if (type === 'hash:ip') return { text, element: { ip } };
  const colon = (pp ?? '').indexOf(':');
  const proto = PROTO_NUMBERS.get((pp ?? '').slice(0, colon));
  const port = Number((pp ?? '').slice(colon + 1));
  if (proto === undefined) return undefined;
  if (type === 'hash:ip,port') return { text, element: { ip, proto, port } };
  if (third === undefined) return undefined;
  const slash = third.indexOf('/');
  const ip2 = slash < 0 ? third : third.slice(0, slash);
  if (type === 'hash:ip,port,ip') return { text, element: { ip, proto, port, ip2 } };
  const cidr2 = slash < 0 ? hostPrefix(ip2.includes(':') ? 'IPv6' : 'IPv4') : Number(third.slice(slash + 1));
  return { text, element: { ip, proto, port, ip2, cidr2 } };
}

/** A dumped element the model cannot hold, in a set it observes. */
function unreadable(set: string, type: string, el: IpsetElement): DataplaneError {
  return new DataplaneError('PARSE', 'ipset', 'save', set, `cannot read ${type} element ${JSON.stringify(el)}`);
}

export interface CollectedSets {
  readonly sets: IpsetState[];
  /** Sets of types the model does not have (skipped with their elements, as the text parser does). */
  readonly skipped: { readonly name: string; readonly type: string }[];
}

/** Dump messages (possibly of many sets) → sets in dump order, entries as `ipset save` prints them. */
export function collectIpsetDump(messages: readonly IpsetListMessage[]): CollectedSets {
  const sets = new Map<string, { spec: IpsetSpec; entries: Set<string> }>();
  const skipped = new Map<string, string>();
  for (const m of messages) {
    if (m.header) {
      const spec = headerSpec(m.header);
      if (spec) sets.set(m.name, { spec, entries: sets.get(m.name)?.entries ?? new Set() });
      else skipped.set(m.name, m.header.typeName);
    }
    if (skipped.has(m.name)) continue;
    const set = sets.get(m.name);
    if (!set) throw parseError(`elements of set ${m.name} before its header`);
    for (const el of m.elements) {
      const text = elementText(set.spec.type, el);
      if (text === undefined) throw unreadable(m.name, set.spec.type, el);
      set.entries.add(text);
    }
  }
  return {
    sets: [...sets.values()].map((s) => ({ spec: s.spec, entries: s.entries as ReadonlySet<string> })),
    skipped: [...skipped].map(([name, type]) => ({ name, type })),
  };
}
