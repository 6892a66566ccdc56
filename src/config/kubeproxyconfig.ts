// A KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1, YAML or JSON) ↔ Settings.
//
// Reading follows kube-proxy's loadConfig: the file is decoded strictly, and when that fails only
// because of unknown or duplicate fields it is decoded again leniently (unknown fields dropped, the
// last of duplicate fields kept, JSON objects merged) and kube-proxy starts with a warning, so a
// file written for a newer kube-proxy does not stop a node. A value of the wrong type is still an error. YAML is read
// as YAML 1.1, as upstream's decoder does (`strictARP: yes` is true). The v1alpha1 defaults are
// applied as upstream's SetDefaults_KubeProxyConfiguration does.
//
// Writing (--write-config-to) produces what upstream writes for an ipvs-mode configuration: every
// field, keys sorted, Go duration text. Fields kube-ipvs does not carry (other modes' settings,
// Windows) are written with the values upstream writes for them in ipvs mode.
import { isMap, isScalar, isSeq, parseDocument, stringify, type Node as YamlNode } from 'yaml';
import { ConfigError } from './errors.js';
import { formatDuration, parseDuration, parseDurationNs } from './duration.js';
import { DEFAULT_LOGGING, parseQuantity, type LoggingField, type LoggingSettings, type VModuleItem } from './logging.js';
import {
  DEFAULT_HEALTHZ_PORT,
  DEFAULT_METRICS_PORT,
  appendPortIfNeeded,
  defaultServerAddresses,
  type SettingKey,
  type Settings,
  type SettingsOrigin,
} from './settings.js';

export const KUBE_PROXY_CONFIG_API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';
export const KUBE_PROXY_CONFIG_KIND = 'KubeProxyConfiguration';

/** A field set in the file that kube-ipvs accepts but that changes nothing here. */
export interface InertSetting {
  /** Field path ("iptables.syncPeriod"). */
  readonly name: string;
  readonly why: string;
}

export interface KubeProxyConfigFile {
  /** Every setting, with the file's value or the v1alpha1 default. */
  readonly settings: Settings;
  /** Labels errors as "<field path> in <file>". */
  readonly origin: SettingsOrigin;
  /**
   * Why strict decoding failed ('unknown field "x"', 'duplicate field "ipvs"'); empty when it did
   * not. The CLI logs them once, as upstream logs "Using lenient decoding".
   */
  readonly lenient: readonly string[];
  /** Fields set to a non-default value that have no effect in kube-ipvs. */
  readonly inert: readonly InertSetting[];
}

type FieldType =
  | 'string'
  | 'bool'
  | 'duration'
  | 'int32'
  | 'float32'
  | 'stringList'
  | 'boolMap'
  | 'quantity'
  | 'verbosity'
  | 'vmodule'
  | 'flushFrequency';

interface Inert {
  /** What upstream writes for the field in ipvs mode. */
  readonly written: unknown;
  /** The value after v1alpha1 defaulting that means "not set". */
  readonly isDefault: (v: unknown) => boolean;
  readonly why: string;
}

interface FieldDef {
  readonly path: string;
  readonly type: FieldType;
  /** Where the value goes in Settings (absent for inert fields). */
  readonly key?: SettingKey;
  readonly logging?: LoggingField;
  readonly inert?: Inert;
  /** Written only when it differs from the zero value (Go's omitempty). */
  readonly omitEmpty?: boolean;
}

const IPTABLES_ONLY = 'iptables mode only';
const NFTABLES_ONLY = 'nftables mode only';
const WINDOWS_ONLY = 'Windows only';

const isZero = (v: unknown): boolean => v === undefined || v === '' || v === false || v === 0;
const inert = (written: unknown, why: string, isDefault: (v: unknown) => boolean = isZero): Inert => ({ written, why, isDefault });
/** A sync period that v1alpha1 defaults from 0 to `ms`. */
const defaultedDuration = (ms: number) => (v: unknown): boolean => v === undefined || v === 0 || v === ms;

