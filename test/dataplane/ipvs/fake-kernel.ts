// A netlink transport that answers like the kernel's genetlink controller and IPVS family
// (net/netfilter/ipvs/ip_vs_ctl.c semantics for the errnos the client must classify), so the
// client's framing, batching, sequence matching and family re-resolution can be tested without
// a kernel that has ip_vs.
import type { NetlinkTransport } from '../../../src/dataplane/ipvs/netlink-client.js';
import type { AttrMap, NlMessage } from '../../../src/dataplane/ipvs/netlink-codec.js';
import {
  CmdAttr,
  DestAttr,
  GENL_ID_CTRL,
  IpvsCmd,
  NlMsgType,
  NlmF,
  StatsAttr,
  SvcAttr,
  encodeAttr,
  encodeGenl,
  encodeNested,
  encodeNlMessage,
  parseAttrs,
  parseGenl,
  parseNlMessages,
} from '../../../src/dataplane/ipvs/netlink-codec.js';

const E = { ENOENT: 2, ESRCH: 3, EEXIST: 17, EINVAL: 22, ERANGE: 34, EOPNOTSUPP: 95 } as const;
const KNOWN_SCHEDULERS = new Set(['rr', 'wrr', 'lc', 'wlc', 'sh', 'mh', 'dh', 'sed', 'nq']);

interface FakeService {
  attrs: Map<number, Buffer>;
  dests: Map<string, Map<number, Buffer>>;
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

function u64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}

function pad16(b: Buffer | undefined): Buffer {
  const out = Buffer.alloc(16);
  if (b) b.copy(out, 0, 0, Math.min(16, b.length));
  return out;
}

function key(parts: (Buffer | undefined)[]): string {
  return parts.map((p) => (p ? p.toString('hex') : '-')).join('|');
}

function serviceKey(s: AttrMap): string {
  if (s.get(SvcAttr.FWMARK)) return key([s.get(SvcAttr.AF), s.get(SvcAttr.FWMARK)]);
  return key([s.get(SvcAttr.AF), s.get(SvcAttr.PROTOCOL), pad16(s.get(SvcAttr.ADDR)), s.get(SvcAttr.PORT)]);
}

function stats64(type: number, inbytes = 0): Buffer {
  return encodeNested(type, [encodeAttr(StatsAttr.CONNS, u64(1)), encodeAttr(StatsAttr.INPKTS, u64(2)), encodeAttr(StatsAttr.INBYTES, u64(inbytes))]);
}

export class FakeIpvsKernel implements NetlinkTransport {
  readonly localPort = 0x4242;
  recvBufferSize = 8 << 20;
  familyId = 32;
  loaded = true;
  /** Replies are withheld (to test timeouts). */
  silent = false;
  /** Acks beyond this many per datagram are dropped and ENOBUFS is reported (SO_RCVBUF overflow). */
  ackLimit = Infinity;
  /** Requests refused for a command IPVS does not have. */
  refusedCommands = 0;
  /** Acknowledgements and errors (NLMSG_ERROR messages) sent so far. */
  errorMessages = 0;
  /**
   * The next this many dumps come flagged NLM_F_DUMP_INTR, each listing its entries twice: what a
   * reader sees when the table changes under a dump (a consistency-checked one flags it).
   */
  interruptDumps = 0;
  private bytesCounted = 0;
  readonly services = new Map<string, FakeService>();
  /** Number of netlink messages in each datagram received, and its size. */
  readonly datagrams: { messages: number; bytes: number }[] = [];
  timeouts = { tcp: 900, tcpFin: 120, udp: 300 };
  private onDatagram: ((d: Buffer, port: number) => void) | undefined;
  private onError: ((errno: number) => void) | undefined;
  closed = false;

  listen(onDatagram: (d: Buffer, port: number) => void, onError: (errno: number) => void): void {
    this.onDatagram = onDatagram;
    this.onError = onError;
  }

  close(): void {
    this.closed = true;
  }

