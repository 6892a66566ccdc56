// The ipset subsystem over NETLINK_NETFILTER, without the ipset binary: one socket, requests
// framed by netlink-codec.ts, many per datagram, each acknowledged by seq. Spawning `ipset
// restore` cost ~60 ms of CPU per endpoint change; a request here costs tens of microseconds.
//
// The kernel runs every message of a datagram even after one fails, while the backend contract
// stops at the first failure. So a datagram ends after any message that may fail in a way not
// checked beforehand (create, destroy, a bulk add, a bulk del on a bitmap); before sending, the
// sets' headers are read (HEADER) so that missing sets and entries that do not fit a set's type
// or family are refused here, like ipset does in userspace and like the fake does.
import { RawNetlinkSocket } from 'netlink';
import type { IpsetFamily, IpsetState } from '../../model/kernel.js';
import type { IpsetType } from '../../model/names.js';
import { DataplaneError } from '../errors.js';
import type { IpsetApplyResult, IpsetBackend, IpsetOp } from './backend.js';
import type { IpsetListMessage, NlMessage } from './netlink-codec.js';
import {
  IPSET_PROTOCOL,
  IPSET_PROTOCOL_MIN,
  IpsetCmd,
  IpsetErrno,
  MAX_ADT_BYTES,
  NETLINK_NETFILTER,
  NfProto,
  NlMsgType,
  NlmF,
  PREFERRED_REVISION,
  collectIpsetDump,
  decodeHeaderReply,
  decodeListMessage,
  decodeProtocolReply,
  decodeTypeReply,
  encodeAdt,
  encodeCreate,
  encodeDestroy,
  encodeElement,
  encodeFlush,
  encodeHeaderRequest,
  encodeNlMessage,
  encodeProtocolRequest,
  encodeSave,
  encodeTypeRequest,
  entryElement,
  ipsetMsgType,
  parseDoneErrno,
  parseIpsetNlError,
  parseNlMessages,
  specFamily,
} from './netlink-codec.js';
import type { IpsetErrorContext } from './netlink-errors.js';
import { Errno, ipsetErrnoInfo } from './netlink-errors.js';
import { ipsetOpObject, ipsetOpProblem } from './restore-script.js';
import { isIpsetType } from './text.js';

/** The datagram socket the backend talks through; the real one is a NETLINK_NETFILTER socket. */
export interface IpsetNetlinkTransport {
  /** Our netlink port id (nlmsg_pid of requests). */
  readonly localPort: number;
  /** SO_RCVBUF as granted: bounds how many acknowledgements one datagram may queue. */
  readonly recvBufferSize: number;
  /** One sendmsg to the kernel; rejects with an `errno` property on failure. */
  send(datagram: Buffer): Promise<void>;
  /** `fromPort` is 0 for the kernel; `onError` gets socket errors (ENOBUFS on receive overflow). */
  listen(onDatagram: (datagram: Buffer, fromPort: number) => void, onError: (errno: number) => void): void;
  close(): void;
}

