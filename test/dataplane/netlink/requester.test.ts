// The request/reply correlation over a scripted kernel. Its silence timeout: a request nobody
// answers fails with ETIMEDOUT once the kernel has been silent for timeoutMs; a dump whose parts
// keep coming completes however long it takes in all, since every part restarts the silence.
// Groups of writes: only the last asks for an ACK, and its reply settles the ones before it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/dataplane/netlink/errno.js';
import { NlMsgType, NlmF, encodeNlMessage, parseNlMessages } from '../../../src/dataplane/netlink/framing.js';
import type { NlMessage } from '../../../src/dataplane/netlink/framing.js';
import type { NetlinkTransport } from '../../../src/dataplane/netlink/transport.js';
import type { NetlinkRequest } from '../../../src/dataplane/netlink/requester.js';
import { NetlinkRequester } from '../../../src/dataplane/netlink/requester.js';
import { scriptedKernel } from '../../helpers/scripted-netlink.js';

const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A kernel that answers any request with `count` dump parts (0, 1, …) `gapMs` apart, then DONE. */
function dumpingKernel(count: number, gapMs: number): NetlinkTransport {
  return scriptedKernel((_request, reply) => {
    void (async () => {
      for (let i = 0; i < count; i++) {
        await sleep(gapMs);
        reply(0x20, NlmF.MULTI, int32(i));
      }
      await sleep(gapMs);
      reply(NlMsgType.DONE, NlmF.MULTI, int32(0));
    })();
  });
}

describe('NetlinkRequester timeout', () => {
  test('a request the kernel never answers fails with ETIMEDOUT after the silence', async () => {
    const nl = new NetlinkRequester(scriptedKernel(() => undefined), { timeoutMs: 80, maxMessagesPerDatagram: 10 });
    const t0 = performance.now();
    const r = await nl.single({ type: 0x20, flags: NlmF.REQUEST | NlmF.ACK, payload: Buffer.alloc(4) });
    const waited = performance.now() - t0;
    assert.equal(r.errno, Errno.ETIMEDOUT);
    assert.ok(waited >= 75, `gave up after ${waited.toFixed(0)} ms, before the 80 ms of silence`);
    nl.close();
  });

  test('a dump whose parts keep coming within the timeout completes, however long it takes in all', async () => {
    // Six parts 40 ms apart (240 ms in all, three times the timeout), then DONE.
    const nl = new NetlinkRequester(dumpingKernel(6, 40), { timeoutMs: 80, maxMessagesPerDatagram: 10 });
    const r = await nl.single({ type: 0x20, flags: NlmF.REQUEST | NlmF.DUMP, payload: Buffer.alloc(4) });
    assert.equal(r.errno, 0);
    assert.deepEqual(r.parts.map((p) => p.payload.readInt32LE(0)), [0, 1, 2, 3, 4, 5]);
    nl.close();
  });

  test('a dump with onPart hands each part over as it arrives, in order, and keeps none in the reply', async () => {
    const seen: Array<{ part: number; whileDumping: boolean }> = [];
    let done = false;
    const nl = new NetlinkRequester(dumpingKernel(4, 5), { timeoutMs: 200, maxMessagesPerDatagram: 10 });
    const r = await nl.single({ type: 0x20, flags: NlmF.REQUEST | NlmF.DUMP, payload: Buffer.alloc(4), onPart: (p) => seen.push({ part: p.payload.readInt32LE(0), whileDumping: !done }) });
    done = true;
    assert.equal(r.errno, 0);
    assert.deepEqual(seen, [0, 1, 2, 3].map((part) => ({ part, whileDumping: true })));
    assert.deepEqual(r.parts, []);
    nl.close();
  });
});

/** An NLMSG_ERROR payload as the kernel writes it: the negative errno, then the request's header. */
function errorPayload(errno: number): Buffer {
  return Buffer.concat([int32(-errno), Buffer.alloc(16)]);
}

/**
 * A kernel that follows netlink_rcv_skb: each request runs in order, and an ERROR goes back when
 * it failed (`fails`: by index in the datagram) or asked for an ACK. `before` runs first (e.g. an
 * overrun report); `drop` loses replies by index.
 */
function writeKernel(o: { fails?: ReadonlyMap<number, number>; drop?: (i: number) => boolean; before?: (onError: (errno: number) => void) => void }): { transport: NetlinkTransport; sent: NlMessage[] } {
  const sent: NlMessage[] = [];
  let deliver: (d: Buffer, port: number) => void = () => undefined;
  let onError: (errno: number) => void = () => undefined;
  const transport: NetlinkTransport = {
    localPort: 4242,
    recvBufferSize: 1 << 20,
    async send(datagram) {
      const msgs = parseNlMessages(datagram, (d) => new Error(d));
      sent.push(...msgs);
      const replies: Buffer[] = [];
      msgs.forEach((m, i) => {
        const errno = o.fails?.get(i) ?? 0;
        if ((errno === 0 && (m.flags & NlmF.ACK) === 0) || o.drop?.(i)) return;
        replies.push(encodeNlMessage({ type: NlMsgType.ERROR, flags: 0, seq: m.seq, pid: 4242, payload: errorPayload(errno) }));
      });
      setImmediate(() => {
        o.before?.(onError);
        for (const r of replies) deliver(r, 0);
      });
    },
    listen(d, e) {
      deliver = d;
      onError = e;
    },
    close() {},
  };
  return { transport, sent };
}

