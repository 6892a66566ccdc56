// Request/reply correlation over one netlink socket, shared by the IPVS and ipset speakers: each
// request gets a sequence number, many go in one datagram, and each completes on its ACK, ERROR
// or DONE (in a group of writes, on the group's one ACK: exchangeWrites). Protocol specifics stay
// with the caller: a reply keeps the ERROR payload (ipset puts the failed element's LINENO there)
// and the or-ed message flags (IPVS dumps watch DUMP_INTR).
import { Errno } from './errno.js';
import type { NlMessage } from './framing.js';
import { NlMsgType, NlmF, encodeNlMessage, nlMessageSize, parseNlError, parseNlMessages } from './framing.js';
import type { NetlinkTransport } from './transport.js';
import { hasErrno } from './transport.js';

export interface NetlinkRequest {
  readonly type: number;
  readonly flags: number;
  readonly payload: Buffer;
  /**
   * Takes each data part as it arrives, instead of the reply's `parts` keeping them all (left
   * empty then). A dump of thousands of parts kept to its end outlives young-generation
   * collections and goes to V8's old generation; parts handled one by one die young. Must not throw.
   */
  readonly onPart?: (part: NlMessage) => void;
}

export interface NetlinkReply {
  /** Positive errno, 0 on success; CLOSED_ERRNO when the socket was closed. */
  readonly errno: number;
  /** Data: the parts of a dump, or a doit reply that its ACK followed. */
  readonly parts: readonly NlMessage[];
  /** nlmsg_flags of every message of this reply, or-ed. */
  readonly flags: number;
  /** The NLMSG_ERROR payload that ended the request; absent after DONE, a timeout or a local failure. */
  readonly error?: Buffer;
}

/** Reply errno meaning "our socket was closed"; never a kernel value. */
export const CLOSED_ERRNO = -1;

export const TIMED_OUT: NetlinkReply = { errno: Errno.ETIMEDOUT, parts: [], flags: 0 };

export interface NetlinkRequesterOptions {
  /** Give up on a request when the kernel stays silent this long (reset by each reply part). */
  readonly timeoutMs: number;
  /** At most this many requests per datagram, whatever the receive buffer would allow. */
  readonly maxMessagesPerDatagram: number;
}

/**
 * Kernel memory one queued acknowledgement costs in our receive buffer (skb truesize, generous):
 * a datagram's acks are all queued during the one sendmsg, and those that do not fit are dropped.
 */
const ACK_COST_BYTES = 2048;
/**
 * The dump datagram size a socket gets once it has read a datagram this large: netlink_recvmsg
 * records the largest read as max_recvmsg_len, capped at SKB_WITH_OVERHEAD(32768), and
 * netlink_dump allocates that much per datagram (net/netlink/af_netlink.c).
 */
const LARGE_DUMP_BYTES = 32 * 1024;
/**
 * Below this receive buffer the echo of a LARGE_DUMP_BYTES request (an skb of 64 KB truesize) is
 * not worth the risk of an overflow: the binding aborts the process on a failed read.
 */
const LARGE_DUMP_MIN_RCVBUF = 256 * 1024;

/**
 * The payload size of the one refused request whose echo raises a socket's dump datagrams to
 * LARGE_DUMP_BYTES, or undefined when the socket's receive buffer is too small to risk it.
 */
export function largeDumpPayloadBytes(recvBufferSize: number): number | undefined {
  return recvBufferSize < LARGE_DUMP_MIN_RCVBUF ? undefined : LARGE_DUMP_BYTES - nlMessageSize(0);
}
/** Replies still queued behind an ENOBUFS are read within this grace before the rest count as lost. */
const OVERRUN_GRACE_MS = 100;

interface Pending {
  readonly parts: NlMessage[];
  readonly onPart: ((part: NlMessage) => void) | undefined;
  flags: number;
  readonly finish: (errno: number, error?: Buffer) => void;
  readonly touch: () => void;
}

