// kube-ipvs0 and its addresses: the device exists, every planned VIP is bound as a host prefix
// (after its virtual server exists), and addresses no longer planned are unbound (after the
// iptables restore succeeded), as kube-proxy orders it. Also reads the node's own addresses.
import type { NetifBackend, NetifOpResult } from '../dataplane/netif/backend.js';
import { isLinkLocal, isLoopback, parseIp } from '../model/ip.js';
import { DUMMY_DEVICE } from '../model/names.js';
import type { IpFamily } from '../model/types.js';
import type { SyncReport } from './report.js';
import { errorMessage } from '../model/error-text.js';

export interface ObservedAddresses {
  /** Addresses on kube-ipvs0 that we manage (no loopback, no IPv6 link-local). */
  readonly bound: ReadonlySet<string>;
  /** Every address on every other link: the node's own addresses (may include loopback). */
  readonly node: readonly string[];
}

/**
 * Whether an address on kube-ipvs0 (as the backend formats it) is one of ours to manage: not
 * loopback, not IPv6 link-local. An IPv4 one is decided by its first octet without parsing it: a
 * full sync looks at every VIP of the cluster.
 */
function managedAddress(address: string): boolean {
  if (!address.includes(':')) return !address.startsWith('127.');
  const p = parseIp(address);
  return p !== undefined && !isLoopback(p) && !(p.family === 'IPv6' && isLinkLocal(p));
}

export class AddressReconciler {
  constructor(
    private readonly netif: NetifBackend,
    private readonly device = DUMMY_DEVICE,
  ) {}

  async ensureDevice(report: SyncReport): Promise<boolean> {
    try {
      const r = await this.netif.ensureDummy(this.device);
      if (r.created) report.count('netif.createDevice');
      return true;
    } catch (e) {
      report.fail({ subsystem: 'netif', op: 'ensureDummy', object: this.device, message: errorMessage(e) });
      return false;
    }
  }

  async observe(): Promise<ObservedAddresses> {
    const bound = new Set<string>();
    const node: string[] = [];
    for (const a of await this.netif.addresses()) {
      if (a.ifname === this.device) {
        if (managedAddress(a.address)) bound.add(a.address);
      } else if (!node.includes(a.address)) {
        node.push(a.address);
      }
    }
    return { bound, node };
  }

  /** Returns the addresses it bound. Batched: thousands of VIPs cost a few round trips. */
  async bind(want: Iterable<string>, have: ReadonlySet<string>, report: SyncReport): Promise<string[]> {
    const ops = [...want].filter((ip) => !have.has(ip)).map((ip) => ({ dev: this.device, ip }));
    return this.record(ops.length > 0 ? await this.netif.bindMany(ops) : [], 'bind', report);
  }

  private record(results: readonly NetifOpResult[], op: 'bind' | 'unbind', report: SyncReport): string[] {
    const done: string[] = [];
    for (const r of results) {
      if (r.ok) {
        done.push(r.ip);
        report.count(`netif.${op}`);
      } else {
        report.fail({ subsystem: 'netif', op, object: `${r.ip} on ${this.device}`, message: errorMessage(r.error) });
      }
    }
    return done;
  }

  /** Unbinds addresses of the given families that are bound but not wanted; returns them. */
  async unbind(want: ReadonlySet<string>, have: ReadonlySet<string>, families: readonly IpFamily[], report: SyncReport): Promise<string[]> {
    const ops = [...have]
      .filter((ip) => {
        if (want.has(ip)) return false;
        const f = parseIp(ip)?.family;
        return f !== undefined && families.includes(f);
      })
      .map((ip) => ({ dev: this.device, ip }));
    return this.record(ops.length > 0 ? await this.netif.unbindMany(ops) : [], 'unbind', report);
  }
}
