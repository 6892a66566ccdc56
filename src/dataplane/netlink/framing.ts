// Netlink framing shared by the IPVS (generic netlink) and ipset (nfnetlink) speakers: nlmsghdr
// and attribute layout, host-order integers, the errno of ERROR/DONE. Pure. Callers pass the
// error a malformed input becomes, so each subsystem keeps its own error class and code.
import { endianness } from 'node:os';

export const NlMsgType = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;

export const NlmF = {
  REQUEST: 0x01,
  MULTI: 0x02,
  ACK: 0x04,
  ECHO: 0x08,
  DUMP_INTR: 0x10,
  DUMP_FILTERED: 0x20,
  DUMP: 0x300,
  /** On NEW requests; the same bit as DUMP's NLM_F_MATCH. */
  EXCL: 0x200,
} as const;

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0x3fff;
const NLMSG_HDRLEN = 16;

export interface NlMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  readonly payload: Buffer;
}

/** Turns a description of bad input ("attribute length 2 at offset 8") into the caller's error. */
export type FramingError = (detail: string) => Error;

// ---------------------------------------------------------------------------------------------
// Integers: netlink is host order unless an attribute carries NLA_F_NET_BYTEORDER.

export const LE = endianness() === 'LE';

export function readU16(b: Buffer, off = 0): number {
  return LE ? b.readUInt16LE(off) : b.readUInt16BE(off);
}

export function readU32(b: Buffer, off = 0): number {
  return LE ? b.readUInt32LE(off) : b.readUInt32BE(off);
}

export function readS32(b: Buffer, off = 0): number {
  return LE ? b.readInt32LE(off) : b.readInt32BE(off);
}

export function align4(n: number): number {
  return (n + 3) & ~3;
}

// ---------------------------------------------------------------------------------------------
// Attributes

/** One attribute: 4-byte header, payload, zero padding to 4 (nla_len excludes the padding). */
export function encodeAttr(type: number, payload: Uint8Array, tooLong: FramingError): Buffer {
  const len = 4 + payload.length;
  if (len > 0xffff) throw tooLong(`attribute ${type & NLA_TYPE_MASK} of ${payload.length} bytes exceeds the u16 length`);
  const out = Buffer.alloc(align4(len));
  if (LE) {
    out.writeUInt16LE(len, 0);
    out.writeUInt16LE(type, 2);
  } else {
    out.writeUInt16BE(len, 0);
    out.writeUInt16BE(type, 2);
  }
  out.set(payload, 4);
  return out;
}

/** Kernels refuse (ipset) or may one day refuse nested attributes without NLA_F_NESTED. */
export function encodeNested(type: number, children: readonly Buffer[], tooLong: FramingError): Buffer {
  return encodeAttr(type | NLA_F_NESTED, children.length === 1 && children[0] ? children[0] : Buffer.concat(children), tooLong);
}

/** Calls fn for each attribute in buf[start, end): type without flags, payload bounds. */
export function eachAttr(buf: Buffer, start: number, end: number, fn: (type: number, from: number, to: number) => void, malformed: FramingError): void {
  let off = start;
  while (off + 4 <= end) {
    const len = readU16(buf, off);
    if (len < 4 || off + len > end) throw malformed(`attribute length ${len} at offset ${off}`);
    fn(readU16(buf, off + 2) & NLA_TYPE_MASK, off + 4, off + len);
    off += align4(len);
  }
}

/** Attributes by type (flags masked off; a repeated type keeps the last, as nla_parse does), as payload views. */
export function parseAttrs(buf: Buffer, malformed: FramingError): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  eachAttr(buf, 0, buf.length, (type, from, to) => out.set(type, buf.subarray(from, to)), malformed);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Messages

/** Bytes a message with this payload takes in a datagram. */
export function nlMessageSize(payloadLength: number): number {
  return align4(NLMSG_HDRLEN + payloadLength);
}

/** nlmsghdr + payload, padded to 4 so messages can share one datagram. */
export function encodeNlMessage(m: NlMessage): Buffer {
  const len = NLMSG_HDRLEN + m.payload.length;
  const out = Buffer.alloc(align4(len));
  if (LE) {
    out.writeUInt32LE(len, 0);
    out.writeUInt16LE(m.type, 4);
    out.writeUInt16LE(m.flags, 6);
    out.writeUInt32LE(m.seq >>> 0, 8);
    out.writeUInt32LE(m.pid >>> 0, 12);
  } else {
    out.writeUInt32BE(len, 0);
    out.writeUInt16BE(m.type, 4);
    out.writeUInt16BE(m.flags, 6);
    out.writeUInt32BE(m.seq >>> 0, 8);
    out.writeUInt32BE(m.pid >>> 0, 12);
  }
  out.set(m.payload, NLMSG_HDRLEN);
  return out;
}

export function parseNlMessages(buf: Buffer, malformed: FramingError): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = readU32(buf, off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) throw malformed(`message length ${len} at offset ${off}`);
    out.push({
      type: readU16(buf, off + 4),
      flags: readU16(buf, off + 6),
      seq: readU32(buf, off + 8),
      pid: readU32(buf, off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bound to one subsystem's errors

export interface FramingErrors {
  /** What a malformed message or attribute from the kernel becomes. */
  readonly malformed: FramingError;
  /** What an attribute over the u16 nla_len becomes. */
  readonly tooLong: FramingError;
}

export interface BoundFraming {
  encodeAttr(type: number, payload: Uint8Array): Buffer;
  encodeNested(type: number, children: readonly Buffer[]): Buffer;
  eachAttr(buf: Buffer, start: number, end: number, fn: (type: number, from: number, to: number) => void): void;
  parseAttrs(buf: Buffer): Map<number, Buffer>;
  parseNlMessages(buf: Buffer): NlMessage[];
}

/** The functions above that can fail, throwing a subsystem's own errors. */
export function framingWith(errors: FramingErrors): BoundFraming {
  return {
    encodeAttr: (type, payload) => encodeAttr(type, payload, errors.tooLong),
    encodeNested: (type, children) => encodeNested(type, children, errors.tooLong),
    eachAttr: (buf, start, end, fn) => eachAttr(buf, start, end, fn, errors.malformed),
    parseAttrs: (buf) => parseAttrs(buf, errors.malformed),
    parseNlMessages: (buf) => parseNlMessages(buf, errors.malformed),
  };
}

/** The errno of an NLMSG_ERROR or NLMSG_DONE payload (an s32, 0 or −errno), returned positive. */
export function parseNlError(payload: Buffer): number {
  if (payload.length < 4) return 0;
  const e = readS32(payload, 0);
  return e < 0 ? -e : e;
}