export interface NetlinkIpsetOptions {
  /** Give up on a request when the kernel stays silent this long (default 10 s; reset by each reply part). */
  readonly timeoutMs?: number;
  /** Bytes per datagram (default 128 KiB; one message may exceed it). */
  readonly batchBytes?: number;
  /** Requested SO_RCVBUF (default 4 MiB; capped at net.core.rmem_max). */
  readonly recvBufferSize?: number;
  /** Requested SO_SNDBUF (default 1 MiB): a datagram must fit in it. */
  readonly sendBufferSize?: number;
  /** For tests: talk through this instead of a real netlink socket. */
  readonly transport?: IpsetNetlinkTransport;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_BATCH_BYTES = 128 * 1024;
/** Kernel memory one queued acknowledgement costs in our receive buffer (skb truesize, generous). */
const ACK_COST_BYTES = 2048;
const MAX_MESSAGES_PER_DATAGRAM = 256;
/** Replies still queued behind an ENOBUFS are read within this grace before the rest count as lost. */
const OVERRUN_GRACE_MS = 100;
/** Reply errno meaning "our socket was closed"; never a kernel value. */
const CLOSED_ERRNO = -1;

function hasErrno(e: unknown): e is { errno: number; message?: string } {
  return typeof e === 'object' && e !== null && typeof (e as { errno?: unknown }).errno === 'number';
}

/** The real transport: the `netlink` package's raw socket, unreferenced so an idle backend does not hold the process. */
export function openNetfilterNetlink(opts: { recvBufferSize: number; sendBufferSize: number }): IpsetNetlinkTransport {
  const sock = new RawNetlinkSocket(NETLINK_NETFILTER, { recvBufferSize: opts.recvBufferSize, sendBufferSize: opts.sendBufferSize });
  sock.unref();
  return {
    localPort: sock.address().port,
    recvBufferSize: sock.getRecvBufferSize(),
    send: (datagram) =>
      new Promise<void>((resolve, reject) => {
        sock.send(datagram, { port: 0 }, (err) => (err ? reject(err) : resolve()));
      }),
    listen: (onDatagram, onError) => {
      sock.on('message', (msg, rinfo) => onDatagram(msg, rinfo.port));
      sock.on('error', (err) => onError(hasErrno(err) ? Math.abs(err.errno) : 0));
    },
    close: () => sock.close(),
  };
}

interface Request {
  readonly type: number;
  readonly flags: number;
  readonly payload: Buffer;
}

interface Reply {
  /** Positive errno, 0 on success. */
  readonly errno: number;
  /** The failed element of a bulk request, when the kernel said. */
  readonly lineno?: number;
  readonly parts: readonly NlMessage[];
}

interface Pending {
  readonly parts: NlMessage[];
  readonly finish: (errno: number, lineno?: number) => void;
  readonly touch: () => void;
}

/** What the batch knows of a set at some point: absent (null), or its type and family. */
interface SetInfo {
  readonly typeName: string;
  /** Undefined for types the model does not have (a foreign set under one of our names). */
  readonly type: IpsetType | undefined;
  readonly family: IpsetFamily | undefined;
}

/** One planned request carrying ops [first, first + count). */
interface Message {
  readonly cmd: number;
  readonly payload: Buffer;
  readonly first: number;
  readonly count: number;
  /** May fail in a way not checked beforehand: nothing may follow it in its datagram. */
  readonly risky: boolean;
  readonly ctx: IpsetErrorContext;
}

/** Where planning stopped: the op the kernel would refuse, refused here instead. */
interface Refusal {
  readonly index: number;
  readonly error: DataplaneError;
}

function familyOf(nfproto: number): IpsetFamily | undefined {
  if (nfproto === NfProto.IPV4) return 'inet';
  if (nfproto === NfProto.IPV6) return 'inet6';
  return undefined;
}

function opError(op: IpsetOp, index: number, errno: number, ctx: IpsetErrorContext): DataplaneError {
  if (errno === CLOSED_ERRNO) return new DataplaneError('FAILED', 'ipset', op.kind, ipsetOpObject(op), 'the ipset netlink socket was closed', index);
  const { code, reason } = ipsetErrnoInfo(errno, ctx);
  return new DataplaneError(code, 'ipset', op.kind, ipsetOpObject(op), reason, index);
}

export class NetlinkIpset implements IpsetBackend {
  private readonly pending = new Map<number, Pending>();
  private readonly maxMessages: number;
  private readonly timeoutMs: number;
  private readonly batchBytes: number;
  /** Revision to create per type, learnt from the kernel (TYPE) on first use. */
  private readonly revisions = new Map<IpsetType, number>();
  private seq = Math.floor(Math.random() * 0x10000);
  private queue: Promise<unknown> = Promise.resolve();
  private overrunTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The ipset protocol version every request carries (negotiated by open()). */
  protocol = IPSET_PROTOCOL;

  private constructor(
    private readonly transport: IpsetNetlinkTransport,
    opts: NetlinkIpsetOptions,
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.batchBytes = opts.batchBytes ?? DEFAULT_BATCH_BYTES;
    this.maxMessages = Math.max(1, Math.min(MAX_MESSAGES_PER_DATAGRAM, Math.floor(transport.recvBufferSize / ACK_COST_BYTES)));
    transport.listen(
      (d, port) => this.onDatagram(d, port),
      (errno) => this.onSocketError(errno),
    );
  }

