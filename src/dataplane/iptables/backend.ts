// The iptables subsystem as the sync loop sees it, per address family: observe with iptables-save,
// change with one iptables-restore --noflush. Implemented for real and in memory (fake).
import type { IpFamily } from '../../model/types.js';
import type { IptablesTables } from '../../model/text/iptables.js';

export interface IptablesBackend {
  readonly family: IpFamily;
  /** Every table's chains and rules, as iptables-save prints them. */
  observe(): Promise<IptablesTables>;
  /**
   * Feeds `payload` to iptables-restore --noflush (ip6tables-restore for IPv6): chains declared in
   * it are created or flushed and rewritten; other chains keep their rules. A table's changes are
   * atomic (COMMIT). Throws DataplaneError with the failing line on refusal.
   */
  restore(payload: string): Promise<void>;
  /** Whether MASQUERADE --random-fully is supported. */
  supportsRandomFully(): Promise<boolean>;
}
