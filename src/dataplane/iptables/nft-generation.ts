// The nf_tables ruleset generation of this network namespace (NFT_MSG_GETGEN over
// NETLINK_NETFILTER). The kernel bumps it on every committed nf_tables transaction
// (nft_net->base_seq, net/netfilter/nf_tables_api.c), and iptables-nft writes only through such
// transactions: two equal readings mean no rule of any table changed in between. The periodic
// resync uses that to skip an iptables-save spawn (tenths of a second of CPU per family) when
// nothing was committed since the save that found our rules in place.
import { DataplaneError } from '../errors.js';
import { NlmF, parseAttrs } from '../netlink/framing.js';
import { NetlinkRequester } from '../netlink/requester.js';
import type { NetlinkTransport } from '../netlink/transport.js';
import { NETLINK_NETFILTER, openRawNetlink } from '../netlink/transport.js';
import { errorMessage } from '../../model/error-text.js';

/** include/uapi/linux/netfilter/nfnetlink.h */
const NFNL_SUBSYS_NFTABLES = 10;
/** include/uapi/linux/netfilter/nf_tables.h: enum nf_tables_msg_types */
export const NFT_MSG_NEWGEN = 15;
export const NFT_MSG_GETGEN = 16;
/** enum nft_gen_attributes */
const NFTA_GEN_ID = 1;

export const nftMsgType = (msg: number): number => (NFNL_SUBSYS_NFTABLES << 8) | msg;

const malformed = (why: string): DataplaneError => new DataplaneError('PARSE', 'iptables', 'generation', 'nf_tables', `malformed netlink reply: ${why}`);

/** NFTA_GEN_ID (a big-endian u32) of a NEWGEN reply's payload, after its 4-byte nfgenmsg. */
function decodeGenId(payload: Buffer): number | undefined {
  if (payload.length < 4) return undefined;
  const id = parseAttrs(payload.subarray(4), malformed).get(NFTA_GEN_ID);
  return id && id.length >= 4 ? id.readUInt32BE(0) : undefined;
}

export interface RulesetGeneration {
  /** The current generation; undefined when it cannot be read (the caller then reads the rules). */
  read(): Promise<number | undefined>;
  close(): void;
}

/** Reads the generation over its own NETLINK_NETFILTER socket; never throws. */
export class NftGeneration implements RulesetGeneration {
  private readonly nl: NetlinkRequester;
  /** Why the last read failed (kept for diagnosis); undefined after a success. */
  lastProblem: string | undefined;

  constructor(transport: NetlinkTransport) {
    this.nl = new NetlinkRequester(transport, { timeoutMs: 5000, maxMessagesPerDatagram: 1 });
  }

  /** Undefined when no NETLINK_NETFILTER socket can be opened here (then every resync saves). */
  static open(): NftGeneration | undefined {
    try {
      return new NftGeneration(openRawNetlink(NETLINK_NETFILTER, { recvBufferSize: 64 << 10, sendBufferSize: 64 << 10 }));
    } catch {
      return undefined;
    }
  }

  async read(): Promise<number | undefined> {
    try {
      // The payload is an empty nfgenmsg: {AF_UNSPEC, NFNETLINK_V0, res_id 0}, no attributes.
      const reply = await this.nl.single({ type: nftMsgType(NFT_MSG_GETGEN), flags: NlmF.REQUEST | NlmF.ACK, payload: Buffer.alloc(4) });
      if (reply.errno !== 0) {
        this.lastProblem = `the kernel answered errno ${reply.errno}`;
        return undefined;
      }
      const msg = reply.parts.find((m) => m.type === nftMsgType(NFT_MSG_NEWGEN));
      const id = msg ? decodeGenId(msg.payload) : undefined;
      this.lastProblem = id === undefined ? 'the reply carried no generation' : undefined;
      return id;
    } catch (e) {
      this.lastProblem = errorMessage(e);
      return undefined;
    }
  }

  close(): void {
    this.nl.close();
  }
}