const writes = (n: number) => Array.from({ length: n }, () => ({ type: 0x20, flags: NlmF.REQUEST | NlmF.ACK, payload: Buffer.alloc(4) }));

describe('NetlinkRequester groups of writes', () => {
  test('only the last request asks for an ACK; failures are their own, the rest succeeded', async () => {
    const k = writeKernel({ fails: new Map([[1, Errno.EEXIST], [3, Errno.ENOENT]]) });
    const nl = new NetlinkRequester(k.transport, { timeoutMs: 1000, maxMessagesPerDatagram: 10 });
    const r = await nl.exchangeWrites(writes(5));
    assert.deepEqual(r.map((x) => x.errno), [0, Errno.EEXIST, 0, Errno.ENOENT, 0]);
    assert.deepEqual(k.sent.map((m) => (m.flags & NlmF.ACK) !== 0), [false, false, false, false, true]);
    nl.close();
  });

  test('the last request failing still settles the others as done', async () => {
    const k = writeKernel({ fails: new Map([[2, Errno.EINVAL]]) });
    const nl = new NetlinkRequester(k.transport, { timeoutMs: 1000, maxMessagesPerDatagram: 10 });
    const r = await nl.exchangeWrites(writes(3));
    assert.deepEqual(r.map((x) => x.errno), [0, 0, Errno.EINVAL]);
    nl.close();
  });

  test('an overrun reported before the group ACK leaves the others unknown (ENOBUFS), not done', async () => {
    // An ERROR of request 1 was lost to a full receive buffer; the group ACK still came.
    const k = writeKernel({ fails: new Map([[1, Errno.EEXIST]]), drop: (i) => i === 1, before: (onError) => onError(Errno.ENOBUFS) });
    const nl = new NetlinkRequester(k.transport, { timeoutMs: 1000, maxMessagesPerDatagram: 10 });
    const r = await nl.exchangeWrites(writes(3));
    assert.deepEqual(r.map((x) => x.errno), [Errno.ENOBUFS, Errno.ENOBUFS, 0]);
    nl.close();
  });

  test('a group whose ACK never comes times out whole', async () => {
    const k = writeKernel({ drop: () => true });
    const nl = new NetlinkRequester(k.transport, { timeoutMs: 60, maxMessagesPerDatagram: 10 });
    const r = await nl.exchangeWrites(writes(3));
    assert.deepEqual(r.map((x) => x.errno), [Errno.ETIMEDOUT, Errno.ETIMEDOUT, Errno.ETIMEDOUT]);
    nl.close();
  });

  test('exchange still asks every request for its ACK', async () => {
    const k = writeKernel({});
    const nl = new NetlinkRequester(k.transport, { timeoutMs: 1000, maxMessagesPerDatagram: 10 });
    const r = await nl.exchange(writes(3));
    assert.deepEqual(r.map((x) => x.errno), [0, 0, 0]);
    assert.ok(k.sent.every((m) => (m.flags & NlmF.ACK) !== 0));
    nl.close();
  });
});

describe('NetlinkRequester.enlargeDumps', () => {
  // The kernel answers a refused request with an ERROR that echoes it (no NETLINK_CAP_ACK).
  const refusing = (rcvbuf: number): { transport: NetlinkTransport; sent: NlMessage[] } => {
    const sent: NlMessage[] = [];
    const k = scriptedKernel((m, reply) => {
      sent.push(m);
      reply(NlMsgType.ERROR, 0, Buffer.concat([int32(-Errno.EOPNOTSUPP), encodeNlMessage(m)]));
    });
    return { transport: { ...k, recvBufferSize: rcvbuf }, sent };
  };
  const refused = (payloadBytes: number): NetlinkRequest => ({ type: 0x20, flags: NlmF.REQUEST | NlmF.ACK, payload: Buffer.alloc(payloadBytes) });

  test('sends one refused request of 32 KB, whose echo is larger than the 32,448-byte cap on dump datagrams', async () => {
    const k = refusing(8 << 20);
    const nl = new NetlinkRequester(k.transport, { timeoutMs: 1000, maxMessagesPerDatagram: 10 });
    assert.equal(await nl.enlargeDumps(refused), Errno.EOPNOTSUPP);
    assert.equal(k.sent.length, 1);
    const echoBytes = 16 + 4 + encodeNlMessage(k.sent[0] as NlMessage).length;
    // SKB_WITH_OVERHEAD(32768) on 4 KB pages: 32768 - 320.
    assert.ok(echoBytes >= 32_448, `echo of ${echoBytes} bytes`);
    assert.equal(await nl.enlargeDumps(refused), 0, 'once per socket');
    assert.equal(k.sent.length, 1);
    nl.close();
  });

  test('skipped on a receive buffer too small to take the echo safely', async () => {
    const k = refusing(64 << 10);
    const nl = new NetlinkRequester(k.transport, { timeoutMs: 1000, maxMessagesPerDatagram: 10 });
    assert.equal(await nl.enlargeDumps(refused), 0);
    assert.equal(k.sent.length, 0);
    nl.close();
  });
});
