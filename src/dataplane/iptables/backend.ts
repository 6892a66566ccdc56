// The iptables subsystem as the sync loop sees it, per address family: observe with iptables-save,
// change with one iptables-restore --noflush. Implemented for real and in memory (fake).
import type { IpFamily } from '../../model/types.js';
import type { IptablesTables } from '../../model/text/iptables.js';

export interface IptablesBackend {
  readonly family: IpFamily;
  /** Every table's chains and rules, as iptables-save prints them (the caller only reads them: a backend may hand out the same object again). */
  observe(): Promise<IptablesTables>;
  /**
   * Feeds `payload` to iptables-restore --noflush (ip6tables-restore for IPv6): chains declared in
   * it are created or flushed and rewritten; other chains keep their rules. A table's changes are
   * atomic (COMMIT). Throws DataplaneError with the failing line on refusal.
   */
  restore(payload: string): Promise<void>;
  /** Whether MASQUERADE --random-fully is supported. */
  supportsRandomFully(): Promise<boolean>;
  /**
   * A number the kernel changes whenever a rule of this build may have changed (nf_tables' ruleset
   * generation), read before observe(): while it stays the same, observe() would show the same
   * rules. Undefined when the build has none (legacy xtables) or it cannot be read.
   */
  generation(): Promise<number | undefined>;
}
