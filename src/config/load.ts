// Command line (+ optional KubeProxyConfiguration file) → one validated ProxyConfig.
//
// Every flag of kube-proxy (the version in upstream/version.ts) is accepted. --config semantics
// follow kube-proxy: when a file is given it replaces the whole kube-proxy configuration, and the
// flags that map onto configuration fields (--ipvs-*, --cluster-cidr, --feature-gates, --kube-api-*,
// ...) are ignored even when set. Still read from the command line: --hostname-override (overrides
// the file's hostnameOverride), the logging flags (override the file's logging section, as
// upstream's copyLogsFromFlags), and the process-level options upstream never stores in the file
// (--master, --cleanup, --init-only, --write-config-to, --version, --help). Command-specific extra
// flags always apply. What the CLI should warn about once at start-up is in `warnings`: flags
// ignored because of --config, a file decoded leniently, settings without effect in kube-ipvs,
// deprecated flags, GA or deprecated feature gates.
import { fileErrorText } from '../model/error-text.js';
import { ConfigError } from './errors.js';
import { parseFeatureGatesFlag, UNIMPLEMENTED_GATES } from './feature-gates.js';
import { parseFlags, type FlagSpec, type FlagValue } from './flags.js';
import {
  DURATION_EXAMPLE,
  FIELDLESS_FLAGS,
  JSON_TYPE,
  KUBE_PROXY_FLAGS,
  NO_EFFECT,
  PROTOBUF,
  SETTING_FLAGS,
  type SettingFlag,
} from './kube-proxy-flags.js';
import { parseDuration } from './duration.js';
import { parseKubeProxyConfiguration } from './kubeproxyconfig.js';
import { DEFAULT_LOGGING, parseQuantity, parseVerbosity, parseVModule, type LoggingField, type LoggingSettings } from './logging.js';
import {
  DEFAULT_HEALTHZ_PORT,
  DEFAULT_METRICS_PORT,
  appendPortIfNeeded,
  defaultServerAddresses,
  validateAll,
  type SettingKey,
  type Settings,
  type SettingsOrigin,
} from './settings.js';
import type { ProxyConfig } from './types.js';
import { KUBE_PROXY_VERSION } from './upstream/version.js';

export type { FlagKind, FlagSpec, FlagValue } from './flags.js';
export { ConfigError } from './errors.js';
export { formatHelp, KUBE_PROXY_FLAGS } from './kube-proxy-flags.js';

export interface LoadOptions {
  /** Command-specific flags (e.g. --manifests, --node-ip, --output, --once). */
  readonly extraFlags: readonly FlagSpec[];
  /** The machine's host name; the node name unless overridden. */
  readonly hostname: string;
  readonly readFile: (path: string) => string;
}

/** Something the CLI logs once at start-up (a warning). */
export interface LoadWarning {
  readonly message: string;
  readonly fields: Readonly<Record<string, string>>;
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
  /** --version or --version=raw: print it and exit (config is the defaults, as with help). */
  readonly printVersion: 'short' | 'raw' | undefined;
  /** --write-config-to: write `settings` there and exit. */
  readonly writeConfigTo: string | undefined;
  /** The effective kube-proxy configuration (what --write-config-to writes). */
  readonly settings: Settings;
  /** kube-proxy flags given on the command line but ignored because --config was given. */
  readonly ignoredFlags: readonly string[];
  readonly warnings: readonly LoadWarning[];
}

function flagText(value: FlagValue): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

function convertFlag(f: SettingFlag, value: FlagValue): Settings[SettingKey] {
  const shown = `--${f.spec.name}`;
  const text = flagText(value);
  switch (f.conv) {
    case 'string':
    case 'bool':
    case 'list':
      return value;
    case 'gates':
      return parseFeatureGatesFlag(Array.isArray(value) ? (value as string[]) : [text], shown);
    case 'duration': {
      const ms = parseDuration(text);
      if (ms === undefined) throw ConfigError.invalid(shown, text, DURATION_EXAMPLE);
      return ms;
    }
    case 'int':
      return parseInt32(text, shown);
    case 'float': {
      const n = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : NaN;
      // float32's range.
      if (!Number.isFinite(n) || Math.abs(n) > 3.4028234663852886e38) throw ConfigError.invalid(shown, text, 'a number such as 5 or 7.5');
      return n;
    }
  }
}

/** kube-proxy's integer flags are int32. */
function parseInt32(text: string, shown: string): number {
  const n = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) throw ConfigError.invalid(shown, text, 'an integer');
  return n;
}