/** Every v1alpha1 field (k8s.io/kube-proxy config/v1alpha1 types.go at the version we follow). */
const FIELDS: readonly FieldDef[] = [
  { path: 'featureGates', type: 'boolMap', key: 'featureGates', omitEmpty: true },
  { path: 'clientConnection.kubeconfig', type: 'string', key: 'kubeconfig' },
  { path: 'clientConnection.acceptContentTypes', type: 'string', key: 'acceptContentTypes' },
  { path: 'clientConnection.contentType', type: 'string', key: 'contentType' },
  { path: 'clientConnection.qps', type: 'float32', key: 'qps' },
  { path: 'clientConnection.burst', type: 'int32', key: 'burst' },
  { path: 'logging.format', type: 'string', logging: 'format', omitEmpty: true },
  { path: 'logging.flushFrequency', type: 'flushFrequency', logging: 'flushFrequencyMs' },
  { path: 'logging.verbosity', type: 'verbosity', logging: 'verbosity' },
  { path: 'logging.vmodule', type: 'vmodule', logging: 'vmodule', omitEmpty: true },
  { path: 'logging.options.text.splitStream', type: 'bool', logging: 'textSplitStream', omitEmpty: true },
  { path: 'logging.options.text.infoBufferSize', type: 'quantity', logging: 'textInfoBufferSize' },
  { path: 'logging.options.json.splitStream', type: 'bool', logging: 'jsonSplitStream', omitEmpty: true },
  { path: 'logging.options.json.infoBufferSize', type: 'quantity', logging: 'jsonInfoBufferSize' },
  { path: 'hostnameOverride', type: 'string', key: 'hostnameOverride' },
  { path: 'bindAddress', type: 'string', key: 'bindAddress' },
  { path: 'healthzBindAddress', type: 'string', key: 'healthzBindAddress' },
  { path: 'metricsBindAddress', type: 'string', key: 'metricsBindAddress' },
  { path: 'bindAddressHardFail', type: 'bool', key: 'bindAddressHardFail' },
  { path: 'enableProfiling', type: 'bool', key: 'enableProfiling' },
  { path: 'showHiddenMetricsForVersion', type: 'string', key: 'showHiddenMetricsForVersion' },
  { path: 'mode', type: 'string', key: 'mode' },
  { path: 'iptables.masqueradeBit', type: 'int32', key: 'masqueradeBit' },
  // In ipvs mode upstream reads masqueradeAll from the iptables section.
  { path: 'iptables.masqueradeAll', type: 'bool', key: 'masqueradeAll' },
  { path: 'iptables.localhostNodePorts', type: 'bool', key: 'iptablesLocalhostNodePorts' },
  { path: 'iptables.syncPeriod', type: 'duration', inert: inert('0s', IPTABLES_ONLY, defaultedDuration(30_000)) },
  { path: 'iptables.minSyncPeriod', type: 'duration', inert: inert('0s', IPTABLES_ONLY, defaultedDuration(1_000)) },
  { path: 'ipvs.syncPeriod', type: 'duration', key: 'syncPeriodMs' },
  { path: 'ipvs.minSyncPeriod', type: 'duration', key: 'minSyncPeriodMs' },
  { path: 'ipvs.scheduler', type: 'string', key: 'scheduler' },
  { path: 'ipvs.excludeCIDRs', type: 'stringList', key: 'excludeCIDRs' },
  { path: 'ipvs.strictARP', type: 'bool', key: 'strictARP' },
  { path: 'ipvs.tcpTimeout', type: 'duration', key: 'tcpTimeoutMs' },
  { path: 'ipvs.tcpFinTimeout', type: 'duration', key: 'tcpFinTimeoutMs' },
  { path: 'ipvs.udpTimeout', type: 'duration', key: 'udpTimeoutMs' },
  { path: 'nftables.masqueradeBit', type: 'int32', inert: inert(14, NFTABLES_ONLY, (v) => v === undefined || v === 14) },
  { path: 'nftables.masqueradeAll', type: 'bool', inert: inert(false, NFTABLES_ONLY) },
  { path: 'nftables.syncPeriod', type: 'duration', inert: inert('0s', NFTABLES_ONLY, defaultedDuration(30_000)) },
  { path: 'nftables.minSyncPeriod', type: 'duration', inert: inert('0s', NFTABLES_ONLY, defaultedDuration(1_000)) },
  { path: 'winkernel.networkName', type: 'string', inert: inert('', WINDOWS_ONLY) },
  { path: 'winkernel.sourceVip', type: 'string', inert: inert('', WINDOWS_ONLY) },
  { path: 'winkernel.enableDSR', type: 'bool', inert: inert(false, WINDOWS_ONLY) },
  { path: 'winkernel.rootHnsEndpointName', type: 'string', inert: inert('', WINDOWS_ONLY) },
  { path: 'winkernel.forwardHealthCheckVip', type: 'bool', inert: inert(false, WINDOWS_ONLY) },
  { path: 'detectLocalMode', type: 'string', key: 'detectLocalMode' },
  { path: 'detectLocal.bridgeInterface', type: 'string', key: 'bridgeInterface' },
  { path: 'detectLocal.interfaceNamePrefix', type: 'string', key: 'interfaceNamePrefix' },
  { path: 'clusterCIDR', type: 'string', key: 'clusterCIDR' },
  { path: 'nodePortAddresses', type: 'stringList', key: 'nodePortAddresses' },
  { path: 'oomScoreAdj', type: 'int32', key: 'oomScoreAdj' },
  { path: 'conntrack.maxPerCore', type: 'int32', key: 'conntrackMaxPerCore' },
  { path: 'conntrack.min', type: 'int32', key: 'conntrackMin' },
  { path: 'conntrack.tcpEstablishedTimeout', type: 'duration', key: 'conntrackTcpEstablishedTimeoutMs' },
  { path: 'conntrack.tcpCloseWaitTimeout', type: 'duration', key: 'conntrackTcpCloseWaitTimeoutMs' },
  { path: 'conntrack.tcpBeLiberal', type: 'bool', key: 'conntrackTcpBeLiberal' },
  { path: 'conntrack.udpTimeout', type: 'duration', key: 'conntrackUdpTimeoutMs' },
  { path: 'conntrack.udpStreamTimeout', type: 'duration', key: 'conntrackUdpStreamTimeoutMs' },
  { path: 'configSyncPeriod', type: 'duration', key: 'configSyncPeriodMs' },
  // Deprecated upstream and ignored there too, so no warning.
  { path: 'portRange', type: 'string', inert: inert('', 'unused', () => true) },
  { path: 'windowsRunAsService', type: 'bool', inert: inert(false, WINDOWS_ONLY), omitEmpty: true },
];

