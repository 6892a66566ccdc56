// Links and addresses over rtnetlink (npm `netlink`). Requests go through the package's
// NetlinkSocket with checkError:false so replies keep their errno numbers: the package's own
// error path only gives a text like "Request rejected: EEXIST".
import { readFile } from 'node:fs/promises';
import { AttrStream, FlagsGet, FlagsNew, Flags, createRtNetlink, formatMessage, ifla, parseError, rt } from 'netlink';
import type { NetlinkMessage, RtNetlinkSocket } from 'netlink';
import { DataplaneError } from '../errors.js';
import type { DataplaneErrorCode } from '../errors.js';
import { formatIp, hostPrefix, parseIp } from '../../model/ip.js';
import type { ParsedIp } from '../../model/ip.js';
import type { IpFamily } from '../../model/types.js';
import type { InterfaceAddress, NetifBackend } from './backend.js';

const NLMSG_ERROR = 2;
/** A message type rtnetlink refuses (above RTM_MAX, which is 127 or less in every kernel so far). */
const REFUSED_RTM_TYPE = 0x3ff;
const AF_INET = 2;
const AF_INET6 = 10;
const IFNAMSIZ = 16;

// Linux errno values we branch on (stable kernel ABI).
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EACCES: 13,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ERANGE: 34,
  EOPNOTSUPP: 95,
  EADDRNOTAVAIL: 99,
} as const;

export interface NetifLink {
  readonly name: string;
  readonly index: number;
  /** IFLA_INFO_KIND ("dummy", "bridge", "veth", …); "" for links without one (lo, physical NICs). */
  readonly kind: string;
}

/** One bind or unbind of a batch. */
import type { NetifAddressOp, NetifOpResult } from './backend.js';
import { errorMessage } from '../../model/error-text.js';
import { eachAttr, readU32 } from '../netlink/framing.js';
import { largeDumpPayloadBytes } from '../netlink/requester.js';
export type { NetifAddressOp, NetifOpResult } from './backend.js';

export interface RealNetifOptions {
  /** Give up on a request when the kernel stays silent this long (default 10 s). */
  readonly timeoutMs?: number;
  /** Messages per batch datagram (default 256): bounds the acks queued on our receive buffer. */
  readonly batchSize?: number;
}

/** Same rule as the kernel's dev_valid_name(), so a bad name is INVALID before any request. */
export function validLinkName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length < IFNAMSIZ &&
    name !== '.' &&
    name !== '..' &&
    !/[/:\s]/.test(name)
  );
}

export function errnoCode(errno: number): DataplaneErrorCode {
  switch (errno) {
    case Errno.ENOENT:
    case Errno.ENODEV:
    case Errno.EADDRNOTAVAIL:
      return 'NOT_FOUND';
    case Errno.EEXIST:
      return 'EXISTS';
    case Errno.EINVAL:
    case Errno.ERANGE:
      return 'INVALID';
    case Errno.EOPNOTSUPP:
      return 'UNAVAILABLE';
    case Errno.EPERM:
    case Errno.EACCES:
      return 'PERMISSION';
    default:
      return 'FAILED';
  }
}

function errnoName(errno: number): string {
  const name = Object.entries(Errno).find(([, v]) => v === errno)?.[0];
  return name ?? `errno ${errno}`;
}

/** The `netlink` package rejects with Error("Request rejected: NAME"); recover the errno. */
export function errnoFromPackageError(e: unknown): number | undefined {
  if (!(e instanceof Error)) return undefined;
  const m = /^Request rejected: (-?\w+)$/.exec(e.message);
  if (!m) return undefined;
  // libuv names 95 ENOTSUP, the kernel headers EOPNOTSUPP.
  const name = m[1] === 'ENOTSUP' ? 'EOPNOTSUPP' : m[1];
  const known = (Errno as Record<string, number>)[name ?? ''];
  if (known !== undefined) return known;
  // Names Node does not know arrive as the negated number.
  return /^-?\d+$/.test(name ?? '') ? Math.abs(Number(name)) : undefined;
}

/** What the kernel says when it will not put an address on an interface at all. */
export const UNUSABLE_ADDRESS = 'EADDRNOTAVAIL: the kernel puts no unspecified (::), multicast or loopback (::1, off lo) IPv6 address on an interface';

