// Links and addresses (rtnetlink): the kube-ipvs0 dummy device, its /32 and /128 addresses, and the
// node's own addresses. Implemented for real and in memory (fake).
import type { IpFamily } from '../../model/types.js';
import type { DataplaneError } from '../errors.js';

export interface InterfaceAddress {
  readonly ifname: string;
  readonly ifindex: number;
  readonly family: IpFamily;
  /** Canonical text. */
  readonly address: string;
  readonly prefix: number;
}

export interface NetifAddressOp {
  readonly dev: string;
  readonly ip: string;
}

export type NetifOpResult =
  | { readonly dev: string; readonly ip: string; readonly ok: true }
  | { readonly dev: string; readonly ip: string; readonly ok: false; readonly error: DataplaneError };

export interface NetifBackend {
  /** Creates the dummy link if missing (it is never set up, as kube-proxy leaves it down). */
  ensureDummy(name: string): Promise<{ readonly created: boolean }>;
  /** Deletes the link only when it exists and is of kind dummy. */
  deleteDummy(name: string): Promise<{ readonly deleted: boolean }>;
  /** Every address on every link. */
  addresses(): Promise<InterfaceAddress[]>;
  /** Adds ip as a host prefix (/32, /128) on dev; an address already there is success. */
  bind(dev: string, ip: string): Promise<void>;
  /** Removes the host-prefix address; an address already gone is success. */
  unbind(dev: string, ip: string): Promise<void>;
  /** bind() for many addresses in few kernel round trips; one result per op, in order. */
  bindMany(ops: readonly NetifAddressOp[]): Promise<NetifOpResult[]>;
  /** unbind() for many addresses in few kernel round trips; one result per op, in order. */
  unbindMany(ops: readonly NetifAddressOp[]): Promise<NetifOpResult[]>;
}