const BY_PATH: ReadonlyMap<string, FieldDef> = new Map(FIELDS.map((f) => [f.path, f]));
/** Every object path that holds fields ("ipvs", "logging.options.json"). */
const SECTIONS: ReadonlySet<string> = new Set(
  FIELDS.flatMap((f) => {
    const parts = f.path.split('.');
    return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('.'));
  }),
);

const EXPECTED: Readonly<Record<FieldType, string>> = {
  string: 'a string',
  bool: 'true or false',
  duration: 'a duration string such as 30s, 1m or 500ms',
  int32: 'an integer',
  float32: 'a number',
  stringList: 'a list of strings',
  boolMap: 'a mapping of names to true or false',
  quantity: 'a quantity such as 0, 512, 64Ki or 1M',
  verbosity: 'a log level from 0 to 2147483647',
  vmodule: 'a list of {filePattern, verbosity} items',
  flushFrequency: 'a duration string such as 5s, or nanoseconds',
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
}

/** Paths of keys that appear twice in one mapping ("ipvs", "ipvs.scheduler"). */
function duplicateKeys(node: YamlNode | null | undefined, prefix: string, out: string[]): void {
  if (isMap(node)) {
    const seen = new Set<string>();
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const path = prefix === '' ? key : `${prefix}.${key}`;
      if (seen.has(key) && !out.includes(path)) out.push(path);
      seen.add(key);
      duplicateKeys(pair.value as YamlNode | null, path, out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => duplicateKeys(item as YamlNode | null, `${prefix}[${i}]`, out));
  }
}

/**
 * A JSON document as Go's encoding/json reads it into a struct: a repeated key decodes into the
 * same field again, so two objects merge (keys of the later win) and anything else is replaced.
 * (YAML goes through a map first upstream, where the last value replaces the earlier whole.)
 */
