// The ipset subsystem over NETLINK_NETFILTER, without the ipset binary: one socket, requests
// framed by netlink-codec.ts, many per datagram, each acknowledged by seq. Spawning `ipset
// restore` cost ~60 ms of CPU per endpoint change; a request here costs tens of microseconds.
//
// The kernel runs every message of a datagram even after one fails, while the backend contract
// stops at the first failure. So a datagram ends after any message that may fail in a way not
// checked beforehand (create, destroy, a bulk add, a bulk del on a bitmap); before sending, the
// sets' headers are read (HEADER) so that missing sets and entries that do not fit a set's type
// or family are refused here, like ipset does in userspace and like the fake does.
//
// A set's header is read once: what a successful batch, a HEADER or a dump showed is kept, so a
// steady-state sync (one del and one add) is one round trip, not two. A set changed behind our
// back costs at worst one failed batch: a failure forgets the sets it may concern (see applyOps),
// and the next batch reads them again.
import type { IpsetFamily, IpsetState } from '../../model/kernel.js';
import type { IpsetType } from '../../model/names.js';
import { DataplaneError } from '../errors.js';
import type { NetlinkReply, NetlinkRequest } from '../netlink/requester.js';
import { CLOSED_ERRNO, NetlinkRequester, TIMED_OUT, datagrams } from '../netlink/requester.js';
import type { NetlinkTransport } from '../netlink/transport.js';
import { NETLINK_NETFILTER, openRawNetlink } from '../netlink/transport.js';
import type { IpsetApplyResult, IpsetBackend, IpsetOp } from './backend.js';
import type { IpsetListMessage } from './netlink-codec.js';
import {
  IPSET_PROTOCOL,
  IPSET_PROTOCOL_MIN,
  IpsetCmd,
  IpsetErrno,
  MAX_ADT_BYTES,
  NfProto,
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
  encodeProtocolRequest,
  encodeSave,
  encodeTypeRequest,
  entryElement,
  ipsetMsgType,
  parseIpsetNlError,
  specFamily,
} from './netlink-codec.js';
import type { IpsetErrorContext } from './netlink-errors.js';
import { Errno, ipsetErrnoInfo } from './netlink-errors.js';
import { ipsetOpObject, ipsetOpProblem } from './restore-script.js';
import { isIpsetType } from '../../model/text/ipset.js';
import { errorMessage } from '../../model/error-text.js';

/** The datagram socket the backend talks through; the real one is a NETLINK_NETFILTER socket. */
export type IpsetNetlinkTransport = NetlinkTransport;

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
const MAX_MESSAGES_PER_DATAGRAM = 256;

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

/** The same SetInfo whether it comes from a HEADER reply, a dump header or a create's spec. */
function setInfo(typeName: string, nfproto: number): SetInfo {
  return { typeName, type: isIpsetType(typeName) ? typeName : undefined, family: familyOf(nfproto) };
}

function opError(op: IpsetOp, index: number, errno: number, ctx: IpsetErrorContext): DataplaneError {
  if (errno === CLOSED_ERRNO) return new DataplaneError('FAILED', 'ipset', op.kind, ipsetOpObject(op), 'the ipset netlink socket was closed', index);
  const { code, reason } = ipsetErrnoInfo(errno, ctx);
  return new DataplaneError(code, 'ipset', op.kind, ipsetOpObject(op), reason, index);
}

/** IPSET_CMD_TYPE for one type (bitmap:port is family-less; the rest are asked for IPv4). */
function typeRequest(protocol: number, type: IpsetType): NetlinkRequest {
  return { type: ipsetMsgType(IpsetCmd.TYPE), flags: NlmF.REQUEST | NlmF.ACK, payload: encodeTypeRequest(protocol, type, type === 'bitmap:port' ? NfProto.UNSPEC : NfProto.IPV4) };
}

