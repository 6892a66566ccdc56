// The kube-proxy command line as kube-ipvs accepts it: every flag of the kube-proxy release in
// upstream/version.ts (test/config/kube-proxy-flags.test.ts compares with upstream's --help), in
// four groups by how --config treats them, with --help text; and why a flag changes nothing here.
import { featureGatesHelp } from './feature-gates.js';
import { formatFlagHelp, type FlagSpec, type FlagValue } from './flags.js';
import type { SettingKey } from './settings.js';
import { KUBE_PROXY_VERSION } from './upstream/version.js';

export type Conversion = 'string' | 'bool' | 'list' | 'duration' | 'int' | 'float' | 'gates';
export interface SettingFlag {
  readonly spec: FlagSpec;
  readonly key: SettingKey;
  readonly conv: Conversion;
}

export const DURATION_EXAMPLE = 'a duration such as 30s, 1m or 500ms';
export const PROTOBUF = 'application/vnd.kubernetes.protobuf';
export const JSON_TYPE = 'application/json';

function setting(
  name: string,
  key: SettingKey,
  conv: Conversion,
  defaultValue: FlagValue,
  help: string,
  valueName?: string,
): SettingFlag {
  const kind = conv === 'bool' ? 'bool' : conv === 'list' || conv === 'gates' ? 'list' : 'string';
  const placeholder =
    valueName ??
    (conv === 'duration' ? 'duration' : conv === 'int' ? 'int32' : conv === 'float' ? 'float32' : conv === 'list' ? 'strings' : undefined);
  return { spec: { name, kind, help, default: defaultValue, ...(placeholder ? { valueName: placeholder } : {}) }, key, conv };
}