function jsonMergingDuplicates(node: YamlNode | null | undefined): unknown {
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const value = jsonMergingDuplicates(pair.value as YamlNode | null);
      const before = out[key];
      out[key] = isObject(before) && isObject(value) ? mergeObjects(before, value) : value;
    }
    return out;
  }
  if (isSeq(node)) return node.items.map((item) => jsonMergingDuplicates(item as YamlNode | null));
  return isScalar(node) ? node.value : null;
}

function mergeObjects(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const before = out[k];
    out[k] = isObject(before) && isObject(v) ? mergeObjects(before, v) : v;
  }
  return out;
}

/** Parses the file text; `fileName` only labels errors. */
export function parseKubeProxyConfiguration(text: string, fileName: string): KubeProxyConfigFile {
  const where = (path: string): string => `${path} in ${fileName}`;

  // Duplicate keys are a strict-decoding failure upstream, not a syntax error: keep the last one.
  const document = parseDocument(text, { version: '1.1', uniqueKeys: false });
  const syntax = document.errors[0];
  if (syntax !== undefined) {
    const first = syntax.message.split('\n')[0] ?? '';
    throw new ConfigError(`cannot parse --config file ${fileName}: ${first}`, '--config', fileName);
  }
  const doc: unknown = text.trimStart().startsWith('{') ? jsonMergingDuplicates(document.contents) : document.toJS();
  if (!isObject(doc)) {
    throw new ConfigError(
      `invalid --config file ${fileName}: expected a ${KUBE_PROXY_CONFIG_KIND} object (YAML or JSON mapping)`,
      '--config',
      fileName,
    );
  }
  if (doc.apiVersion !== KUBE_PROXY_CONFIG_API_VERSION) {
    throw ConfigError.invalid(where('apiVersion'), show(doc.apiVersion ?? ''), KUBE_PROXY_CONFIG_API_VERSION);
  }
  if (doc.kind !== KUBE_PROXY_CONFIG_KIND) {
    throw ConfigError.invalid(where('kind'), show(doc.kind ?? ''), KUBE_PROXY_CONFIG_KIND);
  }

  const found = new Map<string, unknown>();
  const raws = new Map<string, string>();
  const unknown: string[] = [];

  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [name, value] of Object.entries(obj)) {
      const path = prefix === '' ? name : `${prefix}.${name}`;
      const field = BY_PATH.get(path);
      if (field !== undefined) {
        // Go's JSON decoding leaves a field at its zero value (or nil) for null.
        if (value === null) continue;
        raws.set(path, show(value));
        found.set(path, convert(value, field.type, path, where));
      } else if (SECTIONS.has(path)) {
        if (value === null) continue;
        if (!isObject(value)) throw ConfigError.invalid(where(path), show(value), 'a mapping');
        walk(value, path);
      } else if (!(prefix === '' && (name === 'apiVersion' || name === 'kind'))) {
        unknown.push(path);
      }
    }
  };
  walk(doc, '');

  const duplicates: string[] = [];
  duplicateKeys(document.contents, '', duplicates);

  // v1alpha1 defaulting (SetDefaults_KubeProxyConfiguration and the logging defaults).
  const str = (path: string, d = ''): string => {
    const v = found.get(path);
    return typeof v === 'string' ? v : d;
  };
  const num = (path: string, d: number, zeroIsUnset = false): number => {
    const v = found.get(path);
    if (typeof v !== 'number' || (zeroIsUnset && v === 0)) return d;
    return v;
  };
  const bool = (path: string, d = false): boolean => {
    const v = found.get(path);
    return typeof v === 'boolean' ? v : d;
  };
  const list = (path: string): readonly string[] => {
    const v = found.get(path);
    return Array.isArray(v) ? (v as string[]) : [];
  };

  const bindAddress = str('bindAddress') || '0.0.0.0';
  const serverDefaults = defaultServerAddresses(bindAddress);
  const healthz = str('healthzBindAddress');
  const metrics = str('metricsBindAddress');
  const gates = found.get('featureGates');
  const vmodule = found.get('logging.vmodule');

  const logging: LoggingSettings = {
    format: str('logging.format') || DEFAULT_LOGGING.format,
    flushFrequencyMs: num('logging.flushFrequency', DEFAULT_LOGGING.flushFrequencyMs, true),
    verbosity: num('logging.verbosity', 0),
    vmodule: Array.isArray(vmodule) ? (vmodule as VModuleItem[]) : [],
    textSplitStream: bool('logging.options.text.splitStream'),
    textInfoBufferSize: str('logging.options.text.infoBufferSize') || '0',
    jsonSplitStream: bool('logging.options.json.splitStream'),
    jsonInfoBufferSize: str('logging.options.json.infoBufferSize') || '0',
  };

  const settings: Settings = {
    mode: str('mode'),
    scheduler: str('ipvs.scheduler'),
    syncPeriodMs: num('ipvs.syncPeriod', 30_000, true),
    minSyncPeriodMs: num('ipvs.minSyncPeriod', 0),
    excludeCIDRs: list('ipvs.excludeCIDRs'),
    strictARP: bool('ipvs.strictARP'),
    tcpTimeoutMs: num('ipvs.tcpTimeout', 0),
    tcpFinTimeoutMs: num('ipvs.tcpFinTimeout', 0),
    udpTimeoutMs: num('ipvs.udpTimeout', 0),
    masqueradeAll: bool('iptables.masqueradeAll'),
    masqueradeBit: num('iptables.masqueradeBit', 14),
    clusterCIDR: str('clusterCIDR'),
    detectLocalMode: str('detectLocalMode') || 'ClusterCIDR',
    bridgeInterface: str('detectLocal.bridgeInterface'),
    interfaceNamePrefix: str('detectLocal.interfaceNamePrefix'),
    nodePortAddresses: list('nodePortAddresses'),
    // In a file an empty address means "default", not "disabled" as on the command line.
    healthzBindAddress: healthz === '' ? serverDefaults.healthz : appendPortIfNeeded(healthz, DEFAULT_HEALTHZ_PORT),
    metricsBindAddress: metrics === '' ? serverDefaults.metrics : appendPortIfNeeded(metrics, DEFAULT_METRICS_PORT),
    bindAddress,
    hostnameOverride: str('hostnameOverride'),
    kubeconfig: str('clientConnection.kubeconfig'),
    conntrackMaxPerCore: num('conntrack.maxPerCore', 32768),
    conntrackMin: num('conntrack.min', 131072),
    conntrackTcpEstablishedTimeoutMs: num('conntrack.tcpEstablishedTimeout', 24 * 3_600_000),
    conntrackTcpCloseWaitTimeoutMs: num('conntrack.tcpCloseWaitTimeout', 3_600_000),
    conntrackTcpBeLiberal: bool('conntrack.tcpBeLiberal'),
    conntrackUdpTimeoutMs: num('conntrack.udpTimeout', 0),
    conntrackUdpStreamTimeoutMs: num('conntrack.udpStreamTimeout', 0),
    configSyncPeriodMs: num('configSyncPeriod', 15 * 60_000, true),
    featureGates: isObject(gates) ? (gates as Record<string, boolean>) : {},
    acceptContentTypes: str('clientConnection.acceptContentTypes'),
    contentType: str('clientConnection.contentType') || 'application/vnd.kubernetes.protobuf',
    qps: num('clientConnection.qps', 5, true),
    burst: num('clientConnection.burst', 10, true),
    oomScoreAdj: num('oomScoreAdj', -999),
    bindAddressHardFail: bool('bindAddressHardFail'),
    enableProfiling: bool('enableProfiling'),
    showHiddenMetricsForVersion: str('showHiddenMetricsForVersion'),
    iptablesLocalhostNodePorts: bool('iptables.localhostNodePorts', true),
    logging,
  };

  const inertSet: InertSetting[] = [];
  for (const f of FIELDS) {
    if (f.inert && found.has(f.path) && !f.inert.isDefault(found.get(f.path))) inertSet.push({ name: f.path, why: f.inert.why });
  }

  const pathOf = new Map<string, string>();
  for (const f of FIELDS) {
    if (f.key !== undefined) pathOf.set(f.key, f.path);
    if (f.logging !== undefined) pathOf.set(`logging:${f.logging}`, f.path);
  }
  const origin: SettingsOrigin = {
    label: (key) => where(pathOf.get(key) ?? key),
    raw: (key) => {
      const p = pathOf.get(key);
      return p === undefined ? undefined : raws.get(p);
    },
    loggingLabel: (f) => where(pathOf.get(`logging:${f}`) ?? `logging.${f}`),
  };
  const lenient = [...unknown.map((p) => `unknown field ${JSON.stringify(p)}`), ...duplicates.map((p) => `duplicate field ${JSON.stringify(p)}`)];
  return { settings, origin, lenient, inert: inertSet };
}

