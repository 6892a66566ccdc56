// Conntrack flow removal for UDP services whose endpoints went away (a UDP flow keeps its DNAT
// target until it expires otherwise). Implemented for real (conntrack tool) and in memory (fake).
import type { IpFamily } from '../../model/types.js';

export interface ConntrackFilter {
  readonly family: IpFamily;
  readonly protocol: 'udp' | 'sctp';
  /** Original destination IP (the service address), when the flow was to a service IP. */
  readonly origDst?: string;
  /** Original destination port (service port or node port). */
  readonly origDstPort?: number;
  /** The endpoint the flow was DNATed to. */
  readonly replySrc: string;
}

export interface ConntrackBackend {
  /** Deletes matching flows; returns how many were deleted (0 when none matched). */
  deleteFlows(filter: ConntrackFilter): Promise<number>;
}