  /**
   * Opens the socket and negotiates the protocol (IPSET_CMD_PROTOCOL). Rejects with UNAVAILABLE
   * or PERMISSION, with a reason fit for a log line, when ipset cannot be spoken over netlink here.
   */
  static async open(opts: NetlinkIpsetOptions = {}): Promise<NetlinkIpset> {
    let transport: IpsetNetlinkTransport;
    try {
      transport = opts.transport ?? openNetfilterNetlink({ recvBufferSize: opts.recvBufferSize ?? 4 << 20, sendBufferSize: opts.sendBufferSize ?? 1 << 20 });
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new DataplaneError('UNAVAILABLE', 'ipset', 'open', 'netlink', `cannot open a NETLINK_NETFILTER socket: ${why}`);
    }
    const backend = new NetlinkIpset(transport, opts);
    try {
      backend.protocol = await backend.negotiate();
    } catch (e) {
      backend.close();
      throw e;
    }
    return backend;
  }

  /** Closes the socket; requests in flight fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.overrunTimer) clearTimeout(this.overrunTimer);
    this.failAll(CLOSED_ERRNO);
    this.transport.close();
  }

  observe(names?: readonly string[]): Promise<IpsetState[]> {
    return this.serial(async () => {
      if (names === undefined) return collectIpsetDump(await this.dump(undefined)).sets;
      const out: IpsetState[] = [];
      // One dump per set, like `ipset save NAME`: other sets (foreign, perhaps unreadable) are
      // never read. A name the kernel cannot hold is simply absent.
      for (const name of new Set(names)) {
        if (ipsetOpProblem({ kind: 'flush', name }) !== undefined) continue;
        out.push(...collectIpsetDump(await this.dump(name)).sets);
      }
      return out;
    });
  }

  apply(ops: readonly IpsetOp[]): Promise<IpsetApplyResult> {
    return this.serial(() => this.applyOps(ops));
  }

  // ---- protocol --------------------------------------------------------------------------------

  private async negotiate(): Promise<number> {
    const ask = async (version: number): Promise<Reply> => this.single({ type: ipsetMsgType(IpsetCmd.PROTOCOL), flags: NlmF.REQUEST | NlmF.ACK, payload: encodeProtocolRequest(version) });
    let r = await ask(IPSET_PROTOCOL);
    // Kernels before protocol 7 accept only their own version in every request, this one too.
    if (r.errno === IpsetErrno.PROTOCOL) r = await ask(IPSET_PROTOCOL_MIN);
    if (r.errno !== 0) {
      const info = ipsetErrnoInfo(r.errno, { op: 'protocol' });
      const why = r.errno === Errno.EINVAL ? 'the ip_set kernel module is not loaded (modprobe ip_set)' : info.reason;
      throw new DataplaneError(info.code === 'PERMISSION' ? 'PERMISSION' : 'UNAVAILABLE', 'ipset', 'open', 'netlink', `ipset protocol handshake failed: ${why}`);
    }
    const first = r.parts[0];
    if (!first) throw new DataplaneError('UNAVAILABLE', 'ipset', 'open', 'netlink', 'ipset protocol handshake failed: empty reply');
    const k = decodeProtocolReply(first.payload);
    const version = Math.min(IPSET_PROTOCOL, k.protocol);
    if (version < IPSET_PROTOCOL_MIN || version < k.protocolMin) {
      throw new DataplaneError(
        'UNAVAILABLE',
        'ipset',
        'open',
        'netlink',
        `the kernel speaks ipset protocol ${k.protocolMin}..${k.protocol}, kube-ipvs ${IPSET_PROTOCOL_MIN}..${IPSET_PROTOCOL}`,
      );
    }
    return version;
  }

  // ---- observe -------------------------------------------------------------------------------

  /** SAVE of one set (absent → []) or of all sets. */
  private async dump(name: string | undefined): Promise<IpsetListMessage[]> {
    const r = await this.single({ type: ipsetMsgType(IpsetCmd.SAVE), flags: NlmF.REQUEST | NlmF.DUMP, payload: encodeSave(this.protocol, name) });
    if (r.errno === Errno.ENOENT && name !== undefined) return [];
    if (r.errno !== 0) {
      const { code, reason } = r.errno === CLOSED_ERRNO ? { code: 'FAILED' as const, reason: 'the ipset netlink socket was closed' } : ipsetErrnoInfo(r.errno, { op: 'list' });
      throw new DataplaneError(code, 'ipset', 'save', name ?? '', reason);
    }
    // The kernel answers SAVE with LIST-typed messages.
    return r.parts.filter((p) => p.type === ipsetMsgType(IpsetCmd.LIST) || p.type === ipsetMsgType(IpsetCmd.SAVE)).map((p) => decodeListMessage(p.payload));
  }