/** kube-proxy flags that set a configuration field (ignored when --config is given). */
export const SETTING_FLAGS: readonly SettingFlag[] = [
  setting('proxy-mode', 'mode', 'string', '', 'Which proxy mode to use; kube-ipvs implements only "ipvs" (empty means ipvs).', 'ProxyMode'),
  setting('ipvs-scheduler', 'scheduler', 'string', '',
    'The IPVS scheduler: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf or twos (empty means rr).'),
  setting('ipvs-sync-period', 'syncPeriodMs', 'duration', '30s',
    "The maximum interval between IPVS rule syncs (e.g. '5s', '1m', '2h22m'). Must be greater than 0."),
  setting('ipvs-min-sync-period', 'minSyncPeriodMs', 'duration', '1s',
    "The minimum interval between IPVS rule syncs as endpoints and services change (e.g. '5s', '1m', '2h22m'); 0 syncs on every change."),
  setting('ipvs-exclude-cidrs', 'excludeCIDRs', 'list', [],
    'A comma-separated list of CIDRs whose IPVS virtual servers the proxier never touches when cleaning up.'),
  setting('ipvs-strict-arp', 'strictARP', 'bool', false, 'Enable strict ARP by setting arp_ignore to 1 and arp_announce to 2.'),
  setting('ipvs-tcp-timeout', 'tcpTimeoutMs', 'duration', '0s',
    "The timeout for idle IPVS TCP connections, 0 to leave as-is (e.g. '5s', '1m', '2h22m')."),
  setting('ipvs-tcpfin-timeout', 'tcpFinTimeoutMs', 'duration', '0s',
    "The timeout for IPVS TCP connections after receiving a FIN packet, 0 to leave as-is (e.g. '5s', '1m', '2h22m')."),
  setting('ipvs-udp-timeout', 'udpTimeoutMs', 'duration', '0s',
    "The timeout for IPVS UDP packets, 0 to leave as-is (e.g. '5s', '1m', '2h22m')."),
  setting('masquerade-all', 'masqueradeAll', 'bool', false, 'SNAT all traffic sent via Service cluster IPs.'),
  setting('iptables-masquerade-bit', 'masqueradeBit', 'int', '14',
    'The bit of the fwmark space to mark packets requiring SNAT with. Must be within the range [0, 31].'),
  setting('cluster-cidr', 'clusterCIDR', 'string', '',
    'The CIDR range of pods in the cluster (a comma-separated IPv4,IPv6 pair for dual-stack). Used with --detect-local-mode=ClusterCIDR.'),
  setting('detect-local-mode', 'detectLocalMode', 'string', 'ClusterCIDR',
    'How to detect traffic from local pods: ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix.', 'LocalMode'),
  setting('pod-bridge-interface', 'bridgeInterface', 'string', '',
    'A bridge interface name; traffic from it is local when --detect-local-mode is BridgeInterface.'),
  setting('pod-interface-name-prefix', 'interfaceNamePrefix', 'string', '',
    'An interface name prefix; traffic from matching interfaces is local when --detect-local-mode is InterfaceNamePrefix.'),
  setting('nodeport-addresses', 'nodePortAddresses', 'list', [],
    'The addresses to serve NodePorts on: a comma-separated list of CIDRs (e.g. 1.2.3.0/24,fd00::/64), or "primary" for the node\'s primary IPs. Empty means all local addresses.'),
  setting('healthz-bind-address', 'healthzBindAddress', 'string', '0.0.0.0:10256',
    "The IP address (port 10256 when omitted) for the health check server ('[::]:10256' when --bind-address is IPv6). Set empty to disable.", 'ipport'),
  setting('metrics-bind-address', 'metricsBindAddress', 'string', '127.0.0.1:10249',
    "The IP address (port 10249 when omitted) for the metrics server ('[::1]:10249' when --bind-address is IPv6). Set empty to disable.", 'ipport'),
  setting('bind-address', 'bindAddress', 'string', '0.0.0.0',
    "Overrides the node's detected primary IP when not 0.0.0.0 or ::. No socket is bound to it.", 'ip'),
  setting('bind-address-hard-fail', 'bindAddressHardFail', 'bool', false,
    'If true, a health check or metrics server that cannot bind its address stops kube-ipvs (exit 1) instead of retrying.'),
  setting('kubeconfig', 'kubeconfig', 'string', '', 'Path to kubeconfig file with authorization information.'),
  setting('kube-api-qps', 'qps', 'float', '5', 'Requests per second to the API server (token bucket; negative: no limit).'),
  setting('kube-api-burst', 'burst', 'int', '10', 'Burst of requests allowed above --kube-api-qps.'),
  setting('kube-api-content-type', 'contentType', 'string', PROTOBUF,
    'Content type of requests sent to the API server. kube-ipvs always speaks JSON; the protobuf default and application/json are the same to it.'),
  setting('config-sync-period', 'configSyncPeriodMs', 'duration', '15m0s',
    "How often configuration from the apiserver is refreshed. Must be greater than 0. (kube-proxy's informer resync, which changes nothing observable; kube-ipvs validates it.)"),
  setting('feature-gates', 'featureGates', 'gates', [], featureGatesHelp(), 'mapStringBool'),
  setting('oom-score-adj', 'oomScoreAdj', 'int', '-999',
    'The oom_score_adj value of the kube-ipvs daemon (kube-ipvs run). Values must be within the range [-1000, 1000].'),
  setting('conntrack-max-per-core', 'conntrackMaxPerCore', 'int', '32768',
    'Maximum number of NAT connections to track per CPU core (0 to leave the limit as-is and ignore conntrack-min).'),
  setting('conntrack-min', 'conntrackMin', 'int', '131072',
    'Minimum number of conntrack entries to allocate, regardless of conntrack-max-per-core.'),
  setting('conntrack-tcp-timeout-established', 'conntrackTcpEstablishedTimeoutMs', 'duration', '24h0m0s',
    'Idle timeout for established TCP connections (0 to leave as-is).'),
  setting('conntrack-tcp-timeout-close-wait', 'conntrackTcpCloseWaitTimeoutMs', 'duration', '1h0m0s',
    'NAT timeout for TCP connections in the CLOSE_WAIT state (0 to leave as-is).'),
  setting('conntrack-tcp-be-liberal', 'conntrackTcpBeLiberal', 'bool', false,
    'Enable liberal mode for tracking TCP packets by setting nf_conntrack_tcp_be_liberal to 1.'),
  setting('conntrack-udp-timeout', 'conntrackUdpTimeoutMs', 'duration', '0s', 'Idle timeout for UNREPLIED UDP connections (0 to leave as-is).'),
  setting('conntrack-udp-timeout-stream', 'conntrackUdpStreamTimeoutMs', 'duration', '0s', 'Idle timeout for ASSURED UDP connections (0 to leave as-is).'),
  // Configuration fields without effect in kube-ipvs (see NO_EFFECT); carried for --write-config-to.
  setting('iptables-localhost-nodeports', 'iptablesLocalhostNodePorts', 'bool', true, 'iptables mode only.'),
  setting('profiling', 'enableProfiling', 'bool', false, 'Profiling on /debug/pprof; kube-ipvs has no such handler.'),
  setting('show-hidden-metrics-for-version', 'showHiddenMetricsForVersion', 'string', '',
    'The previous minor version (e.g. 1.35) whose hidden metrics to show; kube-ipvs has no hidden metrics.'),
];