interface Source {
  settings: Settings;
  origin: SettingsOrigin;
}

function settingsFromFlags(values: ReadonlyMap<string, FlagValue>, applyDeprecatedPorts: boolean): Source {
  const out: Partial<Record<SettingKey, Settings[SettingKey]>> = {};
  const raw = new Map<SettingKey, string>();
  const label = new Map<SettingKey, string>();
  for (const f of SETTING_FLAGS) {
    label.set(f.key, `--${f.spec.name}`);
    const given = values.get(f.spec.name);
    if (given !== undefined) raw.set(f.key, flagText(given));
    out[f.key] = convertFlag(f, given ?? f.spec.default ?? '');
  }
  for (const f of FIELDLESS_FLAGS) {
    const given = values.get(f.name);
    if (given !== undefined && parseDuration(flagText(given)) === undefined) throw ConfigError.invalid(`--${f.name}`, flagText(given), DURATION_EXAMPLE);
  }
  const settings = { ...out, hostnameOverride: '', acceptContentTypes: '', logging: DEFAULT_LOGGING } as Settings;
  // Unless set, the server addresses follow the family of --bind-address, as upstream documents.
  const servers = defaultServerAddresses(settings.bindAddress);
  for (const [flag, key, fallback, portFlag, defaultPort] of [
    ['healthz-bind-address', 'healthzBindAddress', servers.healthz, 'healthz-port', DEFAULT_HEALTHZ_PORT],
    ['metrics-bind-address', 'metricsBindAddress', servers.metrics, 'metrics-port', DEFAULT_METRICS_PORT],
  ] as const) {
    const given = values.get(flag);
    let address = given === undefined ? fallback : flagText(given);
    // addressFromDeprecatedFlags: port 0 disables, otherwise a bare IP gets the port.
    if (applyDeprecatedPorts) {
      const portText = values.get(portFlag);
      const port = portText === undefined ? defaultPort : parseInt32(flagText(portText), `--${portFlag}`);
      address = port === 0 ? '' : appendPortIfNeeded(address, port);
    }
    settings[key] = address;
  }
  return {
    settings,
    origin: { label: (k) => label.get(k) ?? k, raw: (k) => raw.get(k), loggingLabel: (f) => `logging.${f}` },
  };
}

/** The logging flags given on the command line, over `base` (upstream's copyLogsFromFlags). */
function applyLoggingFlags(base: LoggingSettings, baseLabel: (f: LoggingField) => string, values: ReadonlyMap<string, FlagValue>): {
  logging: LoggingSettings;
  label: (f: LoggingField) => string;
} {
  const l: { -readonly [K in keyof LoggingSettings]: LoggingSettings[K] } = { ...base };
  const labels = new Map<LoggingField, string>();
  const text = (name: string): string | undefined => {
    const v = values.get(name);
    return v === undefined ? undefined : flagText(v);
  };
  for (const name of ['log-format', 'logging-format']) {
    const v = text(name);
    if (v !== undefined) {
      l.format = v;
      labels.set('format', `--${name}`);
    }
  }
  const v = text('v');
  if (v !== undefined) {
    l.verbosity = parseVerbosity(v, '--v');
    labels.set('verbosity', '--v');
  }
  const vmodule = text('vmodule');
  if (vmodule !== undefined) {
    // Flag items come first; the file's follow (copyLogsFromFlags appends them).
    l.vmodule = [...parseVModule(vmodule, '--vmodule'), ...base.vmodule];
    labels.set('vmodule', '--vmodule');
  }
  const flush = text('log-flush-frequency');
  if (flush !== undefined) {
    const ms = parseDuration(flush);
    if (ms === undefined) throw ConfigError.invalid('--log-flush-frequency', flush, DURATION_EXAMPLE);
    l.flushFrequencyMs = ms;
    labels.set('flushFrequencyMs', '--log-flush-frequency');
  }
  for (const [flag, field] of [['log-text-split-stream', 'textSplitStream'], ['log-json-split-stream', 'jsonSplitStream']] as const) {
    const b = values.get(flag);
    if (b !== undefined) {
      l[field] = b === true;
      labels.set(field, `--${flag}`);
    }
  }
  for (const [flag, field] of [['log-text-info-buffer-size', 'textInfoBufferSize'], ['log-json-info-buffer-size', 'jsonInfoBufferSize']] as const) {
    const q = text(flag);
    if (q !== undefined) {
      if (parseQuantity(q) === undefined) throw ConfigError.invalid(`--${flag}`, q, 'a quantity such as 0, 512, 64Ki or 1M');
      l[field] = q;
      labels.set(field, `--${flag}`);
    }
  }
  return { logging: l, label: (f) => labels.get(f) ?? baseLabel(f) };
}

