// The kube-proxy settings after type conversion but before validation, shared by the flag path
// and the file path, and their validation (upstream's pkg/proxy/apis/config/validation, limited
// to what ipvs mode reads). Errors name the setting the way the user wrote it: a flag, or a
// file field, through SettingsOrigin.
import { canonicalCidr, canonicalIp, parseCidr } from '../model/ip.js';
import { ConfigError } from './errors.js';
import { formatDuration } from './duration.js';
import { resolveFeatureGates, type ResolvedGates } from './feature-gates.js';
import { validateLogging, type LoggingField, type LoggingSettings } from './logging.js';
import type { DetectLocalMode, ProxyConfig } from './types.js';
import { KUBE_PROXY_VERSION } from './upstream/version.js';
import { SCHEDULERS } from '../model/kernel.js';
import { hostPort } from '../model/types.js';

export interface Settings {
  mode: string;
  scheduler: string;
  syncPeriodMs: number;
  minSyncPeriodMs: number;
  excludeCIDRs: readonly string[];
  strictARP: boolean;
  tcpTimeoutMs: number;
  tcpFinTimeoutMs: number;
  udpTimeoutMs: number;
  masqueradeAll: boolean;
  masqueradeBit: number;
  /** Comma-separated text, as in both the flag and the file. */
  clusterCIDR: string;
  detectLocalMode: string;
  bridgeInterface: string;
  interfaceNamePrefix: string;
  nodePortAddresses: readonly string[];
  healthzBindAddress: string;
  metricsBindAddress: string;
  bindAddress: string;
  hostnameOverride: string;
  kubeconfig: string;
  conntrackMaxPerCore: number;
  conntrackMin: number;
  conntrackTcpEstablishedTimeoutMs: number;
  conntrackTcpCloseWaitTimeoutMs: number;
  conntrackTcpBeLiberal: boolean;
  conntrackUdpTimeoutMs: number;
  conntrackUdpStreamTimeoutMs: number;
  configSyncPeriodMs: number;
  featureGates: Readonly<Record<string, boolean>>;
  /** clientConnection: how the API client talks to the API server. */
  acceptContentTypes: string;
  contentType: string;
  qps: number;
  burst: number;
  oomScoreAdj: number;
  bindAddressHardFail: boolean;
  /** Accepted without effect (no /debug/pprof in kube-ipvs). */
  enableProfiling: boolean;
  /** Validated as upstream does, without effect (no hidden metrics in kube-ipvs). */
  showHiddenMetricsForVersion: string;
  /** iptables mode only; carried so --write-config-to writes it. */
  iptablesLocalhostNodePorts: boolean;
  logging: LoggingSettings;
}

export type SettingKey = keyof Settings;

export interface SettingsOrigin {
  /** "--ipvs-sync-period" or "ipvs.syncPeriod in /etc/kube-proxy.yaml". */
  label(key: SettingKey): string;
  /** The value as the user wrote it, when known; errors fall back to a rendering of the value. */
  raw(key: SettingKey): string | undefined;
  /** "--logging-format" or "logging.format in /etc/kube-proxy.yaml". */
  loggingLabel(field: LoggingField): string;
}

export const IPVS_SCHEDULERS: readonly string[] = SCHEDULERS;
export const DETECT_LOCAL_MODES: readonly DetectLocalMode[] = [
  'ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix',
];

const DEFAULT_HEALTHZ_PORT = 10256;
const DEFAULT_METRICS_PORT = 10249;

/**
 * The validated part of ProxyConfig that comes from kube-proxy settings; hostnameOverride is ""
 * when not set (the caller falls back to the host name).
 */
export type ValidatedSettings = Pick<
  ProxyConfig,
  | 'ipvs'
  | 'masqueradeAll'
  | 'masqueradeBit'
  | 'detectLocal'
  | 'nodePortAddresses'
  | 'hostnameOverride'
  | 'healthzBindAddress'
  | 'metricsBindAddress'
  | 'bindAddress'
  | 'kubeconfig'
  | 'configSyncPeriodMs'
  | 'conntrack'
  | 'clientConnection'
  | 'featureGates'
  | 'allowServiceExternalIPs'
  | 'oomScoreAdj'
  | 'bindAddressHardFail'
  | 'logging'
