// The real dataplane of this node: IPVS over generic netlink, ipset over netfilter netlink (its
// tool as the fallback), iptables through its tools, links and addresses over rtnetlink,
// /proc/sys, and the conntrack tool. Checks up front that IPVS is usable and says what to do when
// it is not.
import { access } from 'node:fs/promises';
import type { Dataplane } from './dataplane.js';
import { RealConntrack } from './conntrack/real.js';
import { DataplaneError } from './errors.js';
import { openIpsetBackend } from './ipset/select.js';
import type { IptablesBackend } from './iptables/backend.js';
import { RealIptables } from './iptables/real.js';
import { selectIptablesCommands } from './iptables/select.js';
import type { IpvsBackend } from './ipvs/backend.js';
import { RealIpvs } from './ipvs/real.js';
import { RealNetif } from './netif/real.js';
import { RealSysctl } from './sysctl/real.js';
import type { IpFamily } from '../model/types.js';

export interface RealDataplane extends Dataplane {
  readonly ipvs: RealIpvs;
  /** Which iptables build was picked and why (for the start-up summary). */
  readonly iptablesVariant: string;
  /** Netlink, or the ipset tool and why netlink could not be used (for the start-up summary). */
  readonly ipsetVariant: string;
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
  const rest = await openNonIpvs();
  return {
    ...rest,
    ipvs,
    close: () => {
      ipvs.close();
      rest.close();
    },
  };
}

/** IPVS that cannot load: nothing of it exists to clean up. */
const ABSENT_IPVS: IpvsBackend = {
  listServices: async () => [],
  listRealServers: async () => [],
  listAllRealServers: async () => new Map(),
  apply: async (ops) => ops.map((op) => ({ op, ok: true as const })),
  setTimeouts: async () => undefined,
  getTimeouts: async () => ({ tcp: 0, tcpFin: 0, udp: 0 }),
  flush: async () => undefined,
  close: () => undefined,
};

/**
 * For cleanup on a node whose kernel cannot load ip_vs: iptables, ipsets and kube-ipvs0 may still
 * be left from an earlier run and are removed; `ipvsAvailable` says which case this is.
 */
export async function openCleanupDataplane(): Promise<Dataplane & { readonly ipvsAvailable: boolean; close(): void }> {
  try {
    const dp = await openRealDataplane();
    return { ...dp, ipvsAvailable: true };
  } catch (e) {
    if (!(e instanceof DataplaneError)) throw e;
    const rest = await openNonIpvs();
    return { ...rest, ipvs: ABSENT_IPVS, ipvsAvailable: false };
  }
}

async function openNonIpvs(): Promise<Omit<RealDataplane, 'ipvs'>> {
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
  const ipset = await openIpsetBackend();
  return {
    ipset: ipset.backend,
    iptables,
    netif: new RealNetif(),
    sysctl: new RealSysctl(),
    conntrack: new RealConntrack(),
    iptablesVariant: variant,
    ipsetVariant: ipset.variant,
    close: () => ipset.close(),
  };
}
