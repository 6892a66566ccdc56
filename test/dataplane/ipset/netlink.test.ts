// NetlinkIpset specifics. Against a scripted kernel (no root): protocol negotiation and its
// failures, how ops are packed into datagrams (nothing after a message that may fail), the failed
// element of a bulk, timeouts, the fallback to the ipset tool, when set headers are (re-)read.
// Against the real kernel in a private netns: what netlink writes is what `ipset save` prints and
// vice versa, foreign sets, sets changed behind its back, and failures the kernel finds deep
// inside a bulk.
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { describe, it } from 'node:test';
import type { IpsetOp } from '../../../src/dataplane/ipset/backend.js';
import type { IpsetNetlinkTransport } from '../../../src/dataplane/ipset/netlink.js';
import { NetlinkIpset } from '../../../src/dataplane/ipset/netlink.js';
import type { NlMessage } from '../../../src/dataplane/ipset/netlink-codec.js';
import { DataAttr, IpsetAttr, IpsetCmd, IpsetErrno, NlMsgType, encodeAttr, encodeNlMessage, parseNlMessages } from '../../../src/dataplane/ipset/netlink-codec.js';
import { openIpsetBackend } from '../../../src/dataplane/ipset/select.js';
import { RealIpset } from '../../../src/dataplane/ipset/real.js';
import { parseIpsetSave, renderIpsetSave } from '../../../src/model/text/ipset.js';
import { add, create, del, destroy, dumpOf, flush, outcome, spec } from './contract.js';
import type { NetlinkHarness } from './netns.js';
import { makeNetlinkHarness, realIpsetSkipReason } from './netns.js';

// ---------------------------------------------------------------------------------------------
// A scripted kernel: answers each request message with what `answer` returns.

type Answer = { errno: number; lineno?: number; data?: Buffer[] } | 'silent';

interface Scripted {
  readonly transport: IpsetNetlinkTransport;
  /** Every datagram sent, as its messages' commands ("HEADER", "ADD", ...). */
  readonly datagrams: string[][];
  /** Every request message sent. */
  readonly requests: NlMessage[];
}

const CMD_NAMES = new Map<number, string>(Object.entries(IpsetCmd).map(([k, v]) => [v, k]));

