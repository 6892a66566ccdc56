// One node's dataplane: a backend per subsystem. The sync loop programs it; the real one comes
// from real-dataplane.ts, tests wire the fakes. Kept here so dataplane/ never imports sync/.
import type { ConntrackBackend } from './conntrack/backend.js';
import type { IpsetBackend } from './ipset/backend.js';
import type { IptablesBackend } from './iptables/backend.js';
import type { IpvsBackend } from './ipvs/backend.js';
import type { NetifBackend } from './netif/backend.js';
import type { SysctlBackend } from './sysctl/backend.js';

export interface Dataplane {
  readonly ipvs: IpvsBackend;
  readonly ipset: IpsetBackend;
  /** One per family the node can proxy. */
  readonly iptables: readonly IptablesBackend[];
  readonly netif: NetifBackend;
  readonly sysctl: SysctlBackend;
  readonly conntrack: ConntrackBackend | undefined;
}
