// Command line (+ optional KubeProxyConfiguration file) → one validated ProxyConfig.
//
// --config semantics follow kube-proxy: when a file is given it replaces the whole kube-proxy
// configuration, and the kube-proxy flags that map onto configuration fields (--ipvs-*,
// --cluster-cidr, --bind-address, --kubeconfig, ...) are ignored even when set. Still read from the
// command line: --hostname-override (overrides the file's hostnameOverride), the logging flags
// (--log-format, -v), and the process-level options that upstream never stores in the file
// (--master, --cleanup, --cleanup-ipvs, --init-only, --help). Command-specific extra flags always
// apply. The ignored flags are reported in `ignoredFlags` so the CLI can warn about them.
import { ConfigError } from './errors.js';
import { formatFlagHelp, parseFlags, type FlagSpec, type FlagValue } from './flags.js';
import { parseDuration } from './duration.js';
import { parseKubeProxyConfiguration } from './kubeproxyconfig.js';
import { defaultServerAddresses, validateSettings, type SettingKey, type Settings, type SettingsOrigin } from './settings.js';
import type { LogFormat, ProxyConfig } from './types.js';

export type { FlagKind, FlagSpec, FlagValue } from './flags.js';
export { ConfigError } from './errors.js';

type Conversion = 'string' | 'bool' | 'list' | 'duration' | 'int';
interface SettingFlag {
  readonly spec: FlagSpec;
  readonly key: SettingKey;
  readonly conv: Conversion;
}

const DURATION_EXAMPLE = 'a duration such as 30s, 1m or 500ms';

function setting(
  name: string,
  key: SettingKey,
  conv: Conversion,
  defaultValue: FlagValue,
  help: string,
): SettingFlag {
  const kind = conv === 'bool' ? 'bool' : conv === 'list' ? 'list' : 'string';
  const valueName = conv === 'duration' ? 'duration' : conv === 'int' ? 'int' : conv === 'list' ? 'strings' : undefined;
  return { spec: { name, kind, help, default: defaultValue, ...(valueName ? { valueName } : {}) }, key, conv };
}

/** kube-proxy flags that set a configuration field (ignored when --config is given). */
const SETTING_FLAGS: readonly SettingFlag[] = [
  setting('proxy-mode', 'mode', 'string', '', 'Which proxy mode to use; kube-ipvs implements only "ipvs" (empty means ipvs).'),
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
    'How to detect traffic from local pods: ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix.'),
  setting('pod-bridge-interface', 'bridgeInterface', 'string', '',
    'A bridge interface name; traffic from it is local when --detect-local-mode is BridgeInterface.'),
  setting('pod-interface-name-prefix', 'interfaceNamePrefix', 'string', '',
    'An interface name prefix; traffic from matching interfaces is local when --detect-local-mode is InterfaceNamePrefix.'),
  setting('nodeport-addresses', 'nodePortAddresses', 'list', [],
    'The addresses to serve NodePorts on: a comma-separated list of CIDRs (e.g. 1.2.3.0/24,fd00::/64), or "primary" for the node\'s primary IPs. Empty means all local addresses.'),
  setting('healthz-bind-address', 'healthzBindAddress', 'string', '0.0.0.0:10256',
    "The IP address with port for the health check server ('[::]:10256' when --bind-address is IPv6). Set empty to disable."),
  setting('metrics-bind-address', 'metricsBindAddress', 'string', '127.0.0.1:10249',
    "The IP address with port for the metrics server ('[::1]:10249' when --bind-address is IPv6). Set empty to disable."),
  setting('bind-address', 'bindAddress', 'string', '0.0.0.0',
    "Overrides the node's detected primary IP when not 0.0.0.0 or ::. No socket is bound to it."),
  setting('kubeconfig', 'kubeconfig', 'string', '', 'Path to kubeconfig file with authorization information.'),
  setting('config-sync-period', 'configSyncPeriodMs', 'duration', '15m0s',
    'How often configuration from the apiserver is refreshed. Must be greater than 0.'),
  setting('conntrack-max-per-core', 'conntrackMaxPerCore', 'int', '32768',
    'Maximum number of NAT connections to track per CPU core (0 to leave the limit as-is and ignore conntrack-min).'),
  setting('conntrack-min', 'conntrackMin', 'int', '131072',
    'Minimum number of conntrack entries to allocate, regardless of conntrack-max-per-core.'),
  setting('conntrack-tcp-timeout-established', 'conntrackTcpEstablishedTimeoutMs', 'duration', '24h0m0s',
    'Idle timeout for established TCP connections (0 to leave as-is).'),
  setting('conntrack-tcp-timeout-close-wait', 'conntrackTcpCloseWaitTimeoutMs', 'duration', '1h0m0s',
    'NAT timeout for TCP connections in the CLOSE_WAIT state (0 to leave as-is).'),
];