/** The attributes after nfgenmsg (or from `from`, for a nested one), by type (payload only). */
function attrsOf(payload: Buffer, from = 4): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = from;
  while (off + 4 <= payload.length) {
    const len = payload.readUInt16LE(off);
    out.set(payload.readUInt16LE(off + 2) & 0x3fff, payload.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

function str(b: Buffer | undefined): string {
  return b ? b.subarray(0, Math.max(0, b.indexOf(0))).toString() : '';
}

/** NLMSG_ERROR for `req`: −errno and a copy of the request, its LINENO rewritten when given. */
function errorMessage(req: NlMessage, errno: number, lineno?: number): Buffer {
  const copy = Buffer.from(req.payload);
  if (lineno !== undefined) {
    let off = 4;
    while (off + 4 <= copy.length) {
      const len = copy.readUInt16LE(off);
      if ((copy.readUInt16LE(off + 2) & 0x3fff) === IpsetAttr.LINENO) copy.writeUInt32LE(lineno, off + 4);
      off += (len + 3) & ~3;
    }
  }
  const head = Buffer.alloc(4);
  head.writeInt32LE(-errno);
  const orig = encodeNlMessage({ ...req, payload: copy });
  return encodeNlMessage({ type: NlMsgType.ERROR, flags: errno === 0 ? 0x100 : 0, seq: req.seq, pid: 0, payload: Buffer.concat([head, errno === 0 ? orig.subarray(0, 16) : orig]) });
}

function scripted(answer: (cmd: string, attrs: Map<number, Buffer>, req: NlMessage) => Answer): Scripted {
  const datagrams: string[][] = [];
  const requests: NlMessage[] = [];
  let deliver: (d: Buffer, port: number) => void = () => undefined;
  const transport: IpsetNetlinkTransport = {
    localPort: 4242,
    recvBufferSize: 1 << 20,
    send: (datagram) => {
      const msgs = parseNlMessages(datagram);
      datagrams.push(msgs.map((m) => CMD_NAMES.get(m.type & 0xff) ?? String(m.type)));
      const out: Buffer[] = [];
      for (const m of msgs) {
        requests.push(m);
        const a = answer(CMD_NAMES.get(m.type & 0xff) ?? '', attrsOf(m.payload), m);
        if (a === 'silent') continue;
        for (const d of a.data ?? []) out.push(encodeNlMessage({ type: m.type, flags: 0, seq: m.seq, pid: 0, payload: d }));
        out.push(errorMessage(m, a.errno, a.lineno));
      }
      if (out.length > 0) setImmediate(() => deliver(Buffer.concat(out), 0));
      return Promise.resolve();
    },
    listen: (onDatagram) => {
      deliver = onDatagram;
    },
    close: () => undefined,
  };
  return { transport, datagrams, requests };
}

const u8 = (type: number, v: number): Buffer => encodeAttr(type, Uint8Array.of(v));
const s = (type: number, v: string): Buffer => encodeAttr(type, Buffer.from(`${v}\0`));
const nfgen = Buffer.from([2, 0, 0, 0]);

/** What open() sends: the protocol handshake, then every type's revision in one datagram. */
const OPENING = [['PROTOCOL'], ['TYPE', 'TYPE', 'TYPE', 'TYPE', 'TYPE']];

function protocolReply(protocol: number, min?: number): Buffer {
  return Buffer.concat([nfgen, u8(IpsetAttr.PROTOCOL, protocol), ...(min === undefined ? [] : [u8(IpsetAttr.PROTOCOL_MIN, min)])]);
}

function headerReply(name: string, type: string, family: number): Buffer {
  return Buffer.concat([nfgen, u8(IpsetAttr.PROTOCOL, 7), s(IpsetAttr.SETNAME, name), s(IpsetAttr.TYPENAME, type), u8(IpsetAttr.FAMILY, family), u8(IpsetAttr.REVISION, 7)]);
}

/** A kernel that has the given sets (name → [type, family]) and accepts every write. */
function kernelWith(sets: Record<string, [string, number]>, write: (cmd: string, attrs: Map<number, Buffer>) => Answer = () => ({ errno: 0 })) {
  return (cmd: string, attrs: Map<number, Buffer>): Answer => {
    if (cmd === 'PROTOCOL') return { errno: 0, data: [protocolReply(7, 6)] };
    if (cmd === 'HEADER') {
      const name = str(attrs.get(IpsetAttr.SETNAME));
      const set = sets[name];
      return set ? { errno: 0, data: [headerReply(name, set[0], set[1])] } : { errno: 2 };
    }
    if (cmd === 'TYPE') return { errno: 0, data: [Buffer.concat([nfgen, u8(IpsetAttr.PROTOCOL, 7), u8(IpsetAttr.REVISION, 9), u8(IpsetAttr.PROTOCOL_MIN, 0)])] };
    return write(cmd, attrs);
  };
}

/**
 * A kernel whose sets (name → [type, family]) CREATE and DESTROY change, and the test too (behind
 * the backend's back). Writes to a missing set are ENOENT; an element without a port in a
 * hash:ip,port set is IPSET_ERR_PROTOCOL, as the kernel answers an element encoded for hash:ip.
 * SAVE lists the headers.
 */
function statefulKernel(sets: Record<string, [string, number]>) {
  return kernelWith(sets, (cmd, attrs) => {
    const name = str(attrs.get(IpsetAttr.SETNAME));
    const set = sets[name];
    if (cmd === 'SAVE') {
      if (!attrs.has(IpsetAttr.SETNAME)) return { errno: 0, data: Object.entries(sets).map(([n, [t, f]]) => headerReply(n, t, f)) };
      return set ? { errno: 0, data: [headerReply(name, set[0], set[1])] } : { errno: 2 };
    }
    if (cmd === 'CREATE') {
      sets[name] ??= [str(attrs.get(IpsetAttr.TYPENAME)), attrs.get(IpsetAttr.FAMILY)?.[0] ?? 0];
      return { errno: 0 };
    }
    if (cmd === 'DESTROY') {
      delete sets[name];
      return { errno: 0 };
    }
    if (!set) return { errno: 2 };
    const adt = attrs.get(IpsetAttr.ADT);
    const element = attrsOf(adt ? (attrsOf(adt, 0).get(IpsetAttr.DATA) ?? Buffer.alloc(0)) : Buffer.alloc(0), 0);
    if (set[0] === 'hash:ip,port' && adt && !element.has(DataAttr.PORT)) return { errno: 4097 };
    return { errno: 0 };
  });
}

const CIP = spec('KUBE-CLUSTER-IP', 'hash:ip,port');

describe('NetlinkIpset against a scripted kernel', { skip: endianness() !== 'LE' ? 'fixtures assume a little-endian host' : false }, () => {
  it('negotiates protocol 7 with a kernel offering 6..7 and sends it on every request', async () => {
    const k = scripted(kernelWith({ [CIP.name]: ['hash:ip,port', 2] }));
    const b = await NetlinkIpset.open({ transport: k.transport });
    assert.equal(b.protocol, 7);
    await b.apply([add(CIP.name, '10.0.0.1,tcp:80')]);
    assert.deepEqual(
      k.requests.map((r) => attrsOf(r.payload).get(IpsetAttr.PROTOCOL)?.[0]),
      k.requests.map(() => 7),
    );
    b.close();
  });

  it('falls back to protocol 6 when the kernel refuses 7 (kernels before protocol 7)', async () => {
    const k = scripted((cmd, attrs) => {
      if (attrs.get(IpsetAttr.PROTOCOL)?.[0] !== 6) return { errno: 4097 };
      if (cmd === 'PROTOCOL') return { errno: 0, data: [protocolReply(6)] };
      return kernelWith({ A: ['hash:ip', 2] })(cmd, attrs);
    });
    const b = await NetlinkIpset.open({ transport: k.transport });
    assert.equal(b.protocol, 6);
    assert.deepEqual(outcome(await b.apply([add('A', '1.1.1.1')])), { applied: 1 });
    b.close();
  });

  it('refuses kernels it cannot speak to, with a reason fit for a log line', async () => {
    const cases: [Answer, string, RegExp][] = [
      [{ errno: 22 }, 'UNAVAILABLE', /ip_set kernel module is not loaded/],
      [{ errno: 1 }, 'PERMISSION', /Operation not permitted/],
      [{ errno: 0, data: [protocolReply(9, 8)] }, 'UNAVAILABLE', /protocol 8\.\.9, kube-ipvs 6\.\.7/],
    ];
    for (const [answer, code, reason] of cases) {
      const k = scripted(() => answer);
      await assert.rejects(NetlinkIpset.open({ transport: k.transport }), (e: unknown) => {
        assert.ok(e instanceof Error && 'code' in e);
        assert.equal(e.code, code);
        assert.match(e.message, reason);
        return true;
      });
    }
    const sel = await openIpsetBackend({ netlink: { transport: scripted(() => ({ errno: 22 })).transport } });
    assert.ok(sel.backend instanceof RealIpset);
    assert.match(sel.variant, /^ipset restore \(netlink unavailable: .*ip_set kernel module is not loaded/);
    const ok = await openIpsetBackend({ netlink: { transport: scripted(kernelWith({})).transport } });
    assert.equal(ok.variant, 'netlink (protocol 7)');
    ok.close();
  });

  it('one endpoint change: a HEADER datagram, then one datagram with the bulk del and the bulk add', async () => {
    const k = scripted(kernelWith({ [CIP.name]: ['hash:ip,port', 2] }));
    const b = await NetlinkIpset.open({ transport: k.transport });
    const r = await b.apply([del(CIP.name, '10.0.0.1,tcp:80'), del(CIP.name, '10.0.0.2,tcp:80'), add(CIP.name, '10.0.0.3,tcp:80'), add(CIP.name, '10.0.0.4,tcp:80')]);
    assert.deepEqual(outcome(r), { applied: 4 });
    assert.deepEqual(k.datagrams, [...OPENING, ['HEADER'], ['DEL', 'ADD']]);
    // -exist: no NLM_F_EXCL on writes.
    assert.ok(k.requests.every((m) => (m.flags & 0x200) === 0));
    b.close();
  });

  it('ends a datagram after each message that may fail: create, destroy, add, del on a bitmap', async () => {
    const k = scripted(kernelWith({ B: ['bitmap:port', 0], H: ['hash:ip', 2] }));
    const b = await NetlinkIpset.open({ transport: k.transport });
    const ops: IpsetOp[] = [flush('H'), del('H', '1.1.1.1'), del('B', '80'), flush('H'), create(spec('N', 'hash:ip')), add('N', '1.1.1.1'), destroy('X'), flush('B')];
    assert.deepEqual(outcome(await b.apply(ops)), { applied: ops.length });
    assert.deepEqual(k.datagrams.slice(OPENING.length), [['HEADER', 'HEADER', 'HEADER', 'HEADER'], ['FLUSH', 'DEL', 'DEL'], ['FLUSH', 'CREATE'], ['ADD'], ['DESTROY'], ['FLUSH']]);
    // The revision comes from TYPE (the kernel offers 9), capped at what ipset v7.17 creates.
    const createReq = k.requests.find((m) => (m.type & 0xff) === IpsetCmd.CREATE);
    assert.equal(createReq && attrsOf(createReq.payload).get(IpsetAttr.REVISION)?.[0], 6);
    b.close();
  });

  it('a kernel failure inside a bulk names its element: everything before it counts as applied', async () => {
    const k = scripted(kernelWith({ E: ['hash:ip', 2] }, (cmd) => (cmd === 'ADD' ? { errno: 4352, lineno: 3 } : { errno: 0 })));
    const b = await NetlinkIpset.open({ transport: k.transport });
    const r = await b.apply([flush('E'), add('E', '1.1.1.1'), add('E', '1.1.1.2'), add('E', '1.1.1.3'), add('E', '1.1.1.4')]);
    assert.deepEqual(outcome(r), { applied: 3, code: 'FAILED', opIndex: 3 });
    assert.equal(r.error?.message, 'ipset add E 1.1.1.3: Hash is full, cannot add more elements');
    b.close();
  });

  it('splits a large bulk into several ADT messages and indexes failures across them', async () => {
    let adds = 0;
    const k = scripted(kernelWith({ BIG: ['hash:ip', 2] }, (cmd) => (cmd === 'ADD' && ++adds === 3 ? { errno: 4352, lineno: 10 } : { errno: 0 })));
    const b = await NetlinkIpset.open({ transport: k.transport });
    const ops = Array.from({ length: 5000 }, (_, i) => add('BIG', `10.0.${i >> 8}.${i & 255}`));
    const r = await b.apply(ops);
    // Elements per ADD message: each is one DATA attribute inside ADT.
    const perMessage = k.requests
      .filter((m) => (m.type & 0xff) === IpsetCmd.ADD)
      .map((m) => {
        const adt = attrsOf(m.payload).get(IpsetAttr.ADT) ?? Buffer.alloc(0);
        let n = 0;
        for (let off = 0; off + 4 <= adt.length; off += (adt.readUInt16LE(off) + 3) & ~3) n++;
        assert.ok(m.payload.length < 65536);
        return n;
      });
    assert.equal(perMessage.length, 3, String(perMessage));
    // Two whole messages went through; the third failed at its 10th element.
    assert.deepEqual(outcome(r), { applied: (perMessage[0] ?? 0) + (perMessage[1] ?? 0) + 9, code: 'FAILED', opIndex: (perMessage[0] ?? 0) + (perMessage[1] ?? 0) + 9 });
    b.close();
  });

  it('a silent kernel times out as FAILED; the socket stays usable', async () => {
    let silent = true;
    const base = kernelWith({ A: ['hash:ip', 2] });
    const k = scripted((cmd, attrs) => (cmd === 'ADD' && silent ? 'silent' : base(cmd, attrs)));
    const b = await NetlinkIpset.open({ transport: k.transport, timeoutMs: 50 });
    const r = await b.apply([add('A', '1.1.1.1')]);
    assert.deepEqual(outcome(r), { applied: 0, code: 'FAILED', opIndex: 0 });
    assert.match(r.error?.message ?? '', /no answer from the kernel/);
    silent = false;
    assert.deepEqual(outcome(await b.apply([add('A', '1.1.1.1')])), { applied: 1 });
    b.close();
  });

  it('a set read once is not read again: the next endpoint change is one datagram', async () => {
    const k = scripted(kernelWith({ [CIP.name]: ['hash:ip,port', 2] }));
    const b = await NetlinkIpset.open({ transport: k.transport });
    assert.deepEqual(outcome(await b.apply([del(CIP.name, '10.0.0.1,tcp:80'), add(CIP.name, '10.0.0.2,tcp:80')])), { applied: 2 });
    assert.deepEqual(outcome(await b.apply([del(CIP.name, '10.0.0.2,tcp:80'), add(CIP.name, '10.0.0.3,tcp:80')])), { applied: 2 });
    assert.deepEqual(outcome(await b.apply([flush(CIP.name)])), { applied: 1 });
    assert.deepEqual(k.datagrams, [...OPENING, ['HEADER'], ['DEL', 'ADD'], ['DEL', 'ADD'], ['FLUSH']]);
    b.close();
  });

  it('what create and destroy did is known: no HEADER after them; a refusal from the cache re-reads next time', async () => {
    const k = scripted(statefulKernel({}));
    const b = await NetlinkIpset.open({ transport: k.transport });
    assert.deepEqual(outcome(await b.apply([create(spec('N', 'hash:ip'))])), { applied: 1 });
    assert.deepEqual(outcome(await b.apply([add('N', '1.1.1.1')])), { applied: 1 });
    // The family comes from the spec, as a HEADER would give it: an IPv6 entry is refused here.
    assert.deepEqual(outcome(await b.apply([add('N', 'fd00::1')])), { applied: 0, code: 'INVALID', opIndex: 0 });
    assert.deepEqual(outcome(await b.apply([destroy('N')])), { applied: 1 });
    const r = await b.apply([add('N', '1.1.1.2')]);
    assert.deepEqual(outcome(r), { applied: 0, code: 'NOT_FOUND', opIndex: 0 });
    assert.equal(r.error?.message, 'ipset add N 1.1.1.2: The set with the given name does not exist');
    assert.deepEqual(outcome(await b.apply([add('N', '1.1.1.2')])), { applied: 0, code: 'NOT_FOUND', opIndex: 0 });
    assert.deepEqual(k.datagrams.slice(OPENING.length), [['HEADER'], ['CREATE'], ['ADD'], ['HEADER'], ['DESTROY'], ['HEADER']]);
    b.close();
  });

  it('open() learns every type (loading its module) before any create; a type the kernel lacked then is asked for again at its create', async () => {
    let typeModuleLoaded = false;
    const inner = statefulKernel({});
    const k = scripted((cmd, attrs) => {
      // hash:ip's module is missing at open (the kernel answers TYPE with IPSET_ERR_FIND_TYPE), then present.
      if (cmd === 'TYPE' && str(attrs.get(IpsetAttr.TYPENAME)) === 'hash:ip' && !typeModuleLoaded) return { errno: IpsetErrno.FIND_TYPE };
      return inner(cmd, attrs);
    });
    const b = await NetlinkIpset.open({ transport: k.transport });
    assert.deepEqual(k.datagrams, OPENING);
    typeModuleLoaded = true;
    assert.deepEqual(outcome(await b.apply([create(spec('P', 'hash:ip,port'))])), { applied: 1 });
    assert.deepEqual(outcome(await b.apply([create(spec('N', 'hash:ip'))])), { applied: 1 });
    assert.deepEqual(k.datagrams.slice(OPENING.length), [['HEADER'], ['CREATE'], ['HEADER', 'TYPE'], ['CREATE']]);
    b.close();
  });

  it('observe() and observe(names) fill the cache: an apply after them sends no HEADER', async () => {
    const k = scripted(statefulKernel({ A: ['hash:ip', 2], B: ['hash:ip,port', 10] }));
    const b = await NetlinkIpset.open({ transport: k.transport });
    assert.equal((await b.observe()).length, 2);
    assert.deepEqual(outcome(await b.apply([add('A', '1.1.1.1'), add('B', 'fd00::1,tcp:80')])), { applied: 2 });
    assert.deepEqual(await b.observe(['A', 'GONE']).then((sets) => sets.map((x) => x.spec.name)), ['A']);
    // GONE is known absent: refused without asking the kernel.
    assert.deepEqual(outcome(await b.apply([del('A', '1.1.1.1'), add('GONE', '1.1.1.1')])), { applied: 1, code: 'NOT_FOUND', opIndex: 1 });
    assert.deepEqual(k.datagrams.slice(OPENING.length), [['SAVE'], ['ADD'], ['ADD'], ['SAVE'], ['SAVE'], ['DEL']]);
    b.close();
  });

  it('a set destroyed or replaced behind our back: one failed apply, then a correct one', async () => {
    const sets: Record<string, [string, number]> = { S: ['hash:ip', 2], T: ['hash:ip', 2] };
    const k = scripted(statefulKernel(sets));
    const b = await NetlinkIpset.open({ transport: k.transport });
    assert.deepEqual(outcome(await b.apply([add('S', '1.1.1.1'), add('T', '1.1.1.1')])), { applied: 2 });
    // `ipset destroy S`: the kernel refuses the write, with the error the HEADER check gave before.
    delete sets['S'];
    let r = await b.apply([add('S', '1.1.1.2')]);
    assert.deepEqual(outcome(r), { applied: 0, code: 'NOT_FOUND', opIndex: 0 });
    assert.equal(r.error?.message, 'ipset add S 1.1.1.2: The set with the given name does not exist');
    assert.deepEqual(outcome(await b.apply([add('S', '1.1.1.2')])), { applied: 0, code: 'NOT_FOUND', opIndex: 0 });
    // `ipset create S`: S was refused as absent, so it is read again, not refused from the cache.
    sets['S'] = ['hash:ip', 2];
    assert.deepEqual(outcome(await b.apply([add('S', '1.1.1.2')])), { applied: 1 });
    // `ipset destroy T; ipset create T hash:ip,port`: an element encoded for hash:ip fails once.
    sets['T'] = ['hash:ip,port', 2];
    r = await b.apply([add('T', '1.1.1.2')]);
    assert.deepEqual(outcome(r), { applied: 0, code: 'FAILED', opIndex: 0 });
    assert.equal(r.error?.message, 'ipset add T 1.1.1.2: Kernel error received: ipset protocol error');
    assert.deepEqual(outcome(await b.apply([add('T', '1.1.1.2,tcp:80')])), { applied: 1 });
    assert.deepEqual(outcome(await b.apply([add('T', '1.1.1.3,tcp:80'), add('S', '1.1.1.3')])), { applied: 2 });
    assert.deepEqual(k.datagrams.slice(OPENING.length), [['HEADER', 'HEADER'], ['ADD'], ['ADD'], ['ADD'], ['HEADER'], ['HEADER'], ['ADD'], ['ADD'], ['HEADER'], ['ADD'], ['ADD'], ['ADD']]);
    b.close();
  });

  it('a kernel failure forgets every set of the batch, even those before the failed op', async () => {
    let fail = true;
    const k = scripted(kernelWith({ A: ['hash:ip', 2], B: ['hash:ip', 2] }, (cmd, attrs) => (cmd === 'ADD' && str(attrs.get(IpsetAttr.SETNAME)) === 'B' && fail ? { errno: 4352 } : { errno: 0 })));
    const b = await NetlinkIpset.open({ transport: k.transport });
    assert.deepEqual(outcome(await b.apply([add('A', '1.1.1.1'), add('B', '1.1.1.1')])), { applied: 1, code: 'FAILED', opIndex: 1 });
    fail = false;
    assert.deepEqual(outcome(await b.apply([add('A', '1.1.1.2'), add('B', '1.1.1.2')])), { applied: 2 });
    assert.deepEqual(outcome(await b.apply([add('A', '1.1.1.3'), add('B', '1.1.1.3')])), { applied: 2 });
    assert.deepEqual(k.datagrams.slice(OPENING.length), [['HEADER', 'HEADER'], ['ADD'], ['ADD'], ['HEADER', 'HEADER'], ['ADD'], ['ADD'], ['ADD'], ['ADD']]);
    b.close();
  });

  it('a HEADER failure (no privilege) fails the batch at its first op', async () => {
    const k = scripted((cmd) => (cmd === 'PROTOCOL' ? { errno: 0, data: [protocolReply(7, 6)] } : { errno: 1 }));
    const b = await NetlinkIpset.open({ transport: k.transport });
    assert.deepEqual(outcome(await b.apply([add('A', '1.1.1.1')])), { applied: 0, code: 'PERMISSION', opIndex: 0 });
    await assert.rejects(b.observe(['A']), (e: unknown) => e instanceof Error && 'code' in e && e.code === 'PERMISSION');
    b.close();
  });
});

// ---------------------------------------------------------------------------------------------
// The real kernel, in a private netns, cross-checked with the ipset tool.

const skip = realIpsetSkipReason();

async function withNetlink(body: (h: NetlinkHarness) => Promise<void>): Promise<void> {
  const h = await makeNetlinkHarness();
  try {
    await body(h);
  } finally {
    await h.close();
  }
}

/** `ipset save` (the tool) through the text model: what RealIpset.observe() would return, rendered. */
function toolDump(h: NetlinkHarness, names?: readonly string[]): string {
  const r = h.tool(['save']);
  assert.ok(r.ok, r.out);
  const sets = parseIpsetSave(r.out);
  return renderIpsetSave(names ? sets.filter((s) => names.includes(s.spec.name)) : sets);
}

/** A kube-proxy-like node: every set type and family, a few hundred entries. */
function nodeOps(): IpsetOp[] {
  const ops: IpsetOp[] = [
    create(CIP),
    create(spec('KUBE-LOOP-BACK', 'hash:ip,port,ip')),
    create(spec('KUBE-LOAD-BALANCER-SOURCE-CIDR', 'hash:ip,port,net')),
    create(spec('KUBE-NODE-PORT-TCP', 'bitmap:port')),
    create(spec('KUBE-IPVS-IPS', 'hash:ip', { hashSize: 100 })),
    create(spec('KUBE-6-CLUSTER-IP', 'hash:ip,port', { family: 'inet6' })),
    create(spec('KUBE-6-LB-SOURCE-CIDR', 'hash:ip,port,net', { family: 'inet6', maxElem: 1000 })),
  ];
  for (let i = 0; i < 300; i++) {
    ops.push(add(CIP.name, `10.96.${i >> 8}.${i & 255},${i % 3 === 0 ? 'udp' : 'tcp'}:${53 + i}`));
    ops.push(add('KUBE-LOOP-BACK', `10.244.${i >> 8}.${i & 255},tcp:8080,10.244.${i >> 8}.${i & 255}`));
    ops.push(add('KUBE-IPVS-IPS', `10.96.${i >> 8}.${i & 255}`));
    ops.push(add('KUBE-6-CLUSTER-IP', `fd00::${i.toString(16)},sctp:${i}`));
  }
  ops.push(add('KUBE-LOAD-BALANCER-SOURCE-CIDR', '192.0.2.10,tcp:80,10.1.1.5/24'), add('KUBE-LOAD-BALANCER-SOURCE-CIDR', '192.0.2.10,udp:80,10.1.1.1'));
  ops.push(add('KUBE-6-LB-SOURCE-CIDR', '2001:db8::1,tcp:443,fd00:1::/64'), add('KUBE-6-LB-SOURCE-CIDR', '2001:db8::1,tcp:443,::ffff:10.0.0.1'));
  ops.push(add('KUBE-NODE-PORT-TCP', '30080'), add('KUBE-NODE-PORT-TCP', '0'), add('KUBE-NODE-PORT-TCP', '65535'));
  return ops;
}

describe('NetlinkIpset on the real kernel (private netns)', { skip: skip ?? false }, () => {
  it('negotiates protocol 7 on this kernel', () =>
    withNetlink((h) => {
      assert.equal(h.backend.protocol, 7);
      return Promise.resolve();
    }));

  it('what netlink writes, `ipset save` prints exactly as netlink observe() reads it', () =>
    withNetlink(async (h) => {
      const ops = nodeOps();
      assert.deepEqual(outcome(await h.backend.apply(ops)), { applied: ops.length });
      const ours = await dumpOf(h.backend);
      assert.equal(toolDump(h), ours);
      assert.match(ours, /add KUBE-6-LB-SOURCE-CIDR 2001:db8::1,tcp:443,::ffff:10\.0\.0\.1\n/);
      // A partial change, then the same comparison for a subset of names.
      const change = [del(CIP.name, '10.96.0.1,tcp:54'), del(CIP.name, '10.96.0.2,tcp:55'), add(CIP.name, '10.96.9.1,tcp:80'), add(CIP.name, '10.96.9.2,tcp:80')];
      assert.deepEqual(outcome(await h.backend.apply(change)), { applied: 4 });
      const names = [CIP.name, 'KUBE-NODE-PORT-TCP'];
      assert.equal(toolDump(h, names), await dumpOf(h.backend, names));
    }));

  it('sets created over netlink have the revision the tool creates (so `ipset list` can read them)', () =>
    withNetlink(async (h) => {
      const types = ['hash:ip', 'hash:ip,port', 'hash:ip,port,ip', 'hash:ip,port,net', 'bitmap:port'] as const;
      assert.deepEqual(outcome(await h.backend.apply(types.map((t, i) => create(spec(`NL${i}`, t))))), { applied: types.length });
      const restore = types.map((t, i) => (t === 'bitmap:port' ? `create TOOL${i} ${t} range 0-65535` : `create TOOL${i} ${t} family inet`)).join('\n');
      assert.ok(h.tool(['restore'], `${restore}\n`).ok);
      const list = h.tool(['list', '-t']);
      assert.ok(list.ok, list.out);
      const revisions = new Map([...list.out.matchAll(/Name: (\S+)\nType: \S+\nRevision: (\d+)/g)].map((m) => [m[1], m[2]]));
      types.forEach((_, i) => assert.equal(revisions.get(`NL${i}`), revisions.get(`TOOL${i}`), types[i]));
    }));

  it('what the tool restores (with extensions and foreign types), netlink observe() reads as `ipset save` prints it', () =>
    withNetlink(async (h) => {
      const text = [
        'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536',
        'add KUBE-CLUSTER-IP 10.96.0.10,tcp:53',
        'add KUBE-CLUSTER-IP 10.96.0.10,udp:53',
        'create WITH-EXT hash:ip,port,net family inet6 hashsize 64 maxelem 10 comment counters timeout 600',
        'add WITH-EXT fd00::1,tcp:80,fd00:1::/64 comment "a b" timeout 100',
        'add WITH-EXT fd00::1,udplite:80,fd00:1::1 nomatch',
        'create LOOP hash:ip,port,ip family inet',
        'add LOOP 10.244.1.5,sctp:8080,10.244.1.5',
        'create NP bitmap:port range 30000-32767 counters',
        'add NP 30080',
        'create FOREIGN-NET hash:net family inet',
        'add FOREIGN-NET 10.0.0.0/8',
        '',
      ].join('\n');
      const r = h.tool(['restore'], text);
      assert.ok(r.ok, r.out);
      const ours = await dumpOf(h.backend);
      assert.equal(ours, toolDump(h));
      assert.equal(ours, renderIpsetSave(parseIpsetSave(text)));
      assert.doesNotMatch(ours, /FOREIGN-NET/);
    }));

  it('observe(names) ignores foreign sets it could not read; observe() reports PARSE', () =>
    withNetlink(async (h) => {
      assert.ok(h.tool(['restore'], 'create FOREIGN hash:ip,port family inet\nadd FOREIGN 1.2.3.4,icmp:ping\n').ok);
      assert.deepEqual(outcome(await h.backend.apply([create(spec('MINE', 'hash:ip')), add('MINE', '1.1.1.1')])), { applied: 2 });
      assert.equal(await dumpOf(h.backend, ['MINE', 'NOPE']), 'create MINE hash:ip family inet hashsize 1024 maxelem 65536\nadd MINE 1.1.1.1\n');
      await assert.rejects(h.backend.observe(), (e: unknown) => e instanceof Error && 'code' in e && e.code === 'PARSE');
      // Writing to a set of a type we do not handle is refused before the kernel, like ipset would.
      assert.ok(h.tool(['restore'], 'create NET hash:net family inet\n').ok);
      assert.deepEqual(outcome(await h.backend.apply([add('MINE', '1.1.1.2'), add('NET', '10.0.0.0/8')])), { applied: 1, code: 'INVALID', opIndex: 1 });
      assert.deepEqual(outcome(await h.backend.apply([flush('NET'), destroy('NET')])), { applied: 2 });
    }));

  it('a set destroyed or replaced with the tool behind its back: one failed apply, then a correct one', () =>
    withNetlink(async (h) => {
      assert.deepEqual(outcome(await h.backend.apply([create(spec('S', 'hash:ip')), add('S', '1.1.1.1')])), { applied: 2 });
      assert.ok(h.tool(['destroy', 'S']).ok);
      const r = await h.backend.apply([add('S', '1.1.1.2')]);
      assert.deepEqual(outcome(r), { applied: 0, code: 'NOT_FOUND', opIndex: 0 });
      assert.equal(r.error?.message, 'ipset add S 1.1.1.2: The set with the given name does not exist');
      assert.deepEqual(outcome(await h.backend.apply([add('S', '1.1.1.2')])), { applied: 0, code: 'NOT_FOUND', opIndex: 0 });
      // Replaced by a set of another type: the element encoded for hash:ip is refused once.
      assert.deepEqual(outcome(await h.backend.apply([create(spec('S', 'hash:ip'))])), { applied: 1 });
      assert.ok(h.tool(['destroy', 'S']).ok);
      assert.ok(h.tool(['create', 'S', 'hash:ip,port']).ok);
      const r2 = await h.backend.apply([add('S', '1.1.1.2')]);
      assert.deepEqual(outcome(r2), { applied: 0, code: 'FAILED', opIndex: 0 });
      assert.equal(r2.error?.message, 'ipset add S 1.1.1.2: Kernel error received: ipset protocol error');
      assert.deepEqual(outcome(await h.backend.apply([add('S', '1.1.1.2,tcp:80')])), { applied: 1 });
      assert.equal(toolDump(h, ['S']), 'create S hash:ip,port family inet hashsize 1024 maxelem 65536\nadd S 1.1.1.2,tcp:80\n');
    }));

  it('failures the kernel finds deep in a bulk keep exactly the ops before them', () =>
    withNetlink(async (h) => {
      // A hash that fills up at the 3001st new element, inside the third ADT message.
      const ops: IpsetOp[] = [create(spec('FULL', 'hash:ip', { maxElem: 3000 }))];
      for (let i = 0; i < 4000; i++) ops.push(add('FULL', `10.0.${i >> 8}.${i & 255}`));
      const r = await h.backend.apply(ops);
      assert.deepEqual(outcome(r), { applied: 3001, code: 'FAILED', opIndex: 3001 });
      assert.equal((await h.backend.observe(['FULL']))[0]?.entries.size, 3000);
      // A bitmap refuses a port outside its range in the middle of a run of deletes.
      const np = spec('NP', 'bitmap:port', { range: '100-200' });
      assert.deepEqual(outcome(await h.backend.apply([create(np), add('NP', '100'), add('NP', '150'), add('NP', '200')])), { applied: 4 });
      assert.deepEqual(outcome(await h.backend.apply([del('NP', '100'), del('NP', '300'), del('NP', '200')])), { applied: 1, code: 'INVALID', opIndex: 1 });
      assert.equal(await dumpOf(h.backend, ['NP']), 'create NP bitmap:port range 100-200\nadd NP 150\nadd NP 200\n');
    }));
});
