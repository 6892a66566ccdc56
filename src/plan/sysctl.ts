// Kernel settings kube-proxy's IPVS mode needs (NewProxier), plus the conntrack tuning its server
// applies in every mode. "atLeast" settings are only ever raised.
import type { ProxyConfig } from '../config/types.js';
import type { NodeInfo } from '../model/types.js';

export interface SysctlSetting {
  /** Slash form, as under /proc/sys: "net/ipv4/vs/conntrack". */
  readonly key: string;
  readonly value: number;
  readonly mode: 'exact' | 'atLeast';
  readonly why: string;
}

export interface IpvsTimeouts {
  /** Seconds; 0 keeps the kernel's value. */
  readonly tcp: number;
  readonly tcpFin: number;
  readonly udp: number;
}

function kernelAtLeast(version: string | undefined, major: number, minor: number): boolean | undefined {
  const m = version?.match(/^(\d+)\.(\d+)/);
  if (!m) return undefined;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > major || (maj === major && min >= minor);
}

export function planSysctls(node: Pick<NodeInfo, 'kernelVersion'>, config: Pick<ProxyConfig, 'ipvs' | 'conntrack'>, cpuCount: number): SysctlSetting[] {
  const out: SysctlSetting[] = [
    { key: 'net/ipv4/vs/conntrack', value: 1, mode: 'exact', why: 'lets iptables NAT and conntrack see IPVS-forwarded flows' },
  ];
  // conn_reuse_mode=0 avoids 1 s stalls on reused ports (k/k #70747), but kernels >= 5.9 fixed that
  // and the setting breaks graceful termination there (k/k #93297), so it is left alone.
  const from41 = kernelAtLeast(node.kernelVersion, 4, 1);
  const from59 = kernelAtLeast(node.kernelVersion, 5, 9);
  if (from41 === true && from59 === false) {
    out.push({ key: 'net/ipv4/vs/conn_reuse_mode', value: 0, mode: 'exact', why: 'kernel < 5.9: avoid 1 s SYN stalls on reused source ports' });
  }
  out.push(
    { key: 'net/ipv4/vs/expire_nodest_conn', value: 1, mode: 'exact', why: 'drop connections to deleted real servers on their next packet' },
    { key: 'net/ipv4/vs/expire_quiescent_template', value: 1, mode: 'exact', why: 'expire persistence templates of weight-0 real servers' },
    { key: 'net/ipv4/ip_forward', value: 1, mode: 'exact', why: 'forward DNATed traffic to pods on other nodes' },
  );
  if (config.ipvs.strictARP) {
    out.push(
      { key: 'net/ipv4/conf/all/arp_ignore', value: 1, mode: 'exact', why: '--ipvs-strict-arp: do not answer ARP for kube-ipvs0 VIPs' },
      { key: 'net/ipv4/conf/all/arp_announce', value: 2, mode: 'exact', why: '--ipvs-strict-arp: never announce kube-ipvs0 VIPs' },
    );
  }
  const c = config.conntrack;
  const max = Math.max(c.maxPerCore * cpuCount, c.min);
  if (c.maxPerCore > 0 && max > 0) out.push({ key: 'net/netfilter/nf_conntrack_max', value: max, mode: 'atLeast', why: 'conntrack table sized per core (--conntrack-max-per-core, --conntrack-min)' });
  if (c.tcpEstablishedTimeoutS > 0) out.push({ key: 'net/netfilter/nf_conntrack_tcp_timeout_established', value: c.tcpEstablishedTimeoutS, mode: 'exact', why: '--conntrack-tcp-timeout-established' });
  if (c.tcpCloseWaitTimeoutS > 0) out.push({ key: 'net/netfilter/nf_conntrack_tcp_timeout_close_wait', value: c.tcpCloseWaitTimeoutS, mode: 'exact', why: '--conntrack-tcp-timeout-close-wait' });
  // As upstream's conntrack.SetSysctls: false leaves the kernel's setting alone.
  if (c.tcpBeLiberal) out.push({ key: 'net/netfilter/nf_conntrack_tcp_be_liberal', value: 1, mode: 'exact', why: '--conntrack-tcp-be-liberal' });
  if (c.udpTimeoutS > 0) out.push({ key: 'net/netfilter/nf_conntrack_udp_timeout', value: c.udpTimeoutS, mode: 'exact', why: '--conntrack-udp-timeout' });
  if (c.udpStreamTimeoutS > 0) out.push({ key: 'net/netfilter/nf_conntrack_udp_timeout_stream', value: c.udpStreamTimeoutS, mode: 'exact', why: '--conntrack-udp-timeout-stream' });
  return out;
}

export function planIpvsTimeouts(config: Pick<ProxyConfig, 'ipvs'>): IpvsTimeouts {
  return { tcp: config.ipvs.tcpTimeoutS, tcpFin: config.ipvs.tcpFinTimeoutS, udp: config.ipvs.udpTimeoutS };
}
