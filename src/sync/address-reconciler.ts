// kube-ipvs0 and its addresses: the device exists, every planned VIP is bound as a host prefix
// (after its virtual server exists), and addresses no longer planned are unbound (after the
// iptables restore succeeded), as kube-proxy orders it. Also reads the node's own addresses.
import type { NetifBackend } from '../dataplane/netif/backend.js';
import { isLinkLocal, isLoopback, parseIp } from '../model/ip.js';
import { DUMMY_DEVICE } from '../model/names.js';
import type { IpFamily } from '../model/types.js';
import type { SyncReport } from './report.js';
import { errorMessage } from './report.js';

export interface ObservedAddresses {
  /** Addresses on kube-ipvs0 that we manage (no loopback, no IPv6 link-local). */
  readonly bound: ReadonlySet<string>;
  /** Every address on every other link: the node's own addresses (may include loopback). */
  readonly node: readonly string[];
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
        const p = parseIp(a.address);
        if (p && !isLoopback(p) && !(p.family === 'IPv6' && isLinkLocal(p))) bound.add(a.address);
      } else if (!node.includes(a.address)) {
        node.push(a.address);
      }
    }
    return { bound, node };
  }

  /** Returns the addresses it bound. */
  async bind(want: Iterable<string>, have: ReadonlySet<string>, report: SyncReport): Promise<string[]> {
    const done: string[] = [];
    for (const ip of want) {
      if (have.has(ip)) continue;
      try {
        await this.netif.bind(this.device, ip);
        done.push(ip);
        report.count('netif.bind');
      } catch (e) {
        report.fail({ subsystem: 'netif', op: 'bind', object: `${ip} on ${this.device}`, message: errorMessage(e) });
      }
    }
    return done;
  }

  /** Unbinds addresses of the given families that are bound but not wanted; returns them. */
  async unbind(want: ReadonlySet<string>, have: ReadonlySet<string>, families: readonly IpFamily[], report: SyncReport): Promise<string[]> {
    const done: string[] = [];
    for (const ip of have) {
      if (want.has(ip)) continue;
      const f = parseIp(ip)?.family;
      if (!f || !families.includes(f)) continue;
      try {
        await this.netif.unbind(this.device, ip);
        done.push(ip);
        report.count('netif.unbind');
      } catch (e) {
        report.fail({ subsystem: 'netif', op: 'unbind', object: `${ip} on ${this.device}`, message: errorMessage(e) });
      }
    }
    return done;
  }
}
