// The IPVS kernel speaker: generic netlink requests over a raw netlink socket (npm `netlink`'s
// RawNetlinkSocket), with our own framing so we get errno numbers, sequence matching and batching
// (many doit requests in one datagram; ../netlink/requester.ts, shared with ipset). No ipvsadm at
// run time.
import { runCommand } from '../command.js';
import type { NetlinkReply } from '../netlink/requester.js';
import { CLOSED_ERRNO, NetlinkRequester, datagrams } from '../netlink/requester.js';
import type { NetlinkTransport } from '../netlink/transport.js';
import { openRawNetlink } from '../netlink/transport.js';
import type { IpvsOpName } from './errors.js';
import { Errno, IpvsError, MODULE_HINT } from './errors.js';
import type {
  GenlFamily,
  IpvsDestSpec,
  IpvsInfo,
  IpvsServiceSpec,
  IpvsTimeouts,
  NlMessage,
  ObservedRealServer,
  ObservedVirtualServer,
  ObservedVirtualServerSetup,
} from './netlink-codec.js';
import {
  GENL_ID_CTRL,
  IPVS_GENL_NAME,
  NlmF,
  decodeDest,
  decodeFamily,
  decodeInfo,
  decodeService,
  decodeServiceSetup,
  decodeTimeouts,
  destLabel,
  encodeDelDest,
  encodeDelService,
  encodeFlush,
  encodeGetFamily,
  encodeGetInfo,
  encodeGetService,
  encodeGetTimeouts,
  encodeRefusedCommand,
  encodeListDests,
  encodeListServices,
  encodeNewDest,
  encodeNewService,
  encodeSetDest,
  encodeSetService,
  encodeSetTimeouts,
  encodeZero,
  serviceLabel,
  serviceSetupRange,
} from './netlink-codec.js';

/** One write of a batch. Kinds double as the operation names in errors. */
export type IpvsOp =
  | { readonly kind: 'addService'; readonly vs: IpvsServiceSpec }
  | { readonly kind: 'updateService'; readonly vs: IpvsServiceSpec }
  | { readonly kind: 'deleteService'; readonly vs: IpvsServiceSpec }
  | { readonly kind: 'addDest'; readonly vs: IpvsServiceSpec; readonly rs: IpvsDestSpec }
  | { readonly kind: 'updateDest'; readonly vs: IpvsServiceSpec; readonly rs: IpvsDestSpec }
  | { readonly kind: 'deleteDest'; readonly vs: IpvsServiceSpec; readonly rs: IpvsDestSpec };

export type IpvsOpResult =
  | { readonly op: IpvsOp; readonly ok: true }
  | { readonly op: IpvsOp; readonly ok: false; readonly error: IpvsError };

/** The datagram socket the client talks through; the real one is a NETLINK_GENERIC socket. */
export type { NetlinkTransport } from '../netlink/transport.js';

export interface IpvsNetlinkClientOptions {
  /** Give up on a request when the kernel stays silent this long (default 10 s; reset by each reply part). */
  readonly timeoutMs?: number;
  /** Bytes per batch datagram (default 64 KiB). */
  readonly batchBytes?: number;
  /** Requested SO_RCVBUF (default 4 MiB; the kernel doubles it and caps it at rmem_max unless root). */
  readonly recvBufferSize?: number;
  /** Requested SO_SNDBUF (default 1 MiB; a datagram must fit in it). */
  readonly sendBufferSize?: number;
  /** Loads a kernel module; false disables it. Default: `modprobe -q <module>`. */
  readonly modprobe?: ((module: string) => Promise<void>) | false;
  /** For tests: talk through this instead of a real netlink socket. */
  readonly transport?: NetlinkTransport;
}

const NETLINK_GENERIC = 16;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_BATCH_BYTES = 64 * 1024;
const MAX_MESSAGES_PER_DATAGRAM = 1024;
const DUMP_ATTEMPTS = 3;

function replyError(errno: number, op: IpvsOpName, object: string): IpvsError {
  if (errno === CLOSED_ERRNO) return new IpvsError({ code: 'CLOSED', errno: 0, op, object });
  return IpvsError.fromErrno(errno, op, object);
}

