// The real dataplane of this node: IPVS over generic netlink, ipset over netfilter netlink (its
// tool as the fallback), iptables through its tools, links and addresses over rtnetlink,
// /proc/sys, and the conntrack tool. Checks up front that IPVS is usable and says what to do when
// it is not.
import { access, readFile } from 'node:fs/promises';
import type { Dataplane } from './dataplane.js';
import { RealConntrack } from './conntrack/real.js';
import { DataplaneError } from './errors.js';
import { openIpsetBackend } from './ipset/select.js';
import type { IptablesBackend } from './iptables/backend.js';
import { NftGeneration } from './iptables/nft-generation.js';
import { RealIptables } from './iptables/real.js';
import { selectIptablesBuild } from './iptables/select.js';
import type { IptablesVariant } from './iptables/select.js';
import type { IpvsBackend } from './ipvs/backend.js';
import { RealIpvs } from './ipvs/real.js';
import { RealNetif } from './netif/real.js';
import { RealSysctl } from './sysctl/real.js';
import type { IpFamily } from '../model/types.js';
import { errorMessage } from '../model/error-text.js';

export interface RealDataplane extends Dataplane {
  readonly ipvs: RealIpvs;
  /** Which iptables build was picked and why (for the start-up summary). */
  readonly iptablesVariant: string;
  /** The iptables build picked (which table modules its first restore asks the kernel for). */
  readonly iptablesBuild: IptablesVariant;
  /** Netlink, or the ipset tool and why netlink could not be used (for the start-up summary). */
  readonly ipsetVariant: string;
  /** Each family not proxied and why (its iptables failed, or the kernel has IPv6 off). */
  readonly familiesSkipped: readonly string[];
  close(): void;
}

/**
 * Whether the kernel has IPv6 on, as kube-proxy v1.36.3 checks it before running an IPv6 proxier
 * (`cmd/kube-proxy/app/server_linux.go` platformCheckSupported): /proc/net/if_inet6 exists and
 * net.ipv6.conf.all.disable_ipv6 is not 1. Paths are parameters for tests.
 */
export async function ipv6Enabled(paths = { ifInet6: '/proc/net/if_inet6', disableIpv6: '/proc/sys/net/ipv6/conf/all/disable_ipv6' }): Promise<boolean> {
  try {
    await access(paths.ifInet6);
  } catch {
    return false;
  }
  try {
    return (await readFile(paths.disableIpv6, 'utf8')).trim() !== '1';
  } catch {
    // kube-proxy treats an unreadable switch as "not disabled".
    return true;
  }
}

export async function openRealDataplane(): Promise<RealDataplane> {
  const ipvs = new RealIpvs();
  // Resolving the family loads ip_vs (modprobe) or fails with a message naming the module. IPVS,
  // iptables and ipset each make a fresh node's kernel load modules (seconds under emulation): at
  // once, not one after the other.
  const [ipvsOpened, restOpened] = await Promise.allSettled([ipvs.client.getInfo(), openNonIpvs()]);
  if (ipvsOpened.status === 'rejected') {
    ipvs.close();
    if (restOpened.status === 'fulfilled') restOpened.value.close();
    const why = errorMessage(ipvsOpened.reason);
    throw new DataplaneError('UNAVAILABLE', 'ipvs', 'open', 'IPVS', `kube-ipvs cannot run without IPVS: ${why}`);
  }
  if (restOpened.status === 'rejected') {
    ipvs.close();
    throw restOpened.reason;
  }
  const rest = restOpened.value;
  if (rest.iptables.length === 0) {
    ipvs.close();
    rest.close();
    throw new DataplaneError('UNAVAILABLE', 'iptables', 'open', 'iptables', `iptables is not available on this host (${rest.familiesSkipped.join('; ')}): install iptables and run kube-ipvs as root`);
  }
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
  listServiceSetups: async () => [],
  listRealServers: async () => [],
  listRealServerBlocks: async () => new Map(),
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
  // Its set types load while iptables is probed (openIpsetBackend never rejects: it falls back to the tool).
  const ipsetOpening = openIpsetBackend();
  try {
    return await openIptablesWith(ipsetOpening);
  } catch (e) {
    void ipsetOpening.then((i) => i.close());
    throw e;
  }
}

async function openIptablesWith(ipsetOpening: ReturnType<typeof openIpsetBackend>): Promise<Omit<RealDataplane, 'ipvs'>> {
  // kube-proxy proxies each family whose iptables works, and IPv6 only with the kernel's IPv6 on.
  const families: IpFamily[] = ['IPv4'];
  const skipped: string[] = [];
  if (await ipv6Enabled()) families.push('IPv6');
  else skipped.push('IPv6: the kernel has IPv6 disabled (/proc/net/if_inet6 missing or net.ipv6.conf.all.disable_ipv6=1)');
  // One look at the iptables builds for both families, then each family's save checked, at once:
  // every spawn costs (seconds under emulation) before the first sync can start.
  const build = await selectIptablesBuild();
  const variant = `${build.variant} (${build.reason})`;
  // One socket serves both families: the generation counts every nf_tables commit of the namespace.
  const generation = NftGeneration.open();
  const checked = await Promise.all(
    families.map(async (family) => {
      const backend = new RealIptables({ family, command: build.commandsFor(family), ...(generation ? { generation } : {}) });
      try {
        await backend.observe();
        return backend;
      } catch (e) {
        skipped.push(`${family}: ${errorMessage(e)}`);
        return undefined;
      }
    }),
  );
  const iptables: IptablesBackend[] = checked.filter((b): b is RealIptables => b !== undefined);
  const ipset = await ipsetOpening;
  return {
    ipset: ipset.backend,
    iptables,
    netif: new RealNetif(),
    sysctl: new RealSysctl(),
    conntrack: new RealConntrack(),
    iptablesVariant: variant,
    iptablesBuild: build.variant,
    ipsetVariant: ipset.variant,
    familiesSkipped: skipped,
    close: () => {
      ipset.close();
      generation?.close();
    },
  };
}