  // ---- apply ---------------------------------------------------------------------------------

  private async applyOps(ops: readonly IpsetOp[]): Promise<IpsetApplyResult> {
    if (ops.length === 0) return { applied: 0 };
    const known = await this.lookup(ops);
    if (known instanceof DataplaneError) return { applied: 0, error: known };
    const { messages, refusal } = this.plan(ops, known);
    for (const group of datagrams(messages, this.batchBytes, this.maxMessages)) {
      const replies = await this.exchange(group.map((m) => ({ type: ipsetMsgType(m.cmd), flags: NlmF.REQUEST | NlmF.ACK, payload: m.payload })));
      for (const [k, m] of group.entries()) {
        const r = replies[k] ?? { errno: Errno.ETIMEDOUT, parts: [] };
        // Older kernels refuse to destroy a missing set; with -exist that is success (6.18 acks it).
        if (r.errno === 0 || (m.cmd === IpsetCmd.DESTROY && r.errno === Errno.ENOENT)) continue;
        const bulk = m.cmd === IpsetCmd.ADD || m.cmd === IpsetCmd.DEL;
        const offset = bulk && r.lineno !== undefined && r.lineno >= 1 && r.lineno <= m.count ? r.lineno - 1 : 0;
        const index = m.first + offset;
        return { applied: index, error: opError(ops[index] as IpsetOp, index, r.errno, m.ctx) };
      }
    }
    return refusal ? { applied: refusal.index, error: refusal.error } : { applied: ops.length };
  }

  /**
   * The kernel's view of every set the batch names (HEADER), and the revisions of types it
   * creates (TYPE), in one datagram of read-only requests. A failure (EPERM, ...) fails the batch.
   */
  private async lookup(ops: readonly IpsetOp[]): Promise<Map<string, SetInfo | null> | DataplaneError> {
    const names: string[] = [];
    const types: IpsetType[] = [];
    const seen = new Set<string>();
    for (const op of ops) {
      const name = op.kind === 'create' ? op.spec.name : op.name;
      if (op.kind === 'create' && isIpsetType(op.spec.type) && !this.revisions.has(op.spec.type) && !types.includes(op.spec.type)) types.push(op.spec.type);
      if (seen.has(name)) continue;
      seen.add(name);
      // A name the kernel cannot hold is refused by plan(); one check per name, not per op.
      if (ipsetOpProblem({ kind: 'flush', name }) === undefined) names.push(name);
    }
    const requests: Request[] = [
      ...names.map((n) => ({ type: ipsetMsgType(IpsetCmd.HEADER), flags: NlmF.REQUEST | NlmF.ACK, payload: encodeHeaderRequest(this.protocol, n) })),
      ...types.map((t) => ({ type: ipsetMsgType(IpsetCmd.TYPE), flags: NlmF.REQUEST | NlmF.ACK, payload: encodeTypeRequest(this.protocol, t, t === 'bitmap:port' ? NfProto.UNSPEC : NfProto.IPV4) })),
    ];
    const replies: Reply[] = [];
    for (let i = 0; i < requests.length; i += this.maxMessages) replies.push(...(await this.exchange(requests.slice(i, i + this.maxMessages))));
    const known = new Map<string, SetInfo | null>();
    const first = ops[0] as IpsetOp;
    for (const [i, name] of names.entries()) {
      const r = replies[i] ?? { errno: Errno.ETIMEDOUT, parts: [] };
      if (r.errno === Errno.ENOENT) {
        known.set(name, null);
        continue;
      }
      if (r.errno !== 0) return opError(first, 0, r.errno, { op: 'header' });
      const part = r.parts[0];
      if (!part) return opError(first, 0, Errno.ETIMEDOUT, { op: 'header' });
      const h = decodeHeaderReply(part.payload);
      known.set(name, { typeName: h.typeName, type: isIpsetType(h.typeName) ? h.typeName : undefined, family: familyOf(h.family) });
    }
    for (const [j, type] of types.entries()) {
      const r = replies[names.length + j];
      const part = r?.parts[0];
      // A type the kernel lacks keeps our preference: its create then fails with "not supported".
      if (!r || r.errno !== 0 || !part) continue;
      const offer = decodeTypeReply(part.payload);
      this.revisions.set(type, Math.max(offer.revisionMin, Math.min(PREFERRED_REVISION[type], offer.revision)));
    }
    return known;
  }

