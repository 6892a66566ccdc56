// NftGeneration over a scripted kernel: the request it sends (NFT_MSG_GETGEN, an empty nfgenmsg)
// and what it makes of the replies nf_tables_getgen gives (net/netfilter/nf_tables_api.c: a
// NEWGEN message carrying NFTA_GEN_ID, PROC_PID and PROC_NAME, then the ACK), a refusal, or no
// socket. The real kernel's answer is checked by the iptables contract in a private namespace.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/dataplane/netlink/errno.js';
import { NlMsgType, NlmF, encodeAttr } from '../../../src/dataplane/netlink/framing.js';
import type { NetlinkTransport } from '../../../src/dataplane/netlink/transport.js';
import { NFT_MSG_GETGEN, NFT_MSG_NEWGEN, NftGeneration, nftMsgType } from '../../../src/dataplane/iptables/nft-generation.js';
import { scriptedKernel } from '../../helpers/scripted-netlink.js';

const tooLong = (d: string): Error => new Error(d);
const be32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const errPayload = (errno: number): Buffer => {
  const b = Buffer.alloc(20);
  b.writeInt32LE(-errno);
  return b;
};

/** A kernel answering GETGEN with generation `gen`, or refusing it with `refuse`. */
function kernel(opts: { gen?: number; refuse?: number; seen?: { type: number; flags: number; payload: Buffer }[] }): NetlinkTransport {
  return scriptedKernel((m, reply) => {
    opts.seen?.push({ type: m.type, flags: m.flags, payload: Buffer.from(m.payload) });
    if (opts.refuse !== undefined) {
      reply(NlMsgType.ERROR, 0, errPayload(opts.refuse));
      return;
    }
    const gen = opts.gen ?? 0;
    // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id = the generation's low 16 bits in network order.
    const nfgen = Buffer.from([0, 0, (gen >> 8) & 0xff, gen & 0xff]);
    const attrs = [encodeAttr(1, be32(gen), tooLong), encodeAttr(2, be32(4321), tooLong), encodeAttr(3, Buffer.from('iptables-nft-re\0'), tooLong)];
    reply(nftMsgType(NFT_MSG_NEWGEN), 0, Buffer.concat([nfgen, ...attrs]));
    reply(NlMsgType.ERROR, 0, errPayload(0));
  }, 77);
}

describe('NftGeneration', () => {
  test('asks NFT_MSG_GETGEN with an empty nfgenmsg and reads NFTA_GEN_ID, all 32 bits', async () => {
    const seen: { type: number; flags: number; payload: Buffer }[] = [];
    const g = new NftGeneration(kernel({ gen: 0x8001_0203, seen }));
    assert.equal(await g.read(), 0x8001_0203);
    assert.deepEqual(seen, [{ type: (10 << 8) | NFT_MSG_GETGEN, flags: NlmF.REQUEST | NlmF.ACK, payload: Buffer.alloc(4) }]);
    assert.equal(g.lastProblem, undefined);
    g.close();
  });

  test('a refusal (EPERM without CAP_NET_ADMIN) reads as unknown, with the reason kept', async () => {
    const g = new NftGeneration(kernel({ refuse: Errno.EPERM }));
    assert.equal(await g.read(), undefined);
    assert.match(g.lastProblem ?? '', /errno 1\b/);
    g.close();
  });
});