export class NetlinkRequester {
  /** Requests one datagram may carry without its acks overflowing our receive buffer. */
  readonly maxMessages: number;
  private readonly timeoutMs: number;
  private readonly pending = new Map<number, Pending>();
  private seq = Math.floor(Math.random() * 0x10000);
  private queue: Promise<unknown> = Promise.resolve();
  private overrunTimer: NodeJS.Timeout | undefined;
  /** ENOBUFS reports so far: a group of writes sent before one cannot trust its one ACK. */
  private overruns = 0;
  private closed = false;
  private dumpsEnlarged = false;

  constructor(
    private readonly transport: NetlinkTransport,
    opts: NetlinkRequesterOptions,
  ) {
    this.timeoutMs = opts.timeoutMs;
    this.maxMessages = Math.max(1, Math.min(opts.maxMessagesPerDatagram, Math.floor(transport.recvBufferSize / ACK_COST_BYTES)));
    transport.listen(
      (d, port) => this.onDatagram(d, port),
      (errno) => this.onSocketError(errno),
    );
  }

  /** One operation at a time per socket: a second dump while one runs would fail with EBUSY. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async single(req: NetlinkRequest): Promise<NetlinkReply> {
    const [r] = await this.exchange([req]);
    return r ?? TIMED_OUT;
  }

  /** Sends the requests in one datagram and waits until each completes; one reply per request, in order. */
  exchange(requests: readonly NetlinkRequest[]): Promise<NetlinkReply[]> {
    return this.send(requests, false);
  }

  /**
   * Write requests (commands whose only answer is an acknowledgement) in one datagram, acknowledged
   * as a group: only the last asks for an ACK. The kernel runs a datagram's messages in order and
   * answers a failed one with an ERROR whether or not it asked (netlink_rcv_skb, net/netlink/
   * af_netlink.c), queued before the next message runs; so when the last one's reply is read,
   * every earlier request without an ERROR of its own succeeded. That spares the kernel an ack per
   * message and us a read of each (150,000 of them in a big cluster's first sync). When the group
   * ACK does not come (timeout, a closed socket) or an ENOBUFS may have dropped an ERROR, the
   * earlier requests share the last one's failure: their outcome is unknown.
   */
  exchangeWrites(requests: readonly NetlinkRequest[]): Promise<NetlinkReply[]> {
    return this.send(requests, true);
  }

  private send(requests: readonly NetlinkRequest[], groupAck: boolean): Promise<NetlinkReply[]> {
    if (requests.length === 0) return Promise.resolve([]);
    if (this.closed) return Promise.resolve(requests.map(() => ({ errno: CLOSED_ERRNO, parts: [], flags: 0 })));
    return new Promise<NetlinkReply[]>((resolveAll) => {
      const replies = new Array<NetlinkReply | undefined>(requests.length);
      const seqs: number[] = [];
      let remaining = requests.length;
      // The silence timeout: each reply part only notes the time (a dump brings thousands of
      // parts; re-arming a timer for each was a measurable share of a sync under emulation), and
      // the one timer, when it fires early, waits out the rest.
      let lastHeard = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const onTimer = (): void => {
        const left = lastHeard + this.timeoutMs - performance.now();
        if (left > 0) {
          timer = setTimeout(onTimer, left);
          return;
        }
        timer = undefined;
        for (const s of seqs) this.pending.get(s)?.finish(Errno.ETIMEDOUT);
      };
      const touch = (): void => {
        lastHeard = performance.now();
      };
      const bufs: Buffer[] = [];
      const last = requests.length - 1;
      const overrunsAtSend = this.overruns;
      requests.forEach((req, i) => {
        const seq = this.nextSeq();
        seqs.push(seq);
        const p: Pending = {
          parts: [],
          onPart: req.onPart,
          flags: 0,
          touch,
          finish: (errno, error) => {
            if (!this.pending.delete(seq)) return;
            replies[i] = error === undefined ? { errno, parts: p.parts, flags: p.flags } : { errno, parts: p.parts, flags: p.flags, error };
            // The group's ACK (or its last request's own ERROR) settles the requests before it.
            if (groupAck && i === last) {
              const fromKernel = error !== undefined;
              const settled = !fromKernel ? errno : this.overruns === overrunsAtSend ? 0 : Errno.ENOBUFS;
              for (const s of seqs) this.pending.get(s)?.finish(settled);
            }
            if (--remaining === 0) {
              if (timer) clearTimeout(timer);
              resolveAll(replies.map((r) => r ?? TIMED_OUT));
            }
          },
        };
        this.pending.set(seq, p);
        const flags = !groupAck ? req.flags : i === last ? req.flags | NlmF.ACK : req.flags & ~NlmF.ACK;
        bufs.push(encodeNlMessage({ type: req.type, flags, seq, pid: this.transport.localPort, payload: req.payload }));
      });
      timer = setTimeout(onTimer, this.timeoutMs);
      this.transport.send(bufs.length === 1 && bufs[0] ? bufs[0] : Buffer.concat(bufs)).catch((e: unknown) => {
        const errno = hasErrno(e) ? Math.abs(e.errno) : Errno.EMSGSIZE;
        for (const s of seqs) this.pending.get(s)?.finish(errno);
      });
    });
  }