function convert(value: unknown, type: FieldType, path: string, where: (path: string) => string): unknown {
  const fail = (): ConfigError => ConfigError.invalid(where(path), show(value), EXPECTED[type]);
  const int = (v: unknown, min: number, max: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw fail();
    return v;
  };
  switch (type) {
    case 'string':
      if (typeof value !== 'string') throw fail();
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw fail();
      return value;
    case 'duration': {
      if (typeof value !== 'string') throw fail();
      const ms = parseDuration(value);
      if (ms === undefined) throw fail();
      return ms;
    }
    case 'flushFrequency': {
      // logsapi's TimeOrMetaDuration: a duration string, or an integer count of nanoseconds.
      if (typeof value === 'number') return int(value, -(2 ** 63), 2 ** 63) / 1e6;
      if (typeof value !== 'string') throw fail();
      const ns = parseDurationNs(value);
      if (ns === undefined) throw fail();
      return Number(ns) / 1e6;
    }
    case 'int32':
      return int(value, -(2 ** 31), 2 ** 31 - 1);
    case 'verbosity':
      return int(value, 0, 2 ** 31 - 1);
    case 'float32':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw fail();
      return value;
    case 'quantity': {
      const text = typeof value === 'number' ? String(value) : value;
      if (typeof text !== 'string' || parseQuantity(text) === undefined) throw fail();
      return text;
    }
    case 'stringList':
      if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) throw fail();
      return value.map((v) => v.trim()).filter((v) => v !== '');
    case 'boolMap':
      if (!isObject(value)) throw fail();
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'boolean') throw ConfigError.invalid(where(`${path}.${k}`), show(v), 'true or false');
      }
      return { ...value };
    case 'vmodule':
      if (!Array.isArray(value)) throw fail();
      return value.map((item: unknown): VModuleItem => {
        if (!isObject(item) || typeof item.filePattern !== 'string' || item.filePattern === '' || /[=,]/.test(item.filePattern)) throw fail();
        return { pattern: item.filePattern, level: int(item.verbosity ?? 0, 0, 2 ** 31 - 1) };
      });
  }
}