/** The real transport: a NETLINK_GENERIC raw socket. */
export function openGenericNetlink(opts: { recvBufferSize: number; sendBufferSize: number }): NetlinkTransport {
  return openRawNetlink(NETLINK_GENERIC, opts);
}

/** `modprobe -q <module>` (runCommand: never through a shell); failures are ignored (the retry reports them). */
export function runModprobe(module: string): Promise<void> {
  return runCommand(['modprobe', '-q', module], undefined, 10_000).then(
    () => undefined,
    () => undefined,
  );
}

function opObject(op: IpvsOp): string {
  return op.kind === 'addDest' || op.kind === 'updateDest' || op.kind === 'deleteDest'
    ? destLabel(op.vs, op.rs)
    : serviceLabel(op.vs);
}

function encodeOp(op: IpvsOp): Buffer {
  switch (op.kind) {
    case 'addService':
      return encodeNewService(op.vs);
    case 'updateService':
      return encodeSetService(op.vs);
    case 'deleteService':
      return encodeDelService(op.vs);
    case 'addDest':
      return encodeNewDest(op.vs, op.rs);
    case 'updateDest':
      return encodeSetDest(op.vs, op.rs);
    case 'deleteDest':
      return encodeDelDest(op.vs, op.rs);
  }
}

/** Re-labels a codec error with the operation it belongs to. */
function asOpError(e: unknown, op: IpvsOpName, object: string): IpvsError {
  if (e instanceof IpvsError) {
    return e.op === op ? e : new IpvsError({ code: e.code, errno: e.errno, op, object, detail: e.detail, cause: e });
  }
  return new IpvsError({ code: 'UNKNOWN', errno: 0, op, object, detail: String(e), cause: e });
}

/** A listServiceSetups entry: one virtual server's setup bytes and what they decoded to. */
interface SetupEntry {
  readonly bytes: Buffer;
  readonly vs: ObservedVirtualServerSetup | undefined;
}

export class IpvsNetlinkClient {
  private readonly nl: NetlinkRequester;
  private readonly batchBytes: number;
  private readonly modprobe: ((module: string) => Promise<void>) | false;
  private familyId: number | undefined;
  /** The last listServiceSetups' entries, in the kernel's order. */
  private lastSetups: readonly SetupEntry[] = [];

  constructor(opts: IpvsNetlinkClientOptions = {}) {
    this.batchBytes = opts.batchBytes ?? DEFAULT_BATCH_BYTES;
    this.modprobe = opts.modprobe ?? runModprobe;
    const transport =
      opts.transport ??
      openGenericNetlink({ recvBufferSize: opts.recvBufferSize ?? 4 << 20, sendBufferSize: opts.sendBufferSize ?? 1 << 20 });
    this.nl = new NetlinkRequester(transport, { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, maxMessagesPerDatagram: MAX_MESSAGES_PER_DATAGRAM });
  }

  // ---- public API ---------------------------------------------------------------------------

  /** Resolves (again) the IPVS family id, loading ip_vs if it is missing. */
  resolveFamily(): Promise<GenlFamily> {
    return this.nl.serial(() => this.resolve());
  }

  listServices(): Promise<ObservedVirtualServer[]> {
    return this.nl.serial(async () => {
      const parts = await this.dump('listServices', '', encodeListServices());
      const out: ObservedVirtualServer[] = [];
      for (const p of parts) {
        const vs = decodeService(p.payload);
        if (vs) out.push(vs);
      }
      return out;
    });
  }

  /**
   * The virtual servers without their counters, for a resync that reads them every sync period.
   * The kernel lists them in the same order while its table does not change, so an entry whose
   * setup bytes equal those of the entry at its place in the last listing is that listing's
   * object again, not decoded anew: an unchanged table costs a byte comparison per virtual server.
   */
  listServiceSetups(): Promise<ObservedVirtualServerSetup[]> {
    return this.nl.serial(async () => {
      const last = this.lastSetups;
      let next: SetupEntry[] = [];
      // Each part as it arrives: an unchanged table leaves nothing of its datagrams to collect later.
      await this.dumpEach('listServices', '', encodeListServices(), () => (next = []), (p) => {
        const range = serviceSetupRange(p.payload);
        const seen = last[next.length];
        // A copy when decoded anew: the datagram the payload views is not ours to keep.
        const entry: SetupEntry =
          range && seen && seen.bytes.compare(p.payload, range.from, range.to) === 0
            ? seen
            : { bytes: range ? Buffer.from(p.payload.subarray(range.from, range.to)) : Buffer.alloc(0), vs: decodeServiceSetup(p.payload) };
        next.push(entry);
      });
      this.lastSetups = next;
      return next.flatMap((e) => (e.vs ? [e.vs] : []));
    });
  }

