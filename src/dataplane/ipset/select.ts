// Which ipset backend a real node uses: netlink when the kernel answers the ipset protocol
// handshake, else the ipset binary (slower: a process per batch), with the reason for the log.
import type { IpsetBackend } from './backend.js';
import { NetlinkIpset } from './netlink.js';
import type { NetlinkIpsetOptions } from './netlink.js';
import { RealIpset } from './real.js';
import type { RealIpsetOptions } from './real.js';
import { errorMessage } from '../../model/error-text.js';

export interface SelectedIpset {
  readonly backend: IpsetBackend;
  /** For the start-up summary: "netlink (protocol 7)" or "ipset restore (netlink unavailable: …)". */
  readonly variant: string;
  close(): void;
}

export async function openIpsetBackend(opts: { netlink?: NetlinkIpsetOptions; tool?: RealIpsetOptions } = {}): Promise<SelectedIpset> {
  try {
    const nl = await NetlinkIpset.open(opts.netlink);
    return { backend: nl, variant: `netlink (protocol ${nl.protocol})`, close: () => nl.close() };
  } catch (e) {
    const why = errorMessage(e);
    return { backend: new RealIpset(opts.tool), variant: `ipset restore (netlink unavailable: ${why})`, close: () => undefined };
  }
}
