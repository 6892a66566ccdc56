// The one validated configuration every stage reads. Built from kube-proxy's flags and/or a
// KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1) by config/load.ts.

export type DetectLocalMode = 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix';
export type LogFormat = 'text' | 'json';

export interface IpvsConfig {
  /** IPVS scheduler for every virtual server ("rr" when the flag is empty). */
  readonly scheduler: string;
  /** --ipvs-sync-period: the longest time between two syncs (full resync), in ms. */
  readonly syncPeriodMs: number;
  /** --ipvs-min-sync-period: the shortest time between two syncs, in ms; 0 syncs on every change. */
  readonly minSyncPeriodMs: number;
  /** Canonical CIDRs whose virtual servers we never touch. */
  readonly excludeCIDRs: readonly string[];
  readonly strictARP: boolean;
  /** IPVS connection timeouts in seconds; 0 leaves the kernel's value. */
  readonly tcpTimeoutS: number;
  readonly tcpFinTimeoutS: number;
  readonly udpTimeoutS: number;
}

export interface DetectLocalConfig {
  readonly mode: DetectLocalMode;
  /** Canonical cluster CIDRs (--cluster-cidr), at most one per family. */
  readonly clusterCIDRs: readonly string[];
  /** Canonical node pod CIDRs (Node.spec.podCIDRs), used with mode NodeCIDR. */
  readonly nodeCIDRs: readonly string[];
  readonly bridgeInterface: string;
  readonly interfaceNamePrefix: string;
}

export interface ConntrackConfig {
  readonly maxPerCore: number;
  readonly min: number;
  readonly tcpEstablishedTimeoutS: number;
  readonly tcpCloseWaitTimeoutS: number;
  /** nf_conntrack_tcp_be_liberal = 1 when true; left alone when false. */
  readonly tcpBeLiberal: boolean;
  /** Seconds; 0 leaves the kernel's value. */
  readonly udpTimeoutS: number;
  readonly udpStreamTimeoutS: number;
}

/** clientConnection: the API client's request rate and encoding. */
export interface ClientConnectionConfig {
  /** Requests per second (token bucket); 0 never happens (defaulted to 5); negative: no limit. */
  readonly qps: number;
  readonly burst: number;
  /** As configured; kube-ipvs always speaks JSON (see NO_EFFECT in load.ts). */
  readonly contentType: string;
  readonly acceptContentTypes: string;
}

export interface LoggingConfig {
  readonly format: LogFormat;
  /** Info and warning lines to stdout, errors to stderr; otherwise all to stderr. */
  readonly splitStream: boolean;
}

export interface ProxyConfig {
  readonly mode: 'ipvs';
  readonly ipvs: IpvsConfig;
  readonly masqueradeAll: boolean;
  /** --iptables-masquerade-bit, 0..31. */
  readonly masqueradeBit: number;
  readonly detectLocal: DetectLocalConfig;
  /** Canonical CIDRs, or ["primary"]; empty means every node address. */
  readonly nodePortAddresses: readonly string[];
  /** Lower-cased, trimmed node name; the host name when not overridden. */
  readonly hostnameOverride: string;
  /** host:port, or "" to disable. */
  readonly healthzBindAddress: string;
  /** host:port, or "" to disable. */
  readonly metricsBindAddress: string;
  /** --bind-address: overrides the detected primary node IP when not 0.0.0.0/::. */
  readonly bindAddress: string;
  readonly kubeconfig: string;
  readonly master: string;
  readonly cleanup: boolean;
  readonly initOnly: boolean;
  /**
   * Validated, and written by --write-config-to. Upstream uses it as its informers' resync period,
   * which replays cached objects to the proxy's change trackers, where unchanged objects record no
   * change: nothing observable. kube-ipvs's reflectors keep the same objects and do not replay.
   */
  readonly configSyncPeriodMs: number;
  readonly conntrack: ConntrackConfig;
  readonly clientConnection: ClientConnectionConfig;
  /** The feature gates as set (the effective values of the ones kube-ipvs reads are below). */
  readonly featureGates: Readonly<Record<string, boolean>>;
  /** Feature gate AllowServiceExternalIPs: false drops Service externalIPs from the plan. */
  readonly allowServiceExternalIPs: boolean;
  /** Written to /proc/self/oom_score_adj by the daemon. */
  readonly oomScoreAdj: number;
  /** A health or metrics server that cannot bind stops the daemon instead of retrying. */
  readonly bindAddressHardFail: boolean;
  readonly logging: LoggingConfig;
  /** The --config file this came from, if any. */
  readonly configFile: string | undefined;
}