function netifError(errno: number, op: string, object: string, detail?: string, opIndex?: number): DataplaneError {
  // On bind, EADDRNOTAVAIL is an address the kernel refuses to hold, not something missing.
  if (op === 'bind' && errno === Errno.EADDRNOTAVAIL) return new DataplaneError('INVALID', 'netif', op, object, detail ?? UNUSABLE_ADDRESS, opIndex);
  const code = errnoCode(errno);
  const text = detail ?? errnoName(errno);
  return new DataplaneError(code, 'netif', op, object, text, opIndex);
}

function linkKind(attrs: ifla.LinkAttrs): string {
  if (!attrs.linkinfo) return '';
  return ifla.parseInfo(attrs.linkinfo).kind ?? '';
}

function familyOf(af: number | undefined): IpFamily | undefined {
  if (af === AF_INET) return 'IPv4';
  if (af === AF_INET6) return 'IPv6';
  return undefined;
}

function parseHostIp(ip: string, op: string, dev: string): ParsedIp {
  const p = parseIp(ip);
  if (!p) throw new DataplaneError('INVALID', 'netif', op, `${ip} on ${dev}`, 'not an IP address');
  return p;
}

/** The kernel release, e.g. "6.1.0-18-amd64" (decides which IPVS sysctls apply). */
export async function kernelRelease(path = '/proc/sys/kernel/osrelease'): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

/** What an rtnetlink reply we cannot read becomes: typed, naming what was being read. */
function unreadable(what: string, e: unknown): DataplaneError {
  return new DataplaneError('PARSE', 'netif', 'decode', what, `malformed rtnetlink reply: ${errorMessage(e)}`);
}

/** The links of RTM_NEWLINK messages (others are skipped); a malformed one is a PARSE error. */
export function decodeLinks(parts: readonly { readonly type: number; readonly data: Buffer }[]): NetifLink[] {
  const out: NetifLink[] = [];
  for (const m of parts) {
    if (m.type !== rt.MessageType.NEWLINK) continue;
    let l: ReturnType<typeof rt.parseLinkMessage>;
    let kind: string;
    try {
      l = rt.parseLinkMessage(m.data);
      kind = linkKind(l.attrs);
    } catch (e) {
      throw unreadable('link', e);
    }
    const name = typeof l.attrs.ifname === 'string' ? l.attrs.ifname : '';
    out.push({ name, index: typeof l.data.index === 'number' ? l.data.index : 0, kind });
  }
  return out;
}

/** struct ifaddrmsg: family, prefixlen, flags, scope (u8 each), then the interface index (u32). */
const IFADDRMSG_LEN = 8;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;

interface AddressMessage {
  readonly family: number;
  readonly prefixlen: number;
  readonly index: number;
  local?: Buffer;
  address?: Buffer;
  label?: string;
}

/**
 * The fields of an RTM_NEWADDR message we use, read in place: a full resync reads every VIP of
 * kube-ipvs0 each sync period, and the netlink package's general parser (every attribute, as
 * objects) was most of that read's cost.
 */
function parseAddressMessage(data: Buffer): AddressMessage {
  if (data.length < IFADDRMSG_LEN) throw new Error(`address message of ${data.length} bytes`);
  const m: AddressMessage = { family: data[0] ?? 0, prefixlen: data[1] ?? 0, index: readU32(data, 4) };
  eachAttr(
    data,
    IFADDRMSG_LEN,
    data.length,
    (type, from, to) => {
      if (type === IFA_ADDRESS) m.address = data.subarray(from, to);
      else if (type === IFA_LOCAL) m.local = data.subarray(from, to);
      else if (type === IFA_LABEL) {
        const nul = data.indexOf(0, from);
        m.label = data.toString('utf8', from, nul === -1 || nul > to ? to : nul);
      }
    },
    (detail) => new Error(detail),
  );
  return m;
}

/**
 * The address of one RTM_NEWADDR message, named by `names` (ifindex → link name); undefined for
 * other messages and families. A malformed message, or an address of the wrong length for its
 * family, is a PARSE error.
 */
