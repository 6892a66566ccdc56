// A whole node's dataplane in memory: the fakes wired together as the kernel ties them (rules
// referencing sets, sets refusing destruction while referenced), plus a proxier over them.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import type { ProblemSink } from '../../src/cluster/problems.js';
import { ClusterTracker } from '../../src/cluster/tracker.js';
import type { ProxyConfig } from '../../src/config/types.js';
import { FakeConntrack } from '../../src/dataplane/conntrack/fake.js';
import { FakeIpset, FaultyIpset } from '../../src/dataplane/ipset/fake.js';
import { FakeIptables } from '../../src/dataplane/iptables/fake.js';
import { FakeIpvs } from '../../src/dataplane/ipvs/fake.js';
import { FakeNetif } from '../../src/dataplane/netif/fake.js';
import { FakeSysctl } from '../../src/dataplane/sysctl/fake.js';
import { ManualClock } from '../../src/model/clock.js';
import { Proxier } from '../../src/sync/proxier.js';
import type { Dataplane } from '../../src/sync/proxier.js';
import { config as makeConfig, NODE } from './world.js';

export interface FakeNode {
  readonly ipvs: FakeIpvs;
  readonly ipset: FakeIpset;
  readonly iptables: FakeIptables;
  readonly netif: FakeNetif;
  readonly sysctl: FakeSysctl;
  readonly conntrack: FakeConntrack;
  readonly dataplane: Dataplane;
  readonly tracker: ClusterTracker;
  readonly clock: ManualClock;
  readonly proxier: Proxier;
  apply(objects: { services?: V1Service[]; slices?: V1EndpointSlice[] }): void;
  /** Every subsystem's text dump, for before/after comparisons. */
  dumps(): { ipvs: string; ipset: string; iptables: string; netif: string };
}

export function fakeNode(opts: { config?: ProxyConfig; nodeAddresses?: string[]; drainTimeoutMs?: number; faultRate?: number; nodeObject?: () => V1Node | undefined; problems?: ProblemSink } = {}): FakeNode {
  const config = opts.config ?? makeConfig();
  const ref: { iptables?: FakeIptables } = {};
  const ipset = new FakeIpset({ isReferenced: (name) => ref.iptables?.isSetReferenced(name) ?? false });
  const rate = opts.faultRate ?? 0;
  const iptables = new FakeIptables({ family: 'IPv4', hasSet: (name) => ipset.dump().includes(`create ${name} `), randomFully: true, ...(rate > 0 ? { faults: { failureRate: rate, seed: 11 } } : {}) });
  const ipvs = new FakeIpvs();
  const netif = new FakeNetif({ node: { name: 'eth0', kind: 'veth', addresses: (opts.nodeAddresses ?? ['192.168.0.10']).map((a) => `${a}/24`) } });
  const sysctl = new FakeSysctl({ 'net/ipv4/vs/conntrack': '0', 'net/ipv4/ip_forward': '0', 'net/ipv4/vs/expire_nodest_conn': '0', 'net/ipv4/vs/expire_quiescent_template': '0', 'net/netfilter/nf_conntrack_max': '65536', 'net/netfilter/nf_conntrack_tcp_timeout_established': '432000', 'net/netfilter/nf_conntrack_tcp_timeout_close_wait': '60', 'net/netfilter/nf_conntrack_tcp_be_liberal': '0', 'net/netfilter/nf_conntrack_udp_timeout': '30', 'net/netfilter/nf_conntrack_udp_timeout_stream': '120' });
  const conntrack = new FakeConntrack();
  if (rate > 0) ipvs.setFaults({ rate, seed: 7 });
  // Faults on the ipset side go through a wrapper, so dumps still read the real fake state.
  const ipsetSide = rate > 0 ? new FaultyIpset(ipset, { failureRate: rate, seed: 5 }) : ipset;
  const dataplane: Dataplane = { ipvs, ipset: ipsetSide, iptables: [iptables], netif, sysctl, conntrack };
  const tracker = new ClusterTracker(NODE, opts.problems ?? (() => {}));
  const clock = new ManualClock();
  const proxier = new Proxier({ config, dataplane, tracker, clock, kernelVersion: '6.1.0', ...(opts.nodeObject ? { nodeObject: opts.nodeObject } : {}), ...(opts.drainTimeoutMs !== undefined ? { drainTimeoutMs: opts.drainTimeoutMs } : {}) });
  ref.iptables = iptables;
  const fixedIptables = iptables;
  return {
    ipvs, ipset, iptables: fixedIptables, netif, sysctl, conntrack, dataplane, tracker, clock, proxier,
    apply(objects) {
      for (const s of objects.services ?? []) tracker.upsertService(s);
      for (const s of objects.slices ?? []) tracker.upsertEndpointSlice(s);
    },
    dumps: () => ({ ipvs: ipvs.dump(), ipset: ipset.dump(), iptables: fixedIptables.dump(), netif: netif.dump() }),
  };
}
