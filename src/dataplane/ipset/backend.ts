// The ipset subsystem as the sync loop sees it: observe sets as `ipset save` prints them, apply a
// batch of operations in order. Implemented for real (ipset restore/save) and in memory (fake).
import type { IpsetSpec, IpsetState } from '../../model/kernel.js';
import type { DataplaneError } from '../errors.js';

export type IpsetOp =
  | { readonly kind: 'create'; readonly spec: IpsetSpec }
  | { readonly kind: 'destroy'; readonly name: string }
  | { readonly kind: 'flush'; readonly name: string }
  | { readonly kind: 'add'; readonly name: string; readonly entry: string }
  | { readonly kind: 'del'; readonly name: string; readonly entry: string };

export interface IpsetApplyResult {
  /** How many leading operations took effect. */
  readonly applied: number;
  /** The failure that stopped the batch (its opIndex is the failed operation), if any. */
  readonly error?: DataplaneError;
}

export interface IpsetBackend {
  /** The named sets (all sets when omitted), entries as `ipset save` prints them; missing names are absent. */
  observe(names?: readonly string[]): Promise<IpsetState[]>;
  /**
   * Applies operations in order with `-exist` semantics (re-creating an identical set, adding a
   * present entry or deleting an absent one is success); stops at the first failure.
   */
  apply(ops: readonly IpsetOp[]): Promise<IpsetApplyResult>;
}