function decodeAddress(m: { readonly type: number; readonly data: Buffer }, names: ReadonlyMap<number, string>): InterfaceAddress | undefined {
  if (m.type !== rt.MessageType.NEWADDR) return undefined;
  let a: AddressMessage;
  try {
    a = parseAddressMessage(m.data);
  } catch (e) {
    throw unreadable('address', e);
  }
  const family = familyOf(a.family);
  // IPv4 entries carry IFA_LOCAL (the interface's own address; IFA_ADDRESS is the peer on
  // point-to-point links); IPv6 entries carry only IFA_ADDRESS.
  const raw = a.local ?? a.address;
  if (!family || !raw) return undefined;
  if (raw.length !== (family === 'IPv4' ? 4 : 16)) throw unreadable('address', new Error(`${family} address of ${raw.length} bytes`));
  return {
    ifname: names.get(a.index) ?? a.label ?? '',
    ifindex: a.index,
    family,
    address: formatIp({ family, bytes: new Uint8Array(raw) }),
    prefix: a.prefixlen,
  };
}

/** The addresses of RTM_NEWADDR messages, named by `names` (ifindex → link name); see decodeAddress. */
export function decodeAddresses(parts: readonly { readonly type: number; readonly data: Buffer }[], names: ReadonlyMap<number, string>): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  for (const m of parts) {
    const a = decodeAddress(m, names);
    if (a) out.push(a);
  }
  return out;
}

/** One address listing's messages in the kernel's order, each with its bytes and what it decoded to. */
export interface AddressListing {
  /** The link names the entries were named with. */
  readonly names: ReadonlyMap<number, string>;
  readonly entries: readonly { readonly type: number; readonly bytes: Buffer; readonly address: InterfaceAddress | undefined }[];
}

/**
 * decodeAddresses for a listing read every sync period: the kernel lists a link's addresses in the
 * same order while they do not change, and a permanent address's message stays byte for byte the
 * same (its lifetimes are infinite, its timestamps those of its creation). So a message equal to the
 * one at its place in the last listing, under the same link names, is that listing's address again,
 * not decoded anew: tens of thousands of VIPs cost a byte comparison each.
 */
export function decodeAddressesSince(parts: readonly { readonly type: number; readonly data: Buffer }[], names: ReadonlyMap<number, string>, last: AddressListing | undefined): { addresses: InterfaceAddress[]; listing: AddressListing } {
  const before = last && sameNames(last.names, names) ? last.entries : [];
  const entries: Array<AddressListing['entries'][number]> = [];
  const addresses: InterfaceAddress[] = [];
  for (const [i, m] of parts.entries()) {
    const seen = before[i];
    // A copy when decoded anew: the datagram the message views is not ours to keep.
    const entry = seen && seen.type === m.type && seen.bytes.equals(m.data) ? seen : { type: m.type, bytes: Buffer.from(m.data), address: decodeAddress(m, names) };
    entries.push(entry);
    if (entry.address) addresses.push(entry.address);
  }
  return { addresses, listing: { names, entries } };
}

