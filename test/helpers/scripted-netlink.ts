// A netlink transport whose "kernel" is a test function: each request message is handed to
// `answer` with a reply function that frames a message back with that request's sequence number.
import type { NlMessage } from '../../src/dataplane/netlink/framing.js';
import { encodeNlMessage, parseNlMessages } from '../../src/dataplane/netlink/framing.js';
import type { NetlinkTransport } from '../../src/dataplane/netlink/transport.js';

export type ScriptedReply = (type: number, flags: number, payload: Buffer) => void;

export function scriptedKernel(answer: (request: NlMessage, reply: ScriptedReply) => void, localPort = 4242): NetlinkTransport {
  let deliver: (d: Buffer, port: number) => void = () => undefined;
  return {
    localPort,
    recvBufferSize: 1 << 20,
    async send(datagram) {
      for (const m of parseNlMessages(datagram, (d) => new Error(d))) {
        answer(m, (type, flags, payload) => deliver(encodeNlMessage({ type, flags, seq: m.seq, pid: localPort, payload }), 0));
      }
    },
    listen(onDatagram) {
      deliver = onDatagram;
    },
    close() {},
  };
}