export class NetlinkIpset implements IpsetBackend {
  private readonly nl: NetlinkRequester;
  private readonly batchBytes: number;
  /** Revision to create per type, learnt from the kernel (TYPE) on first use. */
  private readonly revisions = new Map<IpsetType, number>();
  /** What the kernel holds under a name (null: absent), as last seen; missing: unknown, ask HEADER. */
  private readonly sets = new Map<string, SetInfo | null>();
  /** Per set name, its last dump as read (payload copies), the set headers and the states decoded from it. */
  private readonly lastDumps = new Map<string, { readonly payloads: readonly Buffer[]; readonly headers: ReadonlyArray<readonly [string, SetInfo]>; readonly states: IpsetState[] }>();
  /** The ipset protocol version every request carries (negotiated by open()). */
  protocol = IPSET_PROTOCOL;

  private constructor(transport: IpsetNetlinkTransport, opts: NetlinkIpsetOptions) {
    this.nl = new NetlinkRequester(transport, { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, maxMessagesPerDatagram: MAX_MESSAGES_PER_DATAGRAM });
    this.batchBytes = opts.batchBytes ?? DEFAULT_BATCH_BYTES;
  }

  /**
   * Opens the socket and negotiates the protocol (IPSET_CMD_PROTOCOL). Rejects with UNAVAILABLE
   * or PERMISSION, with a reason fit for a log line, when ipset cannot be spoken over netlink here.
   */
  static async open(opts: NetlinkIpsetOptions = {}): Promise<NetlinkIpset> {
    let transport: IpsetNetlinkTransport;
    try {
      transport = opts.transport ?? openRawNetlink(NETLINK_NETFILTER, { recvBufferSize: opts.recvBufferSize ?? 4 << 20, sendBufferSize: opts.sendBufferSize ?? 1 << 20 });
    } catch (e) {
      const why = errorMessage(e);
      throw new DataplaneError('UNAVAILABLE', 'ipset', 'open', 'netlink', `cannot open a NETLINK_NETFILTER socket: ${why}`);
    }
    const backend = new NetlinkIpset(transport, opts);
    try {
      backend.protocol = await backend.negotiate();
      // Every type's revision now, not at the first create: asking makes the kernel load the
      // type's module, which under emulation took 2 s of a first sync's API-server pass. The
      // daemon opens the dataplane while its first API lists are out.
      // Unanswered types are asked again at their first create.
      await backend.nl.serial(() => backend.learnRevisions(Object.keys(PREFERRED_REVISION) as IpsetType[])).catch(() => undefined);
    } catch (e) {
      backend.close();
      throw e;
    }
    return backend;
  }

  /** Closes the socket; requests in flight fail. */
  close(): void {
    this.nl.close();
  }

  observe(names?: readonly string[]): Promise<IpsetState[]> {
    return this.nl.serial(async () => {
      if (names === undefined) return collectIpsetDump(await this.dump(undefined)).sets;
      const out: IpsetState[] = [];
      // One dump per set, like `ipset save NAME`: other sets (foreign, perhaps unreadable) are
      // never read. A name the kernel cannot hold is simply absent.
      for (const name of new Set(names)) {
        if (ipsetOpProblem({ kind: 'flush', name }) !== undefined) continue;
        out.push(...(await this.observeSet(name)));
      }
      return out;
    });
  }

  apply(ops: readonly IpsetOp[]): Promise<IpsetApplyResult> {
    return this.nl.serial(() => this.applyOps(ops));
  }

  // ---- protocol --------------------------------------------------------------------------------