  /** Ops → requests, following what each op does to the sets; stops at the first op refused here. */
  private plan(ops: readonly IpsetOp[], known: Map<string, SetInfo | null>): { messages: Message[]; refusal?: Refusal } {
    const messages: Message[] = [];
    const refuse = (index: number, code: 'INVALID' | 'NOT_FOUND', reason: string): { messages: Message[]; refusal: Refusal } => {
      const op = ops[index] as IpsetOp;
      return { messages, refusal: { index, error: new DataplaneError(code, 'ipset', op.kind, ipsetOpObject(op), reason, index) } };
    };
    // The bulk being built: consecutive adds (or dels) of one set.
    let run: { kind: 'add' | 'del'; name: string; type: IpsetType; first: number; elements: Buffer[]; bytes: number } | undefined;
    const closeRun = (): void => {
      if (!run) return;
      const cmd = run.kind === 'add' ? IpsetCmd.ADD : IpsetCmd.DEL;
      messages.push({
        cmd,
        payload: encodeAdt(this.protocol, cmd, run.name, run.elements),
        first: run.first,
        count: run.elements.length,
        // A del of a valid element from an existing hash set cannot fail; a bitmap checks its range.
        risky: run.kind === 'add' || run.type === 'bitmap:port',
        ctx: { op: run.kind, type: run.type },
      });
      run = undefined;
    };
    for (const [i, op] of ops.entries()) {
      const problem = ipsetOpProblem(op);
      if (problem !== undefined) {
        closeRun();
        return refuse(i, 'INVALID', `Syntax error: ${problem}`);
      }
      if (op.kind === 'create') {
        closeRun();
        const type = op.spec.type;
        messages.push({
          cmd: IpsetCmd.CREATE,
          payload: encodeCreate(this.protocol, op.spec, this.revisions.get(type) ?? PREFERRED_REVISION[type]),
          first: i,
          count: 1,
          risky: true,
          ctx: { op: 'create', type },
        });
        // Over an existing set the kernel keeps it (family and hashsize are not compared).
        if (!known.get(op.spec.name)) known.set(op.spec.name, { typeName: type, type, family: familyOf(specFamily(op.spec)) });
        continue;
      }
      if (op.kind === 'destroy') {
        closeRun();
        messages.push({ cmd: IpsetCmd.DESTROY, payload: encodeDestroy(this.protocol, op.name), first: i, count: 1, risky: true, ctx: { op: 'destroy' } });
        known.set(op.name, null);
        continue;
      }
      const info = known.get(op.name);
      if (!info) {
        closeRun();
        return refuse(i, 'NOT_FOUND', 'The set with the given name does not exist');
      }
      if (op.kind === 'flush') {
        closeRun();
        messages.push({ cmd: IpsetCmd.FLUSH, payload: encodeFlush(this.protocol, op.name), first: i, count: 1, risky: false, ctx: { op: 'flush', type: info.type } });
        continue;
      }
      if (info.type === undefined) {
        closeRun();
        return refuse(i, 'INVALID', `Syntax error: set ${op.name} is of type ${info.typeName}, which kube-ipvs does not handle`);
      }
      const parsed = entryElement(info.type, op.entry, info.family);
      if (!parsed) {
        closeRun();
        return refuse(i, 'INVALID', `Syntax error: invalid ${info.type} entry ${JSON.stringify(op.entry)}`);
      }
      if (run && (run.kind !== op.kind || run.name !== op.name || run.bytes >= MAX_ADT_BYTES - 128)) closeRun();
      run ??= { kind: op.kind, name: op.name, type: info.type, first: i, elements: [], bytes: 0 };
      const el = encodeElement(info.type, parsed.element, run.elements.length + 1);
      run.elements.push(el);
      run.bytes += el.length;
    }
    closeRun();
    return { messages };
  }

  // ---- transport -----------------------------------------------------------------------------

