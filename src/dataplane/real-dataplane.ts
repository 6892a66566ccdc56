// The real dataplane of this node: IPVS over generic netlink, ipset and iptables through their
// tools, links and addresses over rtnetlink, /proc/sys, and the conntrack tool. Checks up front
// that IPVS is usable and says what to do when it is not.
import { access } from 'node:fs/promises';
import type { Dataplane } from './dataplane.js';
import { RealConntrack } from './conntrack/real.js';
import { DataplaneError } from './errors.js';
import { RealIpset } from './ipset/real.js';
import type { IptablesBackend } from './iptables/backend.js';
import { RealIptables } from './iptables/real.js';
import { selectIptablesCommands } from './iptables/select.js';
import { RealIpvs } from './ipvs/real.js';
import { RealNetif } from './netif/real.js';
import { RealSysctl } from './sysctl/real.js';
import type { IpFamily } from '../model/types.js';

export interface RealDataplane extends Dataplane {
  readonly ipvs: RealIpvs;
  /** Which iptables build was picked and why (for the start-up summary). */
  readonly iptablesVariant: string;
  close(): void;
}

async function ipv6Available(): Promise<boolean> {
  try {
    await access('/proc/net/if_inet6');
    return true;
  } catch {
    return false;
  }
}

export async function openRealDataplane(): Promise<RealDataplane> {
  const ipvs = new RealIpvs();
  try {
    // Resolving the family loads ip_vs (modprobe) or fails with a message naming the module.
    await ipvs.client.getInfo();
  } catch (e) {
    ipvs.close();
    const why = e instanceof Error ? e.message : String(e);
    throw new DataplaneError('UNAVAILABLE', 'ipvs', 'open', 'IPVS', `kube-ipvs cannot run without IPVS: ${why}`);
  }
  const families: IpFamily[] = ['IPv4'];
  if (await ipv6Available()) families.push('IPv6');
  const iptables: IptablesBackend[] = [];
  let variant = '';
  for (const family of families) {
    const sel = await selectIptablesCommands(family);
    variant ||= `${sel.variant} (${sel.reason})`;
    const backend = new RealIptables({ family, command: { save: sel.save, restore: sel.restore } });
    if (family === 'IPv6') {
      // Like kube-proxy, proxy IPv6 only when ip6tables works here.
      try {
        await backend.observe();
      } catch {
        continue;
      }
    }
    iptables.push(backend);
  }
  return {
    ipvs,
    ipset: new RealIpset(),
    iptables,
    netif: new RealNetif(),
    sysctl: new RealSysctl(),
    conntrack: new RealConntrack(),
    iptablesVariant: variant,
    close: () => ipvs.close(),
  };
}
