// The datagram socket a netlink speaker talks through, and the real one: the `netlink` package's
// raw socket. An interface so tests can script the kernel.
import { RawNetlinkSocket } from 'netlink';

/** The netlink protocol of nfnetlink's subsystems (ipset, nf_tables): include/uapi/linux/netlink.h. */
export const NETLINK_NETFILTER = 12;

export interface NetlinkTransport {
  /** Our netlink port id (nlmsg_pid of requests). */
  readonly localPort: number;
  /** SO_RCVBUF as granted: bounds how many acknowledgements one datagram may queue. */
  readonly recvBufferSize: number;
  /** One sendmsg to the kernel; rejects with an `errno` property on failure. */
  send(datagram: Buffer): Promise<void>;
  /** `fromPort` is 0 for the kernel; `onError` gets socket errors (ENOBUFS on receive overflow). */
  listen(onDatagram: (datagram: Buffer, fromPort: number) => void, onError: (errno: number) => void): void;
  close(): void;
}

export interface RawNetlinkOptions {
  /** Requested SO_RCVBUF (the kernel doubles it and caps it at rmem_max unless root). */
  readonly recvBufferSize: number;
  /** Requested SO_SNDBUF: a datagram must fit in it. */
  readonly sendBufferSize: number;
}

export function hasErrno(e: unknown): e is { errno: number } {
  return typeof e === 'object' && e !== null && typeof (e as { errno?: unknown }).errno === 'number';
}

/** A raw socket of netlink `protocol`, unreferenced so an idle speaker does not hold the process. */
export function openRawNetlink(protocol: number, opts: RawNetlinkOptions): NetlinkTransport {
  const sock = new RawNetlinkSocket(protocol, { recvBufferSize: opts.recvBufferSize, sendBufferSize: opts.sendBufferSize });
  sock.unref();
  return {
    localPort: sock.address().port,
    recvBufferSize: sock.getRecvBufferSize(),
    send: (datagram) =>
      new Promise<void>((resolve, reject) => {
        sock.send(datagram, { port: 0 }, (err) => (err ? reject(err) : resolve()));
      }),
    listen: (onDatagram, onError) => {
      sock.on('message', (msg, rinfo) => onDatagram(msg, rinfo.port));
      sock.on('error', (err) => onError(hasErrno(err) ? Math.abs(err.errno) : 0));
    },
    close: () => sock.close(),
  };
}
