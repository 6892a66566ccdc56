// The rtnetlink requester the real-kernel children of these tests (run in a private network
// namespace) speak through: NetlinkRequester behaves alike for every netlink family, and this
// host may lack ip_vs.
import { NetlinkRequester } from '../../../src/dataplane/netlink/requester.js';
import type { NetlinkTransport } from '../../../src/dataplane/netlink/transport.js';
import { openRawNetlink } from '../../../src/dataplane/netlink/transport.js';

const NETLINK_ROUTE = 0;

/** A requester over a NETLINK_ROUTE socket; `wrap` may observe its transport (e.g. count datagrams). */
export function routeRequester(wrap: (t: NetlinkTransport) => NetlinkTransport = (t) => t): NetlinkRequester {
  return new NetlinkRequester(wrap(openRawNetlink(NETLINK_ROUTE, { recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 })), { timeoutMs: 10_000, maxMessagesPerDatagram: 64 });
}