function settingValue(s: Settings, f: FieldDef): unknown {
  if (f.inert) return f.inert.written;
  if (f.logging !== undefined) return s.logging[f.logging];
  if (f.key !== undefined) return s[f.key];
  return undefined;
}

function encode(value: unknown, f: FieldDef): unknown {
  switch (f.type) {
    case 'duration':
    case 'flushFrequency':
      return typeof value === 'number' ? formatDuration(value) : value;
    case 'stringList':
      // Upstream's empty lists are nil slices.
      return Array.isArray(value) && value.length > 0 ? value : null;
    case 'vmodule':
      return (value as readonly VModuleItem[]).map((i) => ({ filePattern: i.pattern, verbosity: i.level }));
    default:
      return value;
  }
}

function isEmpty(v: unknown): boolean {
  if (Array.isArray(v)) return v.length === 0;
  if (isObject(v)) return Object.keys(v).length === 0;
  return isZero(v) || v === null;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (!isObject(v)) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
}

/**
 * The KubeProxyConfiguration YAML of `s`, as upstream's --write-config-to writes it: mode ipvs (what
 * kube-ipvs runs, whatever the input said), every field, keys sorted.
 */
export function formatKubeProxyConfiguration(s: Settings): string {
  const root: Record<string, unknown> = { apiVersion: KUBE_PROXY_CONFIG_API_VERSION, kind: KUBE_PROXY_CONFIG_KIND };
  for (const f of FIELDS) {
    const value = f.path === 'mode' ? 'ipvs' : encode(settingValue(s, f), f);
    if (f.omitEmpty === true && isEmpty(value)) continue;
    const parts = f.path.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      node = isObject(next) ? next : (node[part] = {});
    }
    node[parts[parts.length - 1] ?? ''] = value;
  }
  return stringify(sortKeys(root), { version: '1.1', indentSeq: false, lineWidth: 0 });
}