/** --version's value: true → print, raw → print everything, false or a vX.Y.Z version → nothing. */
function parseVersionFlag(value: FlagValue | undefined): { print: 'short' | 'raw' | undefined; reported: boolean } {
  if (value === undefined) return { print: undefined, reported: false };
  const text = flagText(value);
  if (text === 'raw') return { print: 'raw', reported: false };
  if (text.startsWith('v')) {
    // verflag's SetDynamicVersion: the major, minor and patch must be those of the binary.
    const core = /^v(\d+\.\d+\.\d+)(?:[-+].*)?$/.exec(text)?.[1];
    if (core !== KUBE_PROXY_VERSION.slice(1)) {
      throw ConfigError.invalid('--version', text, `true, false, raw, or a version with the major/minor/patch of ${KUBE_PROXY_VERSION}`);
    }
    return { print: undefined, reported: true };
  }
  const b = ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(text) ? true : ['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(text) ? false : undefined;
  if (b === undefined) throw ConfigError.invalid('--version', text, 'true, false or raw');
  return { print: b ? 'short' : undefined, reported: false };
}

/** Settings (and their labels) that are set but change nothing in kube-ipvs. */
function noEffectSettings(s: Settings, origin: SettingsOrigin, logLabel: (f: LoggingField) => string): string[] {
  const out: string[] = [];
  const add = (label: string, why: string | undefined): void => {
    if (why !== undefined) out.push(`${label} (${why})`);
  };
  if (!s.iptablesLocalhostNodePorts) add(origin.label('iptablesLocalhostNodePorts'), NO_EFFECT.iptablesLocalhostNodePorts);
  if (s.enableProfiling) add(origin.label('enableProfiling'), NO_EFFECT.enableProfiling);
  if (s.showHiddenMetricsForVersion !== '') add(origin.label('showHiddenMetricsForVersion'), NO_EFFECT.showHiddenMetricsForVersion);
  if (s.contentType !== PROTOBUF && s.contentType !== JSON_TYPE) add(origin.label('contentType'), NO_EFFECT.contentType);
  if (s.acceptContentTypes !== '' && s.acceptContentTypes !== JSON_TYPE) add(origin.label('acceptContentTypes'), NO_EFFECT.acceptContentTypes);
  for (const [gate, why] of Object.entries(UNIMPLEMENTED_GATES)) {
    if (gate in s.featureGates) add(`${origin.label('featureGates')}: ${gate}`, why);
  }
  if (s.logging.verbosity > 0) add(logLabel('verbosity'), NO_EFFECT.verbosity);
  if (s.logging.vmodule.length > 0) add(logLabel('vmodule'), NO_EFFECT.vmodule);
  for (const f of ['textInfoBufferSize', 'jsonInfoBufferSize'] as const) {
    if (parseQuantity(s.logging[f]) !== 0) add(logLabel(f), NO_EFFECT[f]);
  }
  return out;
}

export function loadConfig(argv: readonly string[], opts: LoadOptions): LoadResult {
  const parsed = parseFlags(argv, [...KUBE_PROXY_FLAGS, ...opts.extraFlags]);
  const values = parsed.values;
  const help = values.get('help') === true;
  const version = parseVersionFlag(values.get('version'));
  // As upstream, --help and --version print without reading or validating anything else.
  const early = help || version.print !== undefined;

  const extra = new Map<string, FlagValue>();
  for (const spec of opts.extraFlags) {
    const v = values.get(spec.name) ?? spec.default ?? (spec.kind === 'bool' ? false : spec.kind === 'string' ? undefined : []);
    if (v !== undefined) extra.set(spec.name, v);
  }

  const configText = values.get('config');
  const configFile = typeof configText === 'string' && configText !== '' && !early ? configText : undefined;
  const writeText = values.get('write-config-to');
  const writeConfigTo = typeof writeText === 'string' && writeText !== '' && !early ? writeText : undefined;

  const warnings: LoadWarning[] = [];
  const noEffect: string[] = [];
  let source: Source;
  let ignoredFlags: string[] = [];
  if (configFile !== undefined) {
    let text: string;
    try {
      text = opts.readFile(configFile);
    } catch (err) {
      throw new ConfigError(`cannot read --config file ${configFile}: ${fileErrorText(err)}`, '--config', configFile);
    }
    const file = parseKubeProxyConfiguration(text, configFile);
    source = { settings: { ...file.settings }, origin: file.origin };
    ignoredFlags = [...SETTING_FLAGS.map((f) => f.spec.name), ...FIELDLESS_FLAGS.map((f) => f.name)]
      .filter((name) => values.has(name))
      .map((name) => `--${name}`);
    if (file.lenient.length > 0) {
      warnings.push({
        message: 'config file decoded leniently, as kube-proxy does when strict decoding fails: unknown fields are ignored, of duplicate fields the last is used',
        fields: { file: configFile, fields: file.lenient.join(', ') },
      });
    }
    for (const f of file.inert) noEffect.push(`${f.name} in ${configFile} (${f.why})`);
    // Upstream's copyLogsFromFlags re-registers the logging flags on the file's settings, and
    // registering --log-*-split-stream resets the file's splitStream to false: the file's value
    // never takes effect in kube-proxy v1.36.3, so not here either.
    for (const [field, flag] of [['textSplitStream', 'text'], ['jsonSplitStream', 'json']] as const) {
      if (!source.settings.logging[field]) continue;
      noEffect.push(`logging.options.${flag}.splitStream in ${configFile} (kube-proxy resets it when it reads a file; use --log-${flag}-split-stream)`);
      source.settings.logging = { ...source.settings.logging, [field]: false };
    }
  } else {
    // With --help the flag values are not validated: help must print even for a bad command line.
    const flagValues = early ? new Map<string, FlagValue>() : values;
    source = settingsFromFlags(flagValues, writeConfigTo === undefined);
    for (const f of FIELDLESS_FLAGS) {
      if (flagValues.has(f.name)) noEffect.push(`--${f.name} (${NO_EFFECT[f.name] ?? ''})`);
    }
  }
  for (const name of ['boot-id-file', 'machine-id-file']) {
    if (values.has(name) && !early) noEffect.push(`--${name} (${NO_EFFECT[name] ?? ''})`);
  }
  if (version.reported) noEffect.push(`--version=${flagText(values.get('version') ?? '')} (${NO_EFFECT.version ?? ''})`);

  const settings = source.settings;
  const logging = applyLoggingFlags(settings.logging, source.origin.loggingLabel, early ? new Map() : values);
  settings.logging = logging.logging;
  const origin: SettingsOrigin = { ...source.origin, loggingLabel: logging.label };

  // --hostname-override wins over the file's hostnameOverride, as upstream; an explicitly empty
  // flag counts as unset there too, but a blank one is an error.
  const hostFlag = values.get('hostname-override');
  if (typeof hostFlag === 'string' && hostFlag !== '' && !early) {
    settings.hostnameOverride = hostFlag.trim().toLowerCase();
    if (settings.hostnameOverride === '') throw ConfigError.invalid('--hostname-override', hostFlag, 'a non-empty node name');
  }

  const checked = validateAll(settings, origin);
  const v = checked.validated;
  let hostname = v.hostnameOverride;
  if (hostname === '') hostname = opts.hostname.trim().toLowerCase();
  if (hostname === '' && !early) {
    throw ConfigError.invalid('--hostname-override', '', 'a node name (the host name is empty, so one must be given)');
  }

  if (ignoredFlags.length > 0) {
    warnings.push({ message: 'flags ignored because --config is given (the file replaces them, as in kube-proxy)', fields: { flags: ignoredFlags.join(', ') } });
  }
  noEffect.push(...noEffectSettings(settings, origin, logging.label));
  if (noEffect.length > 0 && !early) warnings.push({ message: 'settings accepted without effect in kube-ipvs', fields: { settings: noEffect.join('; ') } });
  const deprecated = KUBE_PROXY_FLAGS.filter((f) => f.deprecated !== undefined && values.has(f.name)).map((f) => `--${f.name} (${f.deprecated ?? ''})`);
  if (deprecated.length > 0 && !early) warnings.push({ message: 'deprecated flags used', fields: { flags: deprecated.join(', ') } });
  for (const w of checked.gateWarnings) warnings.push({ message: w, fields: {} });

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
    clientConnection: v.clientConnection,
    featureGates: v.featureGates,
    allowServiceExternalIPs: v.allowServiceExternalIPs,
    oomScoreAdj: v.oomScoreAdj,
    bindAddressHardFail: v.bindAddressHardFail,
    logging: v.logging,
    configFile,
  };
  return {
    config,
    extra,
    positional: [...parsed.positional],
    help,
    printVersion: help ? undefined : version.print,
    writeConfigTo,
    settings,
    ignoredFlags,
    warnings: early ? [] : warnings,
  };
}
