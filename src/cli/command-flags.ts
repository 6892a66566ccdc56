// Which kube-proxy flags each command uses, for its --help. Every command accepts all of them (a
// node's kube-proxy command line works unchanged), but lists only those that change what it does;
// `run` uses and lists them all.

const COMMON = ['config', 'hostname-override', 'version', 'help'];

/** What changes the plan: the planner's configuration and the node's name. */
export const PLAN_KUBE_PROXY_FLAGS: readonly string[] = [
  'proxy-mode', 'ipvs-scheduler', 'ipvs-strict-arp', 'ipvs-tcp-timeout', 'ipvs-tcpfin-timeout', 'ipvs-udp-timeout',
  'masquerade-all', 'iptables-masquerade-bit', 'cluster-cidr', 'detect-local-mode', 'pod-bridge-interface',
  'pod-interface-name-prefix', 'nodeport-addresses', 'bind-address', 'feature-gates',
  'conntrack-max-per-core', 'conntrack-min', 'conntrack-tcp-timeout-established', 'conntrack-tcp-timeout-close-wait',
  'conntrack-tcp-be-liberal', 'conntrack-udp-timeout', 'conntrack-udp-timeout-stream',
  ...COMMON,
];

/** The plan's, and the daemon's address for --live. */
export const TRACE_KUBE_PROXY_FLAGS: readonly string[] = [...PLAN_KUBE_PROXY_FLAGS, 'metrics-bind-address'];

/** The plan's, where the cluster and the daemon are, what cleanup keeps, and the log format. */
export const DIFF_KUBE_PROXY_FLAGS: readonly string[] = [
  ...PLAN_KUBE_PROXY_FLAGS, 'kubeconfig', 'master', 'metrics-bind-address', 'ipvs-exclude-cidrs', 'logging-format', 'log-format',
];

/** Where the daemon is (--bind-address changes the metrics address's default). */
export const STATUS_KUBE_PROXY_FLAGS: readonly string[] = ['metrics-bind-address', 'bind-address', 'config', 'help'];

/** What cleanup keeps, and how it logs. */
export const CLEANUP_KUBE_PROXY_FLAGS: readonly string[] = [
  'ipvs-exclude-cidrs', 'logging-format', 'log-format', 'log-text-split-stream', 'log-json-split-stream', 'feature-gates', 'config', 'version', 'help',
];