  /** Simulates `rmmod ip_vs; modprobe ip_vs`: the family comes back with another id, empty. */
  reload(newId: number): void {
    this.familyId = newId;
    this.services.clear();
  }

  send(datagram: Buffer): Promise<void> {
    const msgs = parseNlMessages(datagram);
    this.datagrams.push({ messages: msgs.length, bytes: datagram.length });
    const out: Buffer[] = [];
    let acks = 0;
    let overflow = false;
    for (const m of msgs) {
      for (const r of this.handle(m)) {
        const isAck = r.readUInt16LE(4) === NlMsgType.ERROR;
        if (isAck && ++acks > this.ackLimit) {
          overflow = true;
          continue;
        }
        if (isAck) this.errorMessages++;
        out.push(r);
      }
    }
    if (!this.silent) {
      setImmediate(() => {
        if (overflow) this.onError?.(105);
        for (const r of out) this.onDatagram?.(r, 0);
      });
    }
    return Promise.resolve();
  }

  private reply(req: NlMessage, type: number, flags: number, payload: Buffer): Buffer {
    return encodeNlMessage({ type, flags, seq: req.seq, pid: req.pid, payload });
  }

  private error(req: NlMessage, errno: number): Buffer {
    const orig = encodeNlMessage(req);
    const head = Buffer.alloc(4);
    head.writeInt32LE(-errno);
    return this.reply(req, NlMsgType.ERROR, errno === 0 ? 0x100 : 0, Buffer.concat([head, errno === 0 ? orig.subarray(0, 16) : orig]));
  }

  /**
   * What netlink_rcv_skb (net/netlink/af_netlink.c) sends after a request: an ERROR message when
   * it failed or asked for an ACK (NLM_F_ACK), nothing for a success that did not ask.
   */
  private ack(req: NlMessage, errno: number): Buffer[] {
    return errno !== 0 || (req.flags & NlmF.ACK) !== 0 ? [this.error(req, errno)] : [];
  }