  private async negotiate(): Promise<number> {
    const ask = async (version: number): Promise<NetlinkReply> => this.nl.single({ type: ipsetMsgType(IpsetCmd.PROTOCOL), flags: NlmF.REQUEST | NlmF.ACK, payload: encodeProtocolRequest(version) });
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

  /**
   * One set's state. A full resync reads every set each sync period; while a set's dump is the
   * same bytes as at its last read, the state decoded then is returned again (the same object)
   * instead of decoding each entry anew.
   */
  private async observeSet(name: string): Promise<IpsetState[]> {
    const payloads = await this.savePayloads(name);
    const last = this.lastDumps.get(name);
    if (last && last.payloads.length === payloads.length && last.payloads.every((p, i) => p.equals(payloads[i] as Buffer))) {
      for (const [n, info] of last.headers) this.sets.set(n, info);
      return last.states;
    }
    const messages = this.decodeSave(payloads);
    const states = collectIpsetDump(messages).sets;
    const headers = messages.flatMap((m) => (m.header ? [[m.name, setInfo(m.header.typeName, m.header.family)] as const] : []));
    // Copies: the payloads view datagrams that are not ours to keep.
    this.lastDumps.set(name, { payloads: payloads.map((p) => Buffer.from(p)), headers, states });
    return states;
  }

  /** SAVE of one set (absent → []) or of all sets; what it shows replaces the cached headers. */
  private async dump(name: string | undefined): Promise<IpsetListMessage[]> {
    return this.decodeSave(await this.savePayloads(name));
  }

  /** Decodes SAVE replies, caching the set headers they carry. */
  private decodeSave(payloads: readonly Buffer[]): IpsetListMessage[] {
    const messages = payloads.map((p) => decodeListMessage(p));
    for (const m of messages) if (m.header) this.sets.set(m.name, setInfo(m.header.typeName, m.header.family));
    return messages;
  }

  /** The payloads of a SAVE of one set (absent → []) or of all sets, in the kernel's order. */
  private async savePayloads(name: string | undefined): Promise<Buffer[]> {
    // Forgotten first, so that a failed or unreadable dump leaves them unknown.
    if (name === undefined) this.sets.clear();
    else this.sets.delete(name);
    const r = await this.nl.single({ type: ipsetMsgType(IpsetCmd.SAVE), flags: NlmF.REQUEST | NlmF.DUMP, payload: encodeSave(this.protocol, name) });
    if (r.errno === Errno.ENOENT && name !== undefined) {
      this.sets.set(name, null);
      return [];
    }
    if (r.errno !== 0) {
      const { code, reason } = r.errno === CLOSED_ERRNO ? { code: 'FAILED' as const, reason: 'the ipset netlink socket was closed' } : ipsetErrnoInfo(r.errno, { op: 'list' });
      throw new DataplaneError(code, 'ipset', 'save', name ?? '', reason);
    }
    // The kernel answers SAVE with LIST-typed messages.
    return r.parts.filter((p) => p.type === ipsetMsgType(IpsetCmd.LIST) || p.type === ipsetMsgType(IpsetCmd.SAVE)).map((p) => p.payload);
  }

  // ---- apply ---------------------------------------------------------------------------------

  private async applyOps(ops: readonly IpsetOp[]): Promise<IpsetApplyResult> {
    if (ops.length === 0) return { applied: 0 };
    const known = await this.lookup(ops);
    if (known instanceof DataplaneError) return { applied: 0, error: known };
    // lookup() took the batch's sets out of the cache; they go back once every message sent was
    // acknowledged (plan() leaves in `known` what they are then). After a kernel failure the kernel
    // may have run more of a datagram than `applied` says, and a stale header may be the cause:
    // all are re-read. A refusal here follows only successes; only the refused op's set is re-read.
    const { messages, refusal } = this.plan(ops, known);
    for (const group of datagrams(messages, this.batchBytes, this.nl.maxMessages)) {
      const replies = await this.nl.exchange(group.map((m) => ({ type: ipsetMsgType(m.cmd), flags: NlmF.REQUEST | NlmF.ACK, payload: m.payload })));
      for (const [k, m] of group.entries()) {
        const r = replies[k] ?? TIMED_OUT;
        // Older kernels refuse to destroy a missing set; with -exist that is success (6.18 acks it).
        if (r.errno === 0 || (m.cmd === IpsetCmd.DESTROY && r.errno === Errno.ENOENT)) continue;
        const bulk = m.cmd === IpsetCmd.ADD || m.cmd === IpsetCmd.DEL;
        // The kernel names the failed element of a bulk by its LINENO in the ERROR's copy of our request.
        const lineno = bulk && r.error ? parseIpsetNlError(r.error).lineno : undefined;
        const offset = lineno !== undefined && lineno >= 1 && lineno <= m.count ? lineno - 1 : 0;
        const index = m.first + offset;
        return { applied: index, error: opError(ops[index] as IpsetOp, index, r.errno, m.ctx) };
      }
    }
    for (const [name, info] of known) this.sets.set(name, info);
    if (!refusal) return { applied: ops.length };
    const refused = ops[refusal.index] as IpsetOp;
    this.sets.delete(refused.kind === 'create' ? refused.spec.name : refused.name);
    return { applied: refusal.index, error: refusal.error };
  }

  /**
   * The kernel's view of every set the batch names, taken out of the cache or else read (HEADER),
   * and the revisions of types it creates (TYPE), in one datagram of read-only requests, none when
   * all is known. A failure (EPERM, ...) fails the batch.
   */
  private async lookup(ops: readonly IpsetOp[]): Promise<Map<string, SetInfo | null> | DataplaneError> {
    const known = new Map<string, SetInfo | null>();
    const names: string[] = [];
    const types: IpsetType[] = [];
    const seen = new Set<string>();
    for (const op of ops) {
      const name = op.kind === 'create' ? op.spec.name : op.name;
      if (op.kind === 'create' && isIpsetType(op.spec.type) && !this.revisions.has(op.spec.type) && !types.includes(op.spec.type)) types.push(op.spec.type);
      if (seen.has(name)) continue;
      seen.add(name);
      const cached = this.sets.get(name);
      if (cached !== undefined) {
        known.set(name, cached);
        this.sets.delete(name);
      } else if (ipsetOpProblem({ kind: 'flush', name }) === undefined) {
        // A name the kernel cannot hold is refused by plan(); one check per name, not per op.
        names.push(name);
      }
    }
    const requests: NetlinkRequest[] = [
      ...names.map((n) => ({ type: ipsetMsgType(IpsetCmd.HEADER), flags: NlmF.REQUEST | NlmF.ACK, payload: encodeHeaderRequest(this.protocol, n) })),
      ...types.map((t) => typeRequest(this.protocol, t)),
    ];
    const replies: NetlinkReply[] = [];
    for (let i = 0; i < requests.length; i += this.nl.maxMessages) replies.push(...(await this.nl.exchange(requests.slice(i, i + this.nl.maxMessages))));
    const first = ops[0] as IpsetOp;
    for (const [i, name] of names.entries()) {
      const r = replies[i] ?? TIMED_OUT;
      if (r.errno === Errno.ENOENT) {
        known.set(name, null);
        continue;
      }
      if (r.errno !== 0) return opError(first, 0, r.errno, { op: 'header' });
      const part = r.parts[0];
      if (!part) return opError(first, 0, Errno.ETIMEDOUT, { op: 'header' });
      const h = decodeHeaderReply(part.payload);
      known.set(name, setInfo(h.typeName, h.family));
    }
    for (const [j, type] of types.entries()) this.learnRevision(type, replies[names.length + j]);
    return known;
  }

  /** Asks the kernel which revisions of these types it has (TYPE, read-only) and keeps each answer. */
  private async learnRevisions(types: readonly IpsetType[]): Promise<void> {
    const replies = await this.nl.exchange(types.map((t) => typeRequest(this.protocol, t)));
    types.forEach((t, i) => this.learnRevision(t, replies[i]));
  }

  /** The revision to create a type with: ours, within what the kernel offers (its TYPE reply). */
  private learnRevision(type: IpsetType, r: NetlinkReply | undefined): void {
    const part = r?.parts[0];
    // A type the kernel lacks keeps our preference: its create then fails with "not supported".
    if (!r || r.errno !== 0 || !part) return;
    const offer = decodeTypeReply(part.payload);
    this.revisions.set(type, Math.max(offer.revisionMin, Math.min(PREFERRED_REVISION[type], offer.revision)));
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
        if (!known.get(op.spec.name)) known.set(op.spec.name, setInfo(type, specFamily(op.spec)));
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
}