function sameNames(a: ReadonlyMap<number, string>, b: ReadonlyMap<number, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

interface Reply {
  /** Positive errno, 0 on success. */
  readonly errno: number;
  readonly parts: readonly NetlinkMessage[];
}

export class RealNetif implements NetifBackend {
  private sock: RtNetlinkSocket | undefined;
  /** The last address listing, to skip decoding what has not changed (decodeAddressesSince). */
  private lastListing: AddressListing | undefined;
  /** Whether this socket made its one large read (enlargeDumps); reset with the socket. */
  private dumpsEnlarged = false;
  private readonly timeoutMs: number;
  private readonly batchSize: number;

  constructor(opts: RealNetifOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.batchSize = Math.max(1, opts.batchSize ?? 256);
  }

  private socket(): RtNetlinkSocket {
    if (!this.sock) {
      // Unreferenced by default (the package refs it only while requests are pending).
      this.sock = createRtNetlink();
      // Room for a whole batch of acks: those that do not fit are dropped by the kernel.
      this.sock.socket.setRecvBufferSize(1 << 20);
    }
    return this.sock;
  }

  close(): void {
    this.sock?.socket.close();
    this.sock = undefined;
    this.dumpsEnlarged = false;
  }

  private async call(type: number, payload: Uint8Array[], flags: number): Promise<Reply> {
    let msgs: NetlinkMessage[];
    try {
      [msgs] = await this.socket().socket.request(type, payload, { flags, checkError: false, timeout: this.timeoutMs });
    } catch (e) {
      const errno = errnoFromPackageError(e);
      if (errno !== undefined) return { errno, parts: [] };
      throw new DataplaneError('FAILED', 'netif', 'netlink', `type ${type}`, errorMessage(e));
    }
    const first = msgs[0];
    if (first && first.type === NLMSG_ERROR) {
      return { errno: Math.abs(parseError(first.data, first.flags).errno), parts: [] };
    }
    return { errno: 0, parts: msgs };
  }

  /** Every link with its index and kind. */
  async links(): Promise<NetifLink[]> {
    const data = new AttrStream();
    rt.formatLinkMessage({ kind: 'link', data: {}, attrs: {} }, data);
    const r = await this.call(rt.MessageType.GETLINK, data.bufs, FlagsGet.DUMP);
    if (r.errno !== 0) throw netifError(r.errno, 'list', 'links');
    return decodeLinks(r.parts);
  }

  /** The link called name, or undefined (RTM_GETLINK by IFLA_IFNAME; ENODEV when missing). */
  async link(name: string): Promise<NetifLink | undefined> {
    if (!validLinkName(name)) throw new DataplaneError('INVALID', 'netif', 'lookup', name, 'not a valid link name');
    const data = new AttrStream();
    rt.formatLinkMessage({ kind: 'link', data: {}, attrs: { ifname: name } }, data);
    const r = await this.call(rt.MessageType.GETLINK, data.bufs, 0);
    if (r.errno === Errno.ENODEV) return undefined;
    if (r.errno !== 0) throw netifError(r.errno, 'lookup', name);
    const l = decodeLinks(r.parts)[0];
    return l === undefined ? undefined : { ...l, name: l.name || name };
  }

  /**
   * Creates a link of the given kind if no link has that name (any kind counts, as in
   * kube-proxy). Kinds other than dummy are for tests: hosts without the dummy module.
   */
  async ensureLink(name: string, kind: string): Promise<{ readonly created: boolean }> {
    if (await this.link(name)) return { created: false };
    const info = new AttrStream();
    info.emit(ifla.formatInfo({ kind }));
    const data = new AttrStream();
    rt.formatLinkMessage(
      // txqlen 0 as kube-proxy creates it (pkg/proxy/ipvs/netlink_linux.go EnsureDummyDevice at
      // v1.36.3 passes zero-valued LinkAttrs, so its netlink library sends IFLA_TXQLEN 0).
      { kind: 'link', data: {}, attrs: { ifname: name, txqlen: 0, linkinfo: Buffer.concat(info.bufs) } },
      data,
    );
    const r = await this.call(rt.MessageType.NEWLINK, data.bufs, FlagsNew.CREATE | FlagsNew.EXCL);
    // Someone else created it between our lookup and our request.
    if (r.errno === Errno.EEXIST) return { created: false };
    if (r.errno === Errno.EOPNOTSUPP) {
      throw netifError(r.errno, 'create', name, `link kind ${kind} is unavailable: the ${kind} module is missing: modprobe ${kind}`);
    }
    if (r.errno !== 0) throw netifError(r.errno, 'create', name);
    return { created: true };
  }

  ensureDummy(name: string): Promise<{ readonly created: boolean }> {
    return this.ensureLink(name, 'dummy');
  }

  /** Deletes the link when it exists and is of that kind (tests use other kinds). */
  async deleteLink(name: string, kind: string): Promise<{ readonly deleted: boolean }> {
    const l = await this.link(name);
    if (!l || l.kind !== kind) return { deleted: false };
    const data = new AttrStream();
    rt.formatLinkMessage({ kind: 'link', data: { index: l.index }, attrs: {} }, data);
    const r = await this.call(rt.MessageType.DELLINK, data.bufs, 0);
    if (r.errno === Errno.ENODEV) return { deleted: false };
    if (r.errno !== 0) throw netifError(r.errno, 'delete', name);
    return { deleted: true };
  }

  deleteDummy(name: string): Promise<{ readonly deleted: boolean }> {
    return this.deleteLink(name, 'dummy');
  }

  async addresses(): Promise<InterfaceAddress[]> {
    const links = await this.links();
    await this.enlargeDumps();
    const data = new AttrStream();
    rt.formatAddressMessage({ kind: 'address', data: {}, attrs: {} }, data);
    const r = await this.call(rt.MessageType.GETADDR, data.bufs, FlagsGet.DUMP);
    if (r.errno !== 0) throw netifError(r.errno, 'list', 'addresses');
    const { addresses, listing } = decodeAddressesSince(r.parts, new Map(links.map((l) => [l.index, l.name])), this.lastListing);
    this.lastListing = listing;
    return addresses;
  }

  /**
   * Raises this socket's dump datagrams from a page to 32 KB, once (the same trick and receive-buffer
   * guard as NetlinkRequester.enlargeDumps: the kernel sizes dump datagrams by the largest read the socket
   * has made, and the binding reads each datagram with exactly its size). rtnetlink refuses a
   * message type above RTM_MAX before reading it and echoes it whole in its ERROR; reading that
   * echo is the large read. The address dump of kube-ipvs0 restarts its walk of the device's
   * address list for every datagram (in_dev_dump_addr), so with every VIP of a big cluster bound
   * there, eight times larger datagrams mean eight times less walking and fewer reads.
   */
  private async enlargeDumps(): Promise<void> {
    if (this.dumpsEnlarged) return;
    this.dumpsEnlarged = true;
    const payloadBytes = largeDumpPayloadBytes(this.socket().socket.getRecvBufferSize());
    if (payloadBytes === undefined) return;
    // Any outcome is fine: it only sizes later dumps.
    await this.call(REFUSED_RTM_TYPE, [Buffer.alloc(payloadBytes)], 0).catch(() => undefined);
  }

  private addressMessage(type: number, index: number, ip: ParsedIp, flags: number, seq?: number): Uint8Array[] {
    const bytes = Buffer.from(ip.bytes);
    const data = new AttrStream();
    rt.formatAddressMessage(
      {
        kind: 'address',
        data: {
          family: ip.family === 'IPv4' ? AF_INET : AF_INET6,
          prefixlen: hostPrefix(ip.family),
          index,
          // No duplicate address detection: a service VIP must answer at once, not stay tentative.
          flags: ip.family === 'IPv6' && type === rt.MessageType.NEWADDR ? { nodad: true } : {},
        },
        // Both, as iproute2 does: with IFA_ADDRESS the kernel also matches the prefix on delete,
        // so unbind never removes a wider address that happens to have the same IP.
        attrs: { local: bytes, address: bytes },
      },
      data,
    );
    if (seq === undefined) return data.bufs;
    return formatMessage({ type, flags: Flags.REQUEST | Flags.ACK | flags, seq, port: 0, data: data.bufs });
  }

  private async requireLink(dev: string, op: string): Promise<NetifLink> {
    const l = await this.link(dev);
    if (!l) throw new DataplaneError('NOT_FOUND', 'netif', op, dev, 'no such link');
    return l;
  }

  async bind(dev: string, ip: string): Promise<void> {
    const p = parseHostIp(ip, 'bind', dev);
    const l = await this.requireLink(dev, 'bind');
    const r = await this.call(rt.MessageType.NEWADDR, this.addressMessage(rt.MessageType.NEWADDR, l.index, p, 0), FlagsNew.CREATE | FlagsNew.EXCL);
    if (r.errno === 0 || r.errno === Errno.EEXIST) return;
    throw netifError(r.errno, 'bind', `${ip} on ${dev}`);
  }

  async unbind(dev: string, ip: string): Promise<void> {
    const p = parseHostIp(ip, 'unbind', dev);
    const l = await this.link(dev);
    // No link, no address: already gone.
    if (!l) return;
    const r = await this.call(rt.MessageType.DELADDR, this.addressMessage(rt.MessageType.DELADDR, l.index, p, 0), 0);
    if (r.errno === 0 || r.errno === Errno.EADDRNOTAVAIL || r.errno === Errno.ENODEV) return;
    throw netifError(r.errno, 'unbind', `${ip} on ${dev}`);
  }

  /** Binds many addresses, several per datagram; one result per op, in order. */
  bindMany(ops: readonly NetifAddressOp[]): Promise<NetifOpResult[]> {
    return this.batch('bind', ops);
  }

  /** Unbinds many addresses, several per datagram; one result per op, in order. */
  unbindMany(ops: readonly NetifAddressOp[]): Promise<NetifOpResult[]> {
    return this.batch('unbind', ops);
  }

  private async batch(op: 'bind' | 'unbind', ops: readonly NetifAddressOp[]): Promise<NetifOpResult[]> {
    const results: (NetifOpResult | undefined)[] = new Array<NetifOpResult | undefined>(ops.length);
    const indexes = new Map<string, number | undefined>();
    const todo: { readonly i: number; readonly index: number; readonly ip: ParsedIp }[] = [];
    for (const [i, o] of ops.entries()) {
      const p = parseIp(o.ip);
      if (!p) {
        results[i] = { ...o, ok: false, error: new DataplaneError('INVALID', 'netif', op, `${o.ip} on ${o.dev}`, 'not an IP address', i) };
        continue;
      }
      if (!validLinkName(o.dev)) {
        results[i] = { ...o, ok: false, error: new DataplaneError('INVALID', 'netif', op, o.dev, 'not a valid link name', i) };
        continue;
      }
      if (!indexes.has(o.dev)) indexes.set(o.dev, (await this.link(o.dev))?.index);
      const index = indexes.get(o.dev);
      if (index === undefined) {
        results[i] =
          op === 'unbind'
            ? { ...o, ok: true }
            : { ...o, ok: false, error: new DataplaneError('NOT_FOUND', 'netif', op, o.dev, 'no such link', i) };
        continue;
      }
      todo.push({ i, index, ip: p });
    }
    for (let start = 0; start < todo.length; start += this.batchSize) {
      const chunk = todo.slice(start, start + this.batchSize);
      const errnos = await this.sendBatch(op, chunk);
      chunk.forEach((t, k) => {
        const o = ops[t.i] as NetifAddressOp;
        const errno = errnos[k] ?? 0;
        const fine = errno === 0 || (op === 'bind' ? errno === Errno.EEXIST : errno === Errno.EADDRNOTAVAIL || errno === Errno.ENODEV);
        results[t.i] = fine ? { ...o, ok: true } : { ...o, ok: false, error: netifError(errno, op, `${o.ip} on ${o.dev}`, undefined, t.i) };
      });
    }
    return results.map((r, i) => r ?? { ...(ops[i] as NetifAddressOp), ok: true });
  }

  /**
   * One datagram of requests; the kernel runs each and acks each by seq, and a failure does not
   * stop the rest. The package only tracks one pending request per seq, so the acks arrive as
   * unsolicited 'message' events and are matched here.
   */
  private sendBatch(op: 'bind' | 'unbind', chunk: readonly { readonly index: number; readonly ip: ParsedIp }[]): Promise<number[]> {
    const nl = this.socket().socket;
    const type = op === 'bind' ? rt.MessageType.NEWADDR : rt.MessageType.DELADDR;
    const flags = op === 'bind' ? FlagsNew.CREATE | FlagsNew.EXCL : 0;
    const seqs = chunk.map(() => nl.generateSeq());
    const bufs: Uint8Array[] = [];
    chunk.forEach((t, k) => {
      const msg = Buffer.concat(this.addressMessage(type, t.index, t.ip, flags, seqs[k]));
      bufs.push(msg);
      // formatMessage does not pad the tail; the next header must start 4-aligned.
      if (msg.length % 4 !== 0) bufs.push(Buffer.alloc(4 - (msg.length % 4)));
    });
    const position = new Map(seqs.map((s, k) => [s, k]));
    const errnos = new Array<number | undefined>(chunk.length).fill(undefined);
    let left = chunk.length;
    return new Promise<number[]>((resolve, reject) => {
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        nl.off('message', onMessage);
        nl.unref();
        if (err) reject(err);
        else resolve(errnos.map((e) => e ?? 0));
      };
      const onMessage = (msgs: NetlinkMessage[]): void => {
        for (const m of msgs) {
          const k = position.get(m.seq);
          if (k === undefined || m.type !== NLMSG_ERROR || errnos[k] !== undefined) continue;
          errnos[k] = Math.abs(parseError(m.data, m.flags).errno);
          if (--left === 0) finish();
        }
      };
      const timer = setTimeout(
        () => finish(new DataplaneError('FAILED', 'netif', op, `${left} of ${chunk.length} addresses`, 'no acknowledgement from the kernel')),
        this.timeoutMs,
      );
      nl.on('message', onMessage);
      // Keep the process alive until the acks are in.
      nl.ref();
      nl.socket.send(Buffer.concat(bufs), { port: 0 }, (err) => {
        if (err) finish(new DataplaneError('FAILED', 'netif', op, `${chunk.length} addresses`, err.message));
      });
    });
  }
}