>;

/** Validated settings plus what the CLI warns about once at start-up. */
export interface SettingsResult {
  readonly validated: ValidatedSettings;
  /** Feature-gate warnings (GA or deprecated gates set), as upstream logs them. */
  readonly gateWarnings: readonly string[];
  readonly gates: ResolvedGates;
}

function shownValue(s: Settings, origin: SettingsOrigin, key: SettingKey): string {
  const raw = origin.raw(key);
  if (raw !== undefined) return raw;
  const v = s[key];
  if (typeof v === 'number' && key.endsWith('Ms')) return formatDuration(v);
  if (Array.isArray(v)) return v.join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Go-style truncation to whole seconds, as kube-proxy does with int(d.Seconds()). */
function wholeSeconds(ms: number): number {
  return Math.trunc(ms / 1000);
}

/** "host:port" with an IP host (IPv6 in brackets) and a port 1..65535, or undefined. */
function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (canonicalIp(host) === undefined || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/**
 * Checks every setting and returns the canonical, validated form. Throws the first ConfigError in
 * a fixed order (mode, IPVS, masquerading, local detection, node ports, addresses, conntrack).
 */
export function validateSettings(s: Settings, origin: SettingsOrigin): ValidatedSettings {
  return validateAll(s, origin).validated;
}

/** As validateSettings, with the feature gates and their warnings. */
export function validateAll(s: Settings, origin: SettingsOrigin): SettingsResult {
  const bad = (key: SettingKey, expected: string, value?: string): ConfigError =>
    ConfigError.invalid(origin.label(key), value ?? shownValue(s, origin, key), expected);

  // Upstream sets the gates first (Options.Complete), then applies logging, then validates the rest.
  const gates = resolveFeatureGates(s.featureGates, origin.label('featureGates'));
  const logging = validateLogging(s.logging, gates.enabled, (f) => origin.loggingLabel(f));

  if (s.mode !== '' && s.mode !== 'ipvs') {
    throw bad('mode', '"ipvs" (kube-ipvs implements only the IPVS proxy mode; empty means ipvs)');
  }

  const scheduler = s.scheduler === '' ? 'rr' : s.scheduler;
  if (!IPVS_SCHEDULERS.includes(scheduler)) {
    throw bad('scheduler', `one of ${IPVS_SCHEDULERS.join(', ')} (empty means rr)`);
  }
  if (!(s.syncPeriodMs > 0)) {
    throw bad('syncPeriodMs', 'a duration greater than 0, such as 30s');
  }
  if (!(s.minSyncPeriodMs >= 0)) {
    throw bad('minSyncPeriodMs', 'a duration of at least 0s, such as 1s (0 syncs on every change)');
  }
  if (s.minSyncPeriodMs > s.syncPeriodMs) {
    throw bad(
      'minSyncPeriodMs',
      `a duration no longer than ${origin.label('syncPeriodMs')} (${shownValue(s, origin, 'syncPeriodMs')})`,
    );
  }
  for (const key of ['tcpTimeoutMs', 'tcpFinTimeoutMs', 'udpTimeoutMs'] as const) {
    if (!(s[key] >= 0)) throw bad(key, 'a duration of at least 0s, such as 900s (0 leaves the kernel value)');
  }
  const excludeCIDRs = canonicalCidrList(s.excludeCIDRs, (item) =>
    bad('excludeCIDRs', 'a comma-separated list of CIDRs such as 10.0.0.0/8,fd00::/8', item),
  );

  if (!Number.isInteger(s.masqueradeBit) || s.masqueradeBit < 0 || s.masqueradeBit > 31) {
    throw bad('masqueradeBit', 'an integer from 0 to 31');
  }

  const clusterCIDRs = canonicalCidrList(
    s.clusterCIDR.split(',').filter((c) => c.trim() !== ''),
    (item) => bad('clusterCIDR', 'a CIDR, or one IPv4 and one IPv6 CIDR separated by a comma', item),
  );
  const families = clusterCIDRs.map((c) => parseCidr(c)?.family);
  if (new Set(families).size !== families.length) {
    throw bad('clusterCIDR', 'at most one CIDR per IP family, such as 10.244.0.0/16,fd00:10:244::/56');
  }

  const mode = DETECT_LOCAL_MODES.find((m) => m === s.detectLocalMode);
  if (mode === undefined) throw bad('detectLocalMode', `one of ${DETECT_LOCAL_MODES.join(', ')}`);
  if (mode === 'BridgeInterface' && s.bridgeInterface.trim() === '') {
    throw bad('bridgeInterface', `an interface name when ${origin.label('detectLocalMode')} is BridgeInterface`);
  }
  if (mode === 'InterfaceNamePrefix' && s.interfaceNamePrefix.trim() === '') {
    throw bad(
      'interfaceNamePrefix',
      `an interface name prefix when ${origin.label('detectLocalMode')} is InterfaceNamePrefix`,
    );
  }

  const nodePortExpected = 'a comma-separated list of CIDRs such as 192.168.0.0/16, or "primary" alone';
  let nodePortAddresses: readonly string[];
  if (s.nodePortAddresses.includes('primary')) {
    if (s.nodePortAddresses.length !== 1) throw bad('nodePortAddresses', nodePortExpected);
    nodePortAddresses = ['primary'];
  } else {
    nodePortAddresses = canonicalCidrList(s.nodePortAddresses, (item) =>
      bad('nodePortAddresses', nodePortExpected, item),
    );
  }

  const bindAddress = canonicalIp(s.bindAddress);
  if (bindAddress === undefined || s.bindAddress.trim() !== s.bindAddress) {
    throw bad('bindAddress', 'an IP address such as 0.0.0.0 or ::');
  }
  for (const [key, port] of [
    ['healthzBindAddress', DEFAULT_HEALTHZ_PORT],
    ['metricsBindAddress', DEFAULT_METRICS_PORT],
  ] as const) {
    if (s[key] !== '' && splitHostPort(s[key]) === undefined) {
      throw bad(key, `IP:port such as 0.0.0.0:${port} or [::]:${port}, or "" to disable`);
    }
  }

  const hostnameOverride = s.hostnameOverride.trim().toLowerCase();

  for (const key of ['conntrackMaxPerCore', 'conntrackMin'] as const) {
    if (!Number.isInteger(s[key]) || s[key] < 0) throw bad(key, 'an integer of at least 0');
  }
  for (const key of ['conntrackTcpEstablishedTimeoutMs', 'conntrackTcpCloseWaitTimeoutMs'] as const) {
    if (!(s[key] >= 0)) throw bad(key, 'a duration of at least 0s, such as 1h (0 leaves the kernel value)');
  }
  for (const key of ['conntrackUdpTimeoutMs', 'conntrackUdpStreamTimeoutMs'] as const) {
    if (!(s[key] >= 0)) throw bad(key, 'a duration of at least 0s, such as 30s (0 leaves the kernel value)');
  }
  if (!(s.configSyncPeriodMs > 0)) {
    throw bad('configSyncPeriodMs', 'a duration greater than 0, such as 15m');
  }
  if (!Number.isFinite(s.qps)) throw bad('qps', 'a number of requests per second such as 5 (negative: no limit)');
  if (!Number.isInteger(s.burst) || s.burst < 0) throw bad('burst', 'an integer of at least 0');
  if (s.qps > 0 && s.burst === 0) {
    // client-go's clientset refuses to start so; kube-proxy then exits.
    throw bad('burst', `an integer greater than 0 when ${origin.label('qps')} is greater than 0`);
  }
  if (!Number.isInteger(s.oomScoreAdj) || s.oomScoreAdj < -1000 || s.oomScoreAdj > 1000) {
    throw bad('oomScoreAdj', 'an integer from -1000 to 1000');
  }
  const hiddenMetrics = previousMinor(KUBE_PROXY_VERSION);
  if (s.showHiddenMetricsForVersion !== '' && s.showHiddenMetricsForVersion !== hiddenMetrics) {
    throw bad('showHiddenMetricsForVersion', `"" or "${hiddenMetrics}" (only the previous minor version is allowed)`);
  }

  const validated: ValidatedSettings = {
    ipvs: {
      scheduler,
      syncPeriodMs: s.syncPeriodMs,
      minSyncPeriodMs: s.minSyncPeriodMs,
      excludeCIDRs,
      strictARP: s.strictARP,
      tcpTimeoutS: wholeSeconds(s.tcpTimeoutMs),
      tcpFinTimeoutS: wholeSeconds(s.tcpFinTimeoutMs),
      udpTimeoutS: wholeSeconds(s.udpTimeoutMs),
    },
    masqueradeAll: s.masqueradeAll,
    masqueradeBit: s.masqueradeBit,
    detectLocal: {
      mode,
      clusterCIDRs,
      // Filled from Node.spec.podCIDRs at run time, not from configuration.
      nodeCIDRs: [],
      bridgeInterface: s.bridgeInterface.trim(),
      interfaceNamePrefix: s.interfaceNamePrefix.trim(),
    },
    nodePortAddresses,
    hostnameOverride,
    healthzBindAddress: s.healthzBindAddress,
    metricsBindAddress: s.metricsBindAddress,
    bindAddress,
    kubeconfig: s.kubeconfig,
    configSyncPeriodMs: s.configSyncPeriodMs,
    conntrack: {
      maxPerCore: s.conntrackMaxPerCore,
      min: s.conntrackMin,
      tcpEstablishedTimeoutS: wholeSeconds(s.conntrackTcpEstablishedTimeoutMs),
      tcpCloseWaitTimeoutS: wholeSeconds(s.conntrackTcpCloseWaitTimeoutMs),
      tcpBeLiberal: s.conntrackTcpBeLiberal,
      udpTimeoutS: wholeSeconds(s.conntrackUdpTimeoutMs),
      udpStreamTimeoutS: wholeSeconds(s.conntrackUdpStreamTimeoutMs),
    },
    clientConnection: {
      qps: s.qps,
      burst: s.burst,
      contentType: s.contentType,
      acceptContentTypes: s.acceptContentTypes,
    },
    featureGates: gates.explicit,
    allowServiceExternalIPs: gates.enabled('AllowServiceExternalIPs'),
    oomScoreAdj: s.oomScoreAdj,
    bindAddressHardFail: s.bindAddressHardFail,
    logging,
  };
  return { validated, gateWarnings: gates.warnings, gates };
}

/** "v1.36.3" → "1.35". */
function previousMinor(version: string): string {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  return m ? `${m[1]}.${Number(m[2]) - 1}` : '';
}

/** Canonical CIDRs, duplicates removed, order kept; throws fail(item) on the first bad one. */
function canonicalCidrList(items: readonly string[], fail: (item: string) => ConfigError): string[] {
  const out: string[] = [];
  for (const item of items) {
    const c = canonicalCidr(item);
    if (c === undefined) throw fail(item.trim());
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

/** Default health and metrics addresses follow the bind address's family, as upstream. */
export function defaultServerAddresses(bindAddress: string): { healthz: string; metrics: string } {
  const v6 = canonicalIp(bindAddress)?.includes(':') === true;
  return v6
    ? { healthz: `[::]:${DEFAULT_HEALTHZ_PORT}`, metrics: `[::1]:${DEFAULT_METRICS_PORT}` }
    : { healthz: `0.0.0.0:${DEFAULT_HEALTHZ_PORT}`, metrics: `127.0.0.1:${DEFAULT_METRICS_PORT}` };
}

/** Upstream appends the default port to a bare IP in a file's health/metrics address. */
export function appendPortIfNeeded(address: string, port: number): string {
  if (address === '' || splitHostPort(address) !== undefined) return address;
  const ip = canonicalIp(address);
  if (ip === undefined) return address;
  return hostPort(address, port);
}

export { DEFAULT_HEALTHZ_PORT, DEFAULT_METRICS_PORT };