/** kube-proxy flags that set a field kube-ipvs has no use for (ignored with --config too). */
export const FIELDLESS_FLAGS: readonly FlagSpec[] = [
  { name: 'iptables-sync-period', kind: 'string', valueName: 'duration', default: '30s', help: 'iptables mode only.' },
  { name: 'iptables-min-sync-period', kind: 'string', valueName: 'duration', default: '1s', help: 'iptables mode only.' },
];

/** Logging flags: they apply even with --config, over the file's logging section. */
export const LOGGING_FLAGS: readonly FlagSpec[] = [
  { name: 'logging-format', kind: 'string', default: 'text', help: 'Sets the log format: "text" or "json" (json needs the LoggingBetaOptions gate, on by default).' },
  { name: 'log-format', kind: 'string', default: 'text', help: 'Same as --logging-format (the name earlier kube-ipvs releases used).' },
  { name: 'v', short: 'v', kind: 'string', valueName: 'Level', default: '0', help: 'Log level verbosity; kube-ipvs has no verbose levels.' },
  { name: 'vmodule', kind: 'string', valueName: 'pattern=N,...', help: 'Per-file log verbosity (text format only); kube-ipvs has no per-file levels.' },
  { name: 'log-flush-frequency', kind: 'string', valueName: 'duration', default: '5s', help: 'Maximum time between log flushes (kube-ipvs writes every line at once).' },
  { name: 'log-text-split-stream', kind: 'bool', help: '[Alpha] In text format, write error messages to stderr and info messages to stdout (needs the LoggingAlphaOptions gate).' },
  { name: 'log-text-info-buffer-size', kind: 'string', valueName: 'quantity', help: '[Alpha] Info message buffer with split streams; kube-ipvs does not buffer.' },
  { name: 'log-json-split-stream', kind: 'bool', help: '[Alpha] In JSON format, write error messages to stderr and info messages to stdout (needs the LoggingAlphaOptions gate).' },
  { name: 'log-json-info-buffer-size', kind: 'string', valueName: 'quantity', help: '[Alpha] Info message buffer with split streams; kube-ipvs does not buffer.' },
];

/** kube-proxy flags that are not configuration fields; they apply even with --config. */
export const PROCESS_FLAGS: readonly FlagSpec[] = [
  { name: 'config', kind: 'string', valueName: 'file', help: 'The path to a KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) file. It replaces all other kube-proxy flags except --hostname-override, --master, --cleanup, --init-only, --write-config-to, --version and logging flags.' },
  { name: 'write-config-to', kind: 'string', valueName: 'file', help: 'If set, write the effective configuration to this file as a KubeProxyConfiguration and exit.' },
  { name: 'hostname-override', kind: 'string', help: 'If non-empty, use this string (trimmed, lower-cased) as the node name instead of the host name.' },
  { name: 'master', kind: 'string', help: 'The address of the Kubernetes API server (overrides any value in kubeconfig).' },
  { name: 'cleanup', kind: 'bool', help: 'If true, remove IPVS, iptables and ipset state left by the proxy and exit.' },
  { name: 'cleanup-ipvs', kind: 'bool', help: 'Same as --cleanup.', deprecated: 'use --cleanup' },
  { name: 'init-only', kind: 'bool', help: 'If true, perform any initialization steps that must be done with full root privileges, and then exit.' },
  { name: 'version', kind: 'optional', noOptDefault: 'true', valueName: 'version[=true]', help: `--version, --version=raw prints version information and quits; --version=${KUBE_PROXY_VERSION}... is accepted.` },
  { name: 'help', short: 'h', kind: 'bool', help: 'Print the flags and exit.' },
  // Hidden and deprecated upstream too; applied only without --config and --write-config-to.
  { name: 'healthz-port', kind: 'string', valueName: 'int32', default: '10256', hidden: true, deprecated: 'use --healthz-bind-address', help: 'The port of the health check server; 0 disables it.' },
  { name: 'metrics-port', kind: 'string', valueName: 'int32', default: '10249', hidden: true, deprecated: 'use --metrics-bind-address', help: 'The port of the metrics server; 0 disables it.' },
  // cadvisor's flags, which kube-proxy's binary registers without using them.
  { name: 'boot-id-file', kind: 'string', default: '/proc/sys/kernel/random/boot_id', help: 'Unused by kube-proxy.' },
  { name: 'machine-id-file', kind: 'string', default: '/etc/machine-id,/var/lib/dbus/machine-id', help: 'Unused by kube-proxy.' },
];