  /**
   * Raises this socket's dump datagrams from about a page to LARGE_DUMP_BYTES, once. The kernel
   * sizes them by the largest read the socket has made, and the binding reads each datagram with
   * exactly its size, so they stay a page unless a larger one arrives. `refused(payloadBytes)` is a
   * request with that much payload which the kernel refuses before it reads it; its ERROR echoes it
   * whole (there is no NETLINK_CAP_ACK on our sockets), and reading that echo is the large read.
   * Eight times fewer datagrams per dump: fewer reads, and for a dump that walks its table from
   * the start for each datagram (IPVS virtual servers), eight times less walking.
   * Returns the errno the refused request got (0 when skipped: a receive buffer too small).
   */
  async enlargeDumps(refused: (payloadBytes: number) => NetlinkRequest): Promise<number> {
    const payloadBytes = largeDumpPayloadBytes(this.transport.recvBufferSize);
    if (this.dumpsEnlarged || payloadBytes === undefined) return 0;
    this.dumpsEnlarged = true;
    return (await this.single(refused(payloadBytes))).errno;
  }

  /** Closes the socket; requests in flight complete with CLOSED_ERRNO. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.overrunTimer) clearTimeout(this.overrunTimer);
    this.failAll(CLOSED_ERRNO);
    this.transport.close();
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  private onDatagram(datagram: Buffer, fromPort: number): void {
    if (fromPort !== 0) return; // only the kernel answers us
    let msgs: NlMessage[];
    try {
      msgs = parseNlMessages(datagram, (detail) => new Error(detail));
    } catch {
      return; // a malformed datagram cannot be attributed; its requests time out
    }
    for (const m of msgs) {
      const p = this.pending.get(m.seq);
      if (!p) continue; // e.g. a late ack after a timeout
      p.touch();
      p.flags |= m.flags;
      if (m.type === NlMsgType.ERROR) p.finish(parseNlError(m.payload), m.payload);
      else if (m.type === NlMsgType.DONE) p.finish(parseNlError(m.payload));
      // Data: a dump part, or a doit reply that its ACK follows (callers always ask for ACKs).
      else if (m.type !== NlMsgType.NOOP && m.type !== NlMsgType.OVERRUN) {
        if (p.onPart) p.onPart(m);
        else p.parts.push(m);
      }
    }
  }

  private onSocketError(errno: number): void {
    if (errno === Errno.ENOBUFS) this.overruns++;
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

/**
 * Messages → datagrams within the byte and ack budgets; a `risky` message (one that may fail in
 * a way not checked beforehand) ends its datagram, since the kernel runs every message of a
 * datagram even after one fails. One message may exceed maxBytes on its own.
 */
export function* datagrams<M extends { readonly payload: Buffer; readonly risky?: boolean }>(messages: readonly M[], maxBytes: number, maxMessages: number): Generator<M[]> {
  let cur: M[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = nlMessageSize(m.payload.length);
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