  private handle(req: NlMessage): Buffer[] {
    if (req.type === GENL_ID_CTRL) {
      const g = parseGenl(req.payload);
      const name = g.attrs.get(2)?.toString('utf8').replace(/\0.*$/, '');
      if (name !== 'IPVS' || !this.loaded) return [this.error(req, E.ENOENT)];
      const body = encodeGenl(1, 2, [encodeAttr(2, Buffer.from('IPVS\0')), encodeAttr(1, u16(this.familyId))]);
      return [this.reply(req, GENL_ID_CTRL, 0, body), ...this.ack(req, 0)];
    }
    if (req.type !== this.familyId || !this.loaded) return [this.error(req, E.ENOENT)];
    const g = parseGenl(req.payload);
    const dump = (req.flags & NlmF.DUMP) === NlmF.DUMP;
    const svcNest = g.attrs.get(CmdAttr.SERVICE);
    const svc = svcNest ? parseAttrs(svcNest) : undefined;
    const found = svc ? this.services.get(serviceKey(svc)) : undefined;
    const ack = (errno: number): Buffer[] => this.ack(req, errno);
    switch (g.cmd) {
      case IpvsCmd.NEW_SERVICE:
      case IpvsCmd.SET_SERVICE: {
        if (!svc) return ack(E.EINVAL);
        for (const t of [SvcAttr.SCHED_NAME, SvcAttr.FLAGS, SvcAttr.TIMEOUT, SvcAttr.NETMASK]) if (!svc.has(t)) return ack(E.EINVAL);
        const sched = (svc.get(SvcAttr.SCHED_NAME) ?? Buffer.alloc(0)).toString('utf8').replace(/\0.*$/, '');
        if (g.cmd === IpvsCmd.NEW_SERVICE && found) return ack(E.EEXIST);
        if (g.cmd === IpvsCmd.SET_SERVICE && !found) return ack(E.ESRCH);
        if (!KNOWN_SCHEDULERS.has(sched)) return ack(E.ENOENT);
        const attrs = new Map(svc);
        if (found) found.attrs = attrs;
        else this.services.set(serviceKey(svc), { attrs, dests: new Map() });
        return ack(0);
      }
      case IpvsCmd.DEL_SERVICE:
        if (!svc) return ack(E.EINVAL);
        if (!found) return ack(E.ESRCH);
        this.services.delete(serviceKey(svc));
        return ack(0);
      case IpvsCmd.GET_SERVICE:
        if (!dump) {
          if (!found) return ack(E.ESRCH);
          return [this.reply(req, this.familyId, 0, this.serviceEntry(found)), ...ack(0)];
        }
        return this.dumpReply(req, [...this.services.values()].map((s) => this.serviceEntry(s)));
      case IpvsCmd.NEW_DEST:
      case IpvsCmd.SET_DEST:
      case IpvsCmd.DEL_DEST: {
        const destNest = g.attrs.get(CmdAttr.DEST);
        if (!svc || !destNest) return ack(E.EINVAL);
        const d = parseAttrs(destNest);
        if (!found) return ack(E.ESRCH);
        const dk = key([pad16(d.get(DestAttr.ADDR)), d.get(DestAttr.PORT)]);
        const have = found.dests.get(dk);
        if (g.cmd === IpvsCmd.DEL_DEST) {
          if (!have) return ack(E.ENOENT);
          found.dests.delete(dk);
          return ack(0);
        }
        for (const t of [DestAttr.FWD_METHOD, DestAttr.WEIGHT, DestAttr.U_THRESH, DestAttr.L_THRESH]) if (!d.has(t)) return ack(E.EINVAL);
        if ((d.get(DestAttr.WEIGHT) ?? u32(0)).readInt32LE(0) < 0) return ack(E.ERANGE);
        if (g.cmd === IpvsCmd.NEW_DEST && have) return ack(E.EEXIST);
        if (g.cmd === IpvsCmd.SET_DEST && !have) return ack(E.ENOENT);
        found.dests.set(dk, new Map(d));
        return ack(0);
      }
      case IpvsCmd.GET_DEST:
        if (!dump) return ack(E.EOPNOTSUPP);
        return this.dumpReply(req, found ? [...found.dests.values()].map((d) => this.destEntry(d)) : []);
      case IpvsCmd.GET_INFO:
        return [
          this.reply(req, this.familyId, 0, encodeGenl(IpvsCmd.SET_INFO, 1, [encodeAttr(1, u32(0x010201)), encodeAttr(2, u32(4096))])),
          ...ack(0),
        ];
      case IpvsCmd.GET_CONFIG:
        return [
          this.reply(
            req,
            this.familyId,
            0,
            encodeGenl(IpvsCmd.SET_CONFIG, 1, [
              encodeAttr(CmdAttr.TIMEOUT_TCP, u32(this.timeouts.tcp)),
              encodeAttr(CmdAttr.TIMEOUT_TCP_FIN, u32(this.timeouts.tcpFin)),
              encodeAttr(CmdAttr.TIMEOUT_UDP, u32(this.timeouts.udp)),
            ]),
          ),
          ...ack(0),
        ];
      case IpvsCmd.SET_CONFIG: {
        const get = (t: number): number => g.attrs.get(t)?.readUInt32LE(0) ?? 0;
        this.timeouts = {
          tcp: get(CmdAttr.TIMEOUT_TCP) || this.timeouts.tcp,
          tcpFin: get(CmdAttr.TIMEOUT_TCP_FIN) || this.timeouts.tcpFin,
          udp: get(CmdAttr.TIMEOUT_UDP) || this.timeouts.udp,
        };
        return ack(0);
      }
      case IpvsCmd.FLUSH:
        this.services.clear();
        return ack(0);
      case IpvsCmd.ZERO:
        return ack(0);
      default:
        // No handler for the command (genl_family_rcv_msg looks it up before parsing anything).
        this.refusedCommands++;
        return ack(E.EOPNOTSUPP);
    }
  }

