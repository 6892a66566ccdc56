// The request/reply correlation's silence timeout, over a scripted kernel: a request nobody
// answers fails with ETIMEDOUT once the kernel has been silent for timeoutMs; a dump whose parts
// keep coming completes however long it takes in all, since every part restarts the silence.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/dataplane/netlink/errno.js';
import { NlMsgType, NlmF } from '../../../src/dataplane/netlink/framing.js';
import { NetlinkRequester } from '../../../src/dataplane/netlink/requester.js';
import { scriptedKernel } from '../../helpers/scripted-netlink.js';

const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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
    const kernel = scriptedKernel((_request, reply) => {
      void (async () => {
        // Six parts 40 ms apart (240 ms in all, three times the timeout), then DONE.
        for (let i = 0; i < 6; i++) {
          await sleep(40);
          reply(0x20, NlmF.MULTI, int32(i));
        }
        await sleep(40);
        reply(NlMsgType.DONE, NlmF.MULTI, int32(0));
      })();
    });
    const nl = new NetlinkRequester(kernel, { timeoutMs: 80, maxMessagesPerDatagram: 10 });
    const r = await nl.single({ type: 0x20, flags: NlmF.REQUEST | NlmF.DUMP, payload: Buffer.alloc(4) });
    assert.equal(r.errno, 0);
    assert.deepEqual(r.parts.map((p) => p.payload.readInt32LE(0)), [0, 1, 2, 3, 4, 5]);
    nl.close();
  });
});