  /** One service by identity, or undefined when it does not exist. */
  getService(vs: IpvsServiceSpec): Promise<ObservedVirtualServer | undefined> {
    return this.nl.serial(async () => {
      const object = serviceLabel(vs);
      const payload = this.encode('getService', object, () => encodeGetService(vs));
      try {
        const parts = await this.doit('getService', object, payload);
        const first = parts[0];
        return first ? decodeService(first.payload) : undefined;
      } catch (e) {
        if (e instanceof IpvsError && e.code === 'ESRCH') return undefined;
        throw e;
      }
    });
  }

  /** Real servers of a virtual server. Empty, not an error, when the virtual server does not exist. */
  listDestinations(vs: IpvsServiceSpec): Promise<ObservedRealServer[]> {
    return this.nl.serial(async () => {
      const object = serviceLabel(vs);
      const payload = this.encode('listDests', object, () => encodeListDests(vs));
      const parts = await this.dump('listDests', object, payload);
      return parts.map((p) => decodeDest(p.payload, vs.family));
    });
  }

  addService(vs: IpvsServiceSpec): Promise<void> {
    return this.single({ kind: 'addService', vs });
  }

  updateService(vs: IpvsServiceSpec): Promise<void> {
    return this.single({ kind: 'updateService', vs });
  }

  deleteService(vs: IpvsServiceSpec): Promise<void> {
    return this.single({ kind: 'deleteService', vs });
  }

  addDestination(vs: IpvsServiceSpec, rs: IpvsDestSpec): Promise<void> {
    return this.single({ kind: 'addDest', vs, rs });
  }

  updateDestination(vs: IpvsServiceSpec, rs: IpvsDestSpec): Promise<void> {
    return this.single({ kind: 'updateDest', vs, rs });
  }

  deleteDestination(vs: IpvsServiceSpec, rs: IpvsDestSpec): Promise<void> {
    return this.single({ kind: 'deleteDest', vs, rs });
  }

  /** Deletes every virtual server of this network namespace. kube-ipvs never calls it while running. */
  flush(): Promise<void> {
    return this.nl.serial(async () => {
      await this.doit('flush', '', encodeFlush());
    });
  }

  /** Zeroes the counters of one service, or all. */
  zero(vs?: IpvsServiceSpec): Promise<void> {
    return this.nl.serial(async () => {
      const object = vs ? serviceLabel(vs) : '';
      await this.doit('zero', object, this.encode('zero', object, () => encodeZero(vs)));
    });
  }

  getInfo(): Promise<IpvsInfo> {
    return this.nl.serial(async () => decodeInfo(this.onlyReply(await this.doit('getInfo', '', encodeGetInfo()), 'getInfo')));
  }

  /** Sets the global timeouts; a missing or 0 value leaves that timeout unchanged. */
  setTimeouts(t: Partial<IpvsTimeouts>): Promise<void> {
    return this.nl.serial(async () => {
      await this.doit('setTimeouts', '', this.encode('setTimeouts', '', () => encodeSetTimeouts(t)));
    });
  }

  getTimeouts(): Promise<IpvsTimeouts> {
    return this.nl.serial(async () =>
      decodeTimeouts(this.onlyReply(await this.doit('getTimeouts', '', encodeGetTimeouts()), 'getTimeouts')),
    );
  }

  /**
   * Runs the writes in order, many per datagram: one result per op, in op order; a failed op does
   * not stop the rest and nothing is rolled back (IPVS commits each command on its own).
   */
  applyBatch(ops: readonly IpvsOp[]): Promise<IpvsOpResult[]> {
    // A partial sync often has nothing to create or prune: no queue turn for an empty batch.
    if (ops.length === 0) return Promise.resolve([]);
    return this.nl.serial(() => this.batch(ops));
  }

