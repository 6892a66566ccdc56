// Run in a private network namespace (unshare -n) by group-writes.test.ts: four RTM_NEWADDR on lo
// in one datagram through NetlinkRequester.exchangeWrites (only the last asks for an ACK), then
// what the kernel answered and which addresses lo holds, as one JSON line.
import { spawnSync } from 'node:child_process';
import { NlmF, encodeAttr } from '../../../src/dataplane/netlink/framing.js';
import { routeRequester } from './route-requester.js';

const RTM_NEWADDR = 20;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const LO_INDEX = 1;
const NO_SUCH_LINK = 999;
/** NLM_F_CREATE (include/uapi/linux/netlink.h): the product never creates over rtnetlink this way. */
const NLM_F_CREATE = 0x400;
const fail = (detail: string): Error => new Error(detail);

/** RTM_NEWADDR of ip/32 on link `index`, create-exclusive: a second add of it fails (EEXIST). */
function newAddress(ip: string, index: number): { type: number; flags: number; payload: Buffer } {
  const head = Buffer.alloc(8); // struct ifaddrmsg: family, prefixlen, flags, scope, index
  head[0] = 2; // AF_INET
  head[1] = 32;
  head.writeUInt32LE(index, 4);
  const a = Buffer.from(ip.split('.').map(Number));
  return { type: RTM_NEWADDR, flags: NlmF.REQUEST | NlmF.ACK | NLM_F_CREATE | NlmF.EXCL, payload: Buffer.concat([head, encodeAttr(IFA_LOCAL, a, fail), encodeAttr(IFA_ADDRESS, a, fail)]) };
}

const nl = routeRequester();
const replies = await nl.exchangeWrites([newAddress('10.1.0.1', LO_INDEX), newAddress('10.1.0.1', LO_INDEX), newAddress('10.1.0.2', NO_SUCH_LINK), newAddress('10.1.0.3', LO_INDEX)]);
nl.close();
const shown = spawnSync('ip', ['-4', '-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' }).stdout;
const addresses = [...shown.matchAll(/inet (\S+)/g)].map((m) => m[1]);
process.stdout.write(`${JSON.stringify({ errnos: replies.map((r) => r.errno), addresses })}\n`);