/** Why a kube-proxy flag or field changes nothing in kube-ipvs (named in the start-up warning). */
export const NO_EFFECT: Readonly<Record<string, string>> = {
  'iptables-sync-period': 'iptables mode only',
  'iptables-min-sync-period': 'iptables mode only',
  iptablesLocalhostNodePorts: 'iptables mode only',
  enableProfiling: 'kube-ipvs serves no /debug/pprof',
  showHiddenMetricsForVersion: 'kube-ipvs has no hidden metrics',
  'boot-id-file': 'unused by kube-proxy',
  'machine-id-file': 'unused by kube-proxy',
  contentType: 'kube-ipvs always speaks JSON',
  acceptContentTypes: 'kube-ipvs always speaks JSON',
  verbosity: 'kube-ipvs has no verbose log levels',
  vmodule: 'kube-ipvs has no per-file log levels',
  textInfoBufferSize: 'kube-ipvs does not buffer log lines',
  jsonInfoBufferSize: 'kube-ipvs does not buffer log lines',
  version: 'kube-ipvs reports its own version',
};

/** Listed apart by --help: flags that change nothing in kube-ipvs whatever their value. */
const INERT_FLAG_NAMES = new Set([
  'iptables-localhost-nodeports', 'profiling', 'show-hidden-metrics-for-version', ...FIELDLESS_FLAGS.map((f) => f.name),
  'v', 'vmodule', 'log-text-info-buffer-size', 'log-json-info-buffer-size', 'boot-id-file', 'machine-id-file',
]);

/** Every kube-proxy flag kube-ipvs accepts, in --help order. */
export const KUBE_PROXY_FLAGS: readonly FlagSpec[] = [
  ...SETTING_FLAGS.map((f) => f.spec),
  ...FIELDLESS_FLAGS,
  ...LOGGING_FLAGS,
  ...PROCESS_FLAGS,
];

/**
 * `--help` text for the command's own flags and the kube-proxy flags. With `uses`, only the named
 * kube-proxy flags (those that change what the command does) are listed; every other one is still
 * accepted, so that a node's kube-proxy command line works unchanged. Without it, all of them,
 * those without effect in kube-ipvs apart (what `run` does).
 */
export function formatHelp(extraFlags: readonly FlagSpec[] = [], uses?: readonly string[]): string {
  const own = extraFlags.length > 0 ? `Command flags:\n${formatFlagHelp(extraFlags)}\n\n` : '';
  if (uses !== undefined) {
    const unknown = uses.filter((name) => !KUBE_PROXY_FLAGS.some((f) => f.name === name));
    if (unknown.length > 0) throw new Error(`formatHelp: not kube-proxy flags: ${unknown.join(', ')}`);
    const used = KUBE_PROXY_FLAGS.filter((f) => uses.includes(f.name));
    return (
      `${own}kube-proxy flags used here:\n${formatFlagHelp(used)}\n\n` +
      "Every other kube-proxy flag is accepted and changes nothing here; 'kube-ipvs run --help' lists them.\n"
    );
  }
  const effective = KUBE_PROXY_FLAGS.filter((f) => !INERT_FLAG_NAMES.has(f.name));
  const inert = KUBE_PROXY_FLAGS.filter((f) => !effective.includes(f));
  return (
    `${own}kube-proxy flags:\n${formatFlagHelp(effective)}\n\n` +
    `kube-proxy flags accepted without effect in kube-ipvs (named in one start-up warning when set to another value than the default):\n${formatFlagHelp(inert)}\n`
  );
}