  /** Closes the socket; requests in flight fail with CLOSED. */
  close(): void {
    this.nl.close();
  }

  // ---- requests -----------------------------------------------------------------------------

  private async single(op: IpvsOp): Promise<void> {
    const [r] = await this.applyBatch([op]);
    if (r && !r.ok) throw r.error;
  }

  private encode(op: IpvsOpName, object: string, fn: () => Buffer): Buffer {
    try {
      return fn();
    } catch (e) {
      throw asOpError(e, op, object);
    }
  }

  private onlyReply(parts: readonly NlMessage[], op: IpvsOpName): Buffer {
    const first = parts[0];
    if (!first) throw new IpvsError({ code: 'PROTOCOL', errno: 0, op, object: '', detail: 'no reply from the kernel' });
    return first.payload;
  }

  private async familyIdOrResolve(): Promise<number> {
    if (this.familyId !== undefined) return this.familyId;
    return (await this.resolve()).id;
  }

  /** The family id, with resolution failures reported as failures of `op`. */
  private async familyIdFor(op: IpvsOpName, object: string): Promise<number> {
    try {
      return await this.familyIdOrResolve();
    } catch (e) {
      throw asOpError(e, op, object);
    }
  }

  private async resolve(): Promise<GenlFamily> {
    this.familyId = undefined;
    const ask = (): Promise<NetlinkReply> => this.nl.single({ type: GENL_ID_CTRL, flags: NlmF.REQUEST | NlmF.ACK, payload: encodeGetFamily(IPVS_GENL_NAME) });
    let r = await ask();
    if (r.errno === Errno.ENOENT && this.modprobe) {
      await this.modprobe('ip_vs');
      r = await ask();
    }
    if (r.errno === Errno.ENOENT) {
      throw new IpvsError({ code: 'UNAVAILABLE', errno: Errno.ENOENT, op: 'resolveFamily', object: '', detail: MODULE_HINT });
    }
    if (r.errno !== 0) throw replyError(r.errno, 'resolveFamily', '');
    const first = r.parts[0];
    if (!first) throw new IpvsError({ code: 'PROTOCOL', errno: 0, op: 'resolveFamily', object: '', detail: 'empty controller reply' });
    const family = decodeFamily(first.payload);
    this.familyId = family.id;
    return family;
  }

  /**
   * After ENOENT from an IPVS request: true when the family id we used is stale (ip_vs was
   * reloaded), so the request deserves one retry with the new id.
   */
  private async familyMoved(usedId: number): Promise<boolean> {
    const now = await this.resolve();
    return now.id !== usedId;
  }

  private async movedFor(usedId: number, op: IpvsOpName, object: string): Promise<boolean> {
    try {
      return await this.familyMoved(usedId);
    } catch (e) {
      throw asOpError(e, op, object);
    }
  }

  private async doit(op: IpvsOpName, object: string, payload: Buffer): Promise<readonly NlMessage[]> {
    for (let attempt = 0; ; attempt++) {
      const id = await this.familyIdFor(op, object);
      const [r] = await this.nl.exchange([{ type: id, flags: NlmF.REQUEST | NlmF.ACK, payload }]);
      if (!r) throw new IpvsError({ code: 'PROTOCOL', errno: 0, op, object, detail: 'no reply' });
      if (r.errno === 0) return r.parts;
      if (r.errno === Errno.ENOENT && attempt === 0 && (await this.movedFor(id, op, object))) continue;
      throw replyError(r.errno, op, object);
    }
  }

  private async dump(op: IpvsOpName, object: string, payload: Buffer): Promise<readonly NlMessage[]> {
    let parts: NlMessage[] = [];
    await this.dumpEach(op, object, payload, () => (parts = []), (p) => parts.push(p));
    return parts;
  }

