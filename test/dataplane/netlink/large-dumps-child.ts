// Run in a private network namespace (unshare -n) by large-dumps.test.ts: 3,000 addresses on lo,
// then an RTM_GETADDR dump before and after NetlinkRequester.enlargeDumps, with the size of every
// datagram the kernel sent, as one JSON line.
import { spawnSync } from 'node:child_process';
import { NlmF } from '../../../src/dataplane/netlink/framing.js';
import { routeRequester } from './route-requester.js';

const RTM_GETADDR = 22;
/** Above RTM_MAX: rtnetlink_rcv_msg refuses it (EOPNOTSUPP) before it reads the body. */
const NO_SUCH_RTM = 0x7ff;
const ADDRESSES = 3000;

const lines = Array.from({ length: ADDRESSES }, (_, i) => `addr add 10.9.${i >> 8}.${i & 255}/32 dev lo\n`).join('');
const added = spawnSync('ip', ['-batch', '-'], { input: lines, encoding: 'utf8' });
if (added.status !== 0) throw new Error(`ip -batch: ${added.stderr}`);

let sizes: number[] = [];
const nl = routeRequester((real) => ({
  ...real,
  listen: (onDatagram, onError) =>
    real.listen((d, port) => {
      sizes.push(d.length);
      onDatagram(d, port);
    }, onError),
}));
const dump = async (): Promise<{ parts: number; datagrams: number; largest: number }> => {
  sizes = [];
  const r = await nl.single({ type: RTM_GETADDR, flags: NlmF.REQUEST | NlmF.DUMP, payload: Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]) });
  if (r.errno !== 0) throw new Error(`RTM_GETADDR dump: errno ${r.errno}`);
  return { parts: r.parts.length, datagrams: sizes.length, largest: Math.max(...sizes) };
};
const before = await dump();
const errno = await nl.enlargeDumps((bytes) => ({ type: NO_SUCH_RTM, flags: NlmF.REQUEST | NlmF.ACK, payload: Buffer.alloc(bytes) }));
const after = await dump();
nl.close();
process.stdout.write(`${JSON.stringify({ before, errno, after })}\n`);