/** kube-proxy flags that are not configuration fields; they apply even with --config. */
const PROCESS_FLAGS: readonly FlagSpec[] = [
  { name: 'config', kind: 'string', valueName: 'file', help: 'The path to a KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) file. It replaces all other kube-proxy flags except --hostname-override, --master, --cleanup, --init-only and logging flags.' },
  { name: 'hostname-override', kind: 'string', help: 'If non-empty, use this string (trimmed, lower-cased) as the node name instead of the host name.' },
  { name: 'master', kind: 'string', help: 'The address of the Kubernetes API server (overrides any value in kubeconfig).' },
  { name: 'cleanup', kind: 'bool', help: 'If true, remove IPVS, iptables and ipset state left by the proxy and exit.' },
  { name: 'cleanup-ipvs', kind: 'bool', help: 'Same as --cleanup.', deprecated: 'use --cleanup' },
  { name: 'init-only', kind: 'bool', help: 'If true, perform any initialization steps that must be done with full root privileges, and then exit.' },
  { name: 'log-format', kind: 'string', default: 'text', help: 'Log output format: text or json.' },
  { name: 'v', short: 'v', kind: 'string', valueName: 'level', default: '0', help: 'Log level verbosity (accepted for kube-proxy compatibility; ignored).' },
  { name: 'help', short: 'h', kind: 'bool', help: 'Print the flags and exit.' },
];

/** Every kube-proxy flag kube-ipvs accepts, in --help order. */
export const KUBE_PROXY_FLAGS: readonly FlagSpec[] = [...SETTING_FLAGS.map((f) => f.spec), ...PROCESS_FLAGS];

/** `--help` text for the kube-proxy flags followed by the command's own flags. */
export function formatHelp(extraFlags: readonly FlagSpec[] = []): string {
  const own = extraFlags.length > 0 ? `Command flags:\n${formatFlagHelp(extraFlags)}\n\n` : '';
  return `${own}kube-proxy flags:\n${formatFlagHelp(KUBE_PROXY_FLAGS)}\n`;
}

export interface LoadOptions {
  /** Command-specific flags (e.g. --manifests, --node-ip, --output, --once). */
  readonly extraFlags: readonly FlagSpec[];
  /** The machine's host name; the node name unless overridden. */
  readonly hostname: string;
  readonly readFile: (path: string) => string;
}

export interface LoadResult {
  readonly config: ProxyConfig;
  /**
   * Values of the extra flags: the command-line value, else the spec's default, else false for a
   * bool and [] for a list or repeatable flag; a string flag without default is absent.
   */
  readonly extra: ReadonlyMap<string, FlagValue>;
  readonly positional: string[];
  /** --help / -h was given: config is then the defaults, and no file was read or validated. */
  readonly help: boolean;
  /** kube-proxy flags given on the command line but ignored because --config was given. */
  readonly ignoredFlags: readonly string[];
}

function convertFlag(f: SettingFlag, value: FlagValue): Settings[SettingKey] {
  const shown = `--${f.spec.name}`;
  switch (f.conv) {
    case 'string':
    case 'bool':
    case 'list':
      return value;
    case 'duration': {
      const ms = parseDuration(String(value));
      if (ms === undefined) throw ConfigError.invalid(shown, String(value), DURATION_EXAMPLE);
      return ms;
    }
    case 'int': {
      const text = String(value);
      const n = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
      // kube-proxy's integer flags are int32.
      if (!Number.isSafeInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) {
        throw ConfigError.invalid(shown, text, 'an integer');
      }
      return n;
    }
  }
}