  /**
   * A dump whose parts go to `consume` as they arrive. `begin` runs before each attempt: a dump the
   * kernel marks interrupted (the table changed meanwhile) is read again from its start.
   */
  private async dumpEach(op: IpvsOpName, object: string, payload: Buffer, begin: () => void, consume: (part: NlMessage) => void): Promise<void> {
    let movedRetry = false;
    for (let attempt = 0; attempt < DUMP_ATTEMPTS; attempt++) {
      const id = await this.familyIdFor(op, object);
      // Once per socket: IPVS walks its service table from the start for every dump datagram
      // (ip_vs_genl_dump_services), so at a page per datagram a listing of 15,000 virtual servers
      // walks it about a thousand times. Any outcome is fine: it only sizes later dumps.
      await this.nl.enlargeDumps((bytes) => ({ type: id, flags: NlmF.REQUEST | NlmF.ACK, payload: encodeRefusedCommand(bytes) }));
      begin();
      const [r] = await this.nl.exchange([{ type: id, flags: NlmF.REQUEST | NlmF.DUMP, payload, onPart: consume }]);
      if (!r) throw new IpvsError({ code: 'PROTOCOL', errno: 0, op, object, detail: 'no reply' });
      if (r.errno === Errno.ENOENT && !movedRetry && (await this.movedFor(id, op, object))) {
        movedRetry = true;
        attempt--;
        continue;
      }
      if (r.errno !== 0) throw replyError(r.errno, op, object);
      // NLM_F_DUMP_INTR: the table changed while the dump ran; read it again.
      if (!(r.flags & NlmF.DUMP_INTR)) return;
    }
    throw new IpvsError({ code: 'EBUSY', errno: Errno.EBUSY, op, object, detail: 'the table kept changing during the dump; try again' });
  }

  private async batch(ops: readonly IpvsOp[]): Promise<IpvsOpResult[]> {
    const results: (IpvsOpResult | undefined)[] = new Array<IpvsOpResult | undefined>(ops.length);
    const todo: { index: number; payload: Buffer }[] = [];
    ops.forEach((op, index) => {
      try {
        todo.push({ index, payload: encodeOp(op) });
      } catch (e) {
        results[index] = { op, ok: false, error: asOpError(e, op.kind, opObject(op)) };
      }
    });
    const failAllWith = (e: unknown): IpvsOpResult[] =>
      ops.map((op, i) => results[i] ?? { op, ok: false, error: asOpError(e, op.kind, opObject(op)) });

    let id: number;
    try {
      id = await this.familyIdOrResolve();
    } catch (e) {
      return failAllWith(e);
    }
    let errnos = await this.runChunks(id, todo);
    // A stale family id fails every request with ENOENT; if the id moved, rerun those once.
    const enoent = todo.filter((_, i) => errnos[i] === Errno.ENOENT);
    let resolveError: unknown;
    if (enoent.length > 0) {
      try {
        if ((await this.familyMoved(id)) && this.familyId !== undefined) {
          const again = await this.runChunks(this.familyId, enoent);
          const byIndex = new Map(enoent.map((t, i) => [t.index, again[i] ?? Errno.ETIMEDOUT]));
          errnos = todo.map((t, i) => byIndex.get(t.index) ?? errnos[i] ?? 0);
        }
      } catch (e) {
        resolveError = e; // e.g. ip_vs unloaded meanwhile: report that on the ENOENT ops
      }
    }
    todo.forEach((t, i) => {
      const op = ops[t.index];
      if (!op) return;
      const errno = errnos[i] ?? 0;
      if (errno === 0) results[t.index] = { op, ok: true };
      else if (errno === Errno.ENOENT && resolveError !== undefined) {
        results[t.index] = { op, ok: false, error: asOpError(resolveError, op.kind, opObject(op)) };
      } else results[t.index] = { op, ok: false, error: replyError(errno, op.kind, opObject(op)) };
    });
    return ops.map((op, i) => results[i] ?? { op, ok: true });
  }

  /**
   * Sends the payloads in datagrams within the byte and ack budgets (the budget still counts an
   * ERROR per message: every one may fail); each datagram is acknowledged as a group. Returns one
   * errno per payload.
   */
  private async runChunks(id: number, items: readonly { payload: Buffer }[]): Promise<number[]> {
    const errnos: number[] = [];
    for (const chunk of datagrams(items, this.batchBytes, this.nl.maxMessages)) {
      const replies = await this.nl.exchangeWrites(chunk.map((item) => ({ type: id, flags: NlmF.REQUEST | NlmF.ACK, payload: item.payload })));
      for (const r of replies) errnos.push(r.errno);
    }
    return errnos;
  }
}