  /** Entries packed into one datagram (as a dump skb), then DONE; no ACK after a dump. */
  private dumpReply(req: NlMessage, entries: Buffer[]): Buffer[] {
    const interrupted = this.interruptDumps > 0;
    if (interrupted) this.interruptDumps--;
    const flags = interrupted ? NlmF.MULTI | NlmF.DUMP_INTR : NlmF.MULTI;
    const parts = (interrupted ? [...entries, ...entries] : entries).map((e) => this.reply(req, this.familyId, flags, e));
    const done = this.reply(req, NlMsgType.DONE, NlmF.MULTI, u32(0));
    return [Buffer.concat(parts), done].filter((b) => b.length > 0);
  }

  /**
   * What ip_vs_genl_fill_service writes, in its order: 16-byte address, PE_NAME after SCHED_NAME,
   * HASHED set, STATS64 last. Its byte counter grows with each entry written, as traffic would.
   */
  private serviceEntry(s: FakeService): Buffer {
    this.bytesCounted += 1000;
    const a = s.attrs;
    const flags = Buffer.from(a.get(SvcAttr.FLAGS) ?? Buffer.alloc(8));
    flags.writeUInt32LE(flags.readUInt32LE(0) | 0x2, 0);
    const pe = a.get(SvcAttr.PE_NAME);
    const id = a.get(SvcAttr.FWMARK)
      ? [encodeAttr(SvcAttr.FWMARK, a.get(SvcAttr.FWMARK) ?? u32(0))]
      : [
          encodeAttr(SvcAttr.PROTOCOL, a.get(SvcAttr.PROTOCOL) ?? u16(0)),
          encodeAttr(SvcAttr.ADDR, pad16(a.get(SvcAttr.ADDR))),
          encodeAttr(SvcAttr.PORT, a.get(SvcAttr.PORT) ?? u16(0)),
        ];
    const attrs = [
      encodeAttr(SvcAttr.AF, a.get(SvcAttr.AF) ?? u16(2)),
      ...id,
      encodeAttr(SvcAttr.SCHED_NAME, a.get(SvcAttr.SCHED_NAME) ?? Buffer.from('\0')),
      ...(pe ? [encodeAttr(SvcAttr.PE_NAME, pe)] : []),
      encodeAttr(SvcAttr.FLAGS, flags),
      encodeAttr(SvcAttr.TIMEOUT, a.get(SvcAttr.TIMEOUT) ?? u32(0)),
      encodeAttr(SvcAttr.NETMASK, a.get(SvcAttr.NETMASK) ?? u32(0)),
      stats64(SvcAttr.STATS64, this.bytesCounted),
    ];
    return encodeGenl(IpvsCmd.NEW_SERVICE, 1, [encodeNested(CmdAttr.SERVICE, attrs)]);
  }

  private destEntry(d: Map<number, Buffer>): Buffer {
    const attrs = [
      encodeAttr(DestAttr.ADDR, pad16(d.get(DestAttr.ADDR))),
      encodeAttr(DestAttr.PORT, d.get(DestAttr.PORT) ?? u16(0)),
      encodeAttr(DestAttr.FWD_METHOD, d.get(DestAttr.FWD_METHOD) ?? u32(0)),
      encodeAttr(DestAttr.WEIGHT, d.get(DestAttr.WEIGHT) ?? u32(0)),
      encodeAttr(DestAttr.U_THRESH, d.get(DestAttr.U_THRESH) ?? u32(0)),
      encodeAttr(DestAttr.L_THRESH, d.get(DestAttr.L_THRESH) ?? u32(0)),
      encodeAttr(DestAttr.ACTIVE_CONNS, u32(1)),
      encodeAttr(DestAttr.INACT_CONNS, u32(2)),
      encodeAttr(DestAttr.PERSIST_CONNS, u32(0)),
      encodeAttr(DestAttr.ADDR_FAMILY, d.get(DestAttr.ADDR_FAMILY) ?? u16(2)),
      stats64(DestAttr.STATS64),
    ];
    return encodeGenl(IpvsCmd.NEW_DEST, 1, [encodeNested(CmdAttr.DEST, attrs)]);
  }
}