  /** One request at a time per socket: a second dump while one runs would fail with EBUSY. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async single(req: Request): Promise<Reply> {
    const [r] = await this.exchange([req]);
    return r ?? { errno: Errno.ETIMEDOUT, parts: [] };
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  /** Sends the requests in one datagram and waits until each completes (ACK, ERROR or DONE). */
  private exchange(requests: readonly Request[]): Promise<Reply[]> {
    if (requests.length === 0) return Promise.resolve([]);
    if (this.closed) return Promise.resolve(requests.map(() => ({ errno: CLOSED_ERRNO, parts: [] })));
    return new Promise<Reply[]>((resolveAll) => {
      const replies = new Array<Reply | undefined>(requests.length);
      const seqs: number[] = [];
      let remaining = requests.length;
      let timer: NodeJS.Timeout | undefined;
      const touch = (): void => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          for (const s of seqs) this.pending.get(s)?.finish(Errno.ETIMEDOUT);
        }, this.timeoutMs);
      };
      const bufs: Buffer[] = [];
      requests.forEach((req, i) => {
        const seq = this.nextSeq();
        seqs.push(seq);
        const p: Pending = {
          parts: [],
          touch,
          finish: (errno, lineno) => {
            if (!this.pending.delete(seq)) return;
            replies[i] = lineno === undefined ? { errno, parts: p.parts } : { errno, lineno, parts: p.parts };
            if (--remaining === 0) {
              if (timer) clearTimeout(timer);
              resolveAll(replies.map((r) => r ?? { errno: Errno.ETIMEDOUT, parts: [] }));
            }
          },
        };
        this.pending.set(seq, p);
        bufs.push(encodeNlMessage({ type: req.type, flags: req.flags, seq, pid: this.transport.localPort, payload: req.payload }));
      });
      touch();
      this.transport.send(bufs.length === 1 && bufs[0] ? bufs[0] : Buffer.concat(bufs)).catch((e: unknown) => {
        const errno = hasErrno(e) ? Math.abs(e.errno) : Errno.EMSGSIZE;
        for (const s of seqs) this.pending.get(s)?.finish(errno);
      });
    });
  }

  private onDatagram(datagram: Buffer, fromPort: number): void {
    if (fromPort !== 0) return; // only the kernel answers us
    let msgs: NlMessage[];
    try {
      msgs = parseNlMessages(datagram);
    } catch {
      return; // a malformed datagram cannot be attributed; its requests time out
    }
    for (const m of msgs) {
      const p = this.pending.get(m.seq);
      if (!p) continue; // e.g. a late ack after a timeout
      p.touch();
      if (m.type === NlMsgType.ERROR) {
        const e = parseIpsetNlError(m.payload);
        p.finish(e.errno, e.lineno);
      } else if (m.type === NlMsgType.DONE) {
        p.finish(parseDoneErrno(m.payload));
      } else if (m.type !== NlMsgType.NOOP && m.type !== NlMsgType.OVERRUN) {
        // Data: a dump part, or a doit reply that its ACK follows (we always ask for ACKs).
        p.parts.push(m);
      }
    }
  }

  private onSocketError(errno: number): void {
    if (errno !== Errno.ENOBUFS) {
      this.failAll(errno || Errno.ENOBUFS);
      return;
    }
    // Replies queued after the overflow are still readable; give them a moment, then the rest are lost.
    if (this.overrunTimer) return;
    this.overrunTimer = setTimeout(() => {
      this.overrunTimer = undefined;
      this.failAll(Errno.ENOBUFS);
    }, OVERRUN_GRACE_MS);
  }

  private failAll(errno: number): void {
    for (const p of [...this.pending.values()]) p.finish(errno);
  }
}

/** Messages → datagrams within the byte and ack budgets, each ending at its first risky message. */
export function* datagrams<M extends { readonly payload: Buffer; readonly risky: boolean }>(messages: readonly M[], maxBytes: number, maxMessages: number): Generator<M[]> {
  let cur: M[] = [];
  let bytes = 0;
  for (const m of messages) {
    // nlmsghdr (16) + payload, padded to 4.
    const size = (16 + m.payload.length + 3) & ~3;
    if (cur.length > 0 && (bytes + size > maxBytes || cur.length >= maxMessages)) {
      yield cur;
      cur = [];
      bytes = 0;
    }
    cur.push(m);
    bytes += size;
    if (m.risky) {
      yield cur;
      cur = [];
      bytes = 0;
    }
  }
  if (cur.length > 0) yield cur;
}
