// IPVS as the sync loop sees it: list virtual servers and their real servers, apply a batch of
// writes with one result each. Implemented for real (generic netlink) and in memory (fake).
import type { IpvsOp, IpvsOpResult } from './netlink-client.js';
import type { IpvsTimeouts, ObservedRealServer, ObservedVirtualServer, ObservedVirtualServerSetup } from './netlink-codec.js';
import type { RealServerBlock } from './proc.js';

export type { IpvsOp, IpvsOpResult } from './netlink-client.js';
export type { IpvsTimeouts, ObservedRealServer, ObservedVirtualServer, ObservedVirtualServerSetup } from './netlink-codec.js';
export type { ListedRealServer, RealServerBlock } from './proc.js';

export interface IpvsBackend {
  listServices(): Promise<ObservedVirtualServer[]>;
  /** The same list without traffic counters: what a resync compares, cheaper to read again. */
  listServiceSetups(): Promise<ObservedVirtualServerSetup[]>;
  /** Real servers of one virtual server; empty when it has none or does not exist. */
  listRealServers(vs: ObservedVirtualServer | IpvsOp['vs']): Promise<ObservedRealServer[]>;
  /**
   * The real servers of every (non-fwmark) virtual server, by vsKey, in one read of
   * /proc/net/ip_vs: what a full resync needs, without a dump per virtual server. Each virtual
   * server's lines are parsed only when asked (allRealServers in proc.ts parses them all).
   */
  listRealServerBlocks(): Promise<ReadonlyMap<string, RealServerBlock>>;
  /** Applies every op (a failure does not stop the rest) and reports each. */
  apply(ops: readonly IpvsOp[]): Promise<IpvsOpResult[]>;
  setTimeouts(t: IpvsTimeouts): Promise<void>;
  getTimeouts(): Promise<IpvsTimeouts>;
  /** Removes every virtual server (cleanup only). */
  flush(): Promise<void>;
  close(): void;
}