function settingsFromFlags(values: ReadonlyMap<string, FlagValue>): { settings: Settings; origin: SettingsOrigin } {
  const out: Partial<Record<SettingKey, Settings[SettingKey]>> = {};
  const raw = new Map<SettingKey, string>();
  const label = new Map<SettingKey, string>();
  for (const f of SETTING_FLAGS) {
    label.set(f.key, `--${f.spec.name}`);
    const given = values.get(f.spec.name);
    if (given !== undefined) raw.set(f.key, Array.isArray(given) ? given.join(',') : String(given));
    out[f.key] = convertFlag(f, given ?? f.spec.default ?? '');
  }
  const settings = { ...out, hostnameOverride: '' } as Settings;
  // Unless set, the server addresses follow the family of --bind-address, as upstream documents.
  const servers = defaultServerAddresses(settings.bindAddress);
  if (!values.has('healthz-bind-address')) settings.healthzBindAddress = servers.healthz;
  if (!values.has('metrics-bind-address')) settings.metricsBindAddress = servers.metrics;
  return {
    settings,
    origin: { label: (k) => label.get(k) ?? k, raw: (k) => raw.get(k) },
  };
}

export function loadConfig(argv: readonly string[], opts: LoadOptions): LoadResult {
  const parsed = parseFlags(argv, [...KUBE_PROXY_FLAGS, ...opts.extraFlags]);
  const values = parsed.values;
  const help = values.get('help') === true;

  const extra = new Map<string, FlagValue>();
  for (const spec of opts.extraFlags) {
    const v = values.get(spec.name) ?? spec.default ?? (spec.kind === 'bool' ? false : spec.kind === 'string' ? undefined : []);
    if (v !== undefined) extra.set(spec.name, v);
  }

  const logFormatText = help ? 'text' : String(values.get('log-format') ?? 'text');
  if (logFormatText !== 'text' && logFormatText !== 'json') {
    throw ConfigError.invalid('--log-format', logFormatText, 'text or json');
  }
  const logFormat: LogFormat = logFormatText;

  const configText = values.get('config');
  const configFile = typeof configText === 'string' && configText !== '' && !help ? configText : undefined;

  let source: { settings: Settings; origin: SettingsOrigin };
  let ignoredFlags: string[] = [];
  if (configFile !== undefined) {
    let text: string;
    try {
      text = opts.readFile(configFile);
    } catch (err) {
      const why = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
      throw new ConfigError(`cannot read --config file ${configFile}: ${why}`, '--config', configFile);
    }
    source = parseKubeProxyConfiguration(text, configFile);
    ignoredFlags = SETTING_FLAGS.filter((f) => values.has(f.spec.name)).map((f) => `--${f.spec.name}`);
  } else {
    // With --help the flag values are not validated: help must print even for a bad command line.
    source = settingsFromFlags(help ? new Map() : values);
  }
  const v = validateSettings(source.settings, source.origin);

  // --hostname-override wins over the file's hostnameOverride, as upstream; an explicitly empty
  // flag counts as unset there too, but a blank one is an error.
  const hostFlag = values.get('hostname-override');
  let hostname = v.hostnameOverride;
  if (typeof hostFlag === 'string' && hostFlag !== '' && !help) {
    hostname = hostFlag.trim().toLowerCase();
    if (hostname === '') throw ConfigError.invalid('--hostname-override', hostFlag, 'a non-empty node name');
  }
  if (hostname === '') hostname = opts.hostname.trim().toLowerCase();
  if (hostname === '' && !help) {
    throw ConfigError.invalid('--hostname-override', '', 'a node name (the host name is empty, so one must be given)');
  }

  const config: ProxyConfig = {
    mode: 'ipvs',
    ipvs: v.ipvs,
    masqueradeAll: v.masqueradeAll,
    masqueradeBit: v.masqueradeBit,
    detectLocal: v.detectLocal,
    nodePortAddresses: v.nodePortAddresses,
    hostnameOverride: hostname,
    healthzBindAddress: v.healthzBindAddress,
    metricsBindAddress: v.metricsBindAddress,
    bindAddress: v.bindAddress,
    kubeconfig: v.kubeconfig,
    master: String(values.get('master') ?? ''),
    cleanup: values.get('cleanup') === true || values.get('cleanup-ipvs') === true,
    initOnly: values.get('init-only') === true,
    configSyncPeriodMs: v.configSyncPeriodMs,
    conntrack: v.conntrack,
    logFormat,
    configFile,
  };
  return { config, extra, positional: [...parsed.positional], help, ignoredFlags };
}
