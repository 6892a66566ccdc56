// kube-proxy's feature gates (--feature-gates, featureGates in a KubeProxyConfiguration), checked
// the way component-base's featuregate does at the kube-proxy version kube-ipvs follows: an
// unknown gate, a locked gate set against its lock, or an enabled gate whose dependencies are off
// is an error (kube-proxy exits); setting a GA or deprecated gate is allowed with a warning.
// The gate registry is generated from upstream (upstream/feature-gates.ts).
import { ConfigError } from './errors.js';
import { parseBool, splitList } from './flags.js';
import { UPSTREAM_FEATURE_GATES } from './upstream/feature-gates.js';
import { KUBE_PROXY_VERSION } from './upstream/version.js';

export type GateStage = 'PRE-ALPHA' | 'ALPHA' | 'BETA' | 'GA' | 'DEPRECATED';

export interface UpstreamGate {
  readonly name: string;
  readonly stage: GateStage;
  readonly default: boolean;
  readonly locked?: boolean;
  readonly dependsOn?: readonly string[];
}

/** Gates whose value changes what kube-ipvs does, and how. */
export const IMPLEMENTED_GATES: Readonly<Record<string, string>> = {
  AllowServiceExternalIPs: 'false: Service externalIPs get no virtual servers, set entries or addresses',
  LoggingAlphaOptions: 'allows the split-stream and info-buffer logging options',
  LoggingBetaOptions: 'allows the json logging format',
};

/**
 * Gates that change something in upstream kube-proxy that kube-ipvs does not have; setting one is
 * named in the start-up warning. The other registered gates belong to other components (or to
 * client-go internals with no visible effect) and are accepted silently, as upstream does.
 */
export const UNIMPLEMENTED_GATES: Readonly<Record<string, string>> = {
  ComponentFlagz: 'kube-ipvs serves no /flagz',
  ComponentStatusz: 'kube-ipvs serves no /statusz',
  NativeHistograms: 'kube-ipvs exposes classic histograms only',
};

const SPECIAL: Readonly<Record<string, GateStage>> = { AllAlpha: 'ALPHA', AllBeta: 'BETA' };

const REGISTRY: ReadonlyMap<string, UpstreamGate> = new Map(UPSTREAM_FEATURE_GATES.map((g) => [g.name, g]));

export interface ResolvedGates {
  /** The gates as set by the user, in their order (what --write-config-to writes). */
  readonly explicit: Readonly<Record<string, boolean>>;
  /** Effective value of a registered gate. */
  enabled(name: string): boolean;
  /** "setting GA feature gate X=false" and the like, as upstream logs them. */
  readonly warnings: readonly string[];
}

/**
 * Parses the --feature-gates value (comma-separated key=value pairs; a repeated flag adds pairs, a
 * later pair wins), as pflag's mapStringBool does.
 */
export function parseFeatureGatesFlag(items: readonly string[], flag: string): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const item of items.flatMap((i) => splitList(i))) {
    const eq = item.indexOf('=');
    if (eq < 0) throw ConfigError.invalid(flag, item, 'key=value pairs such as AllowServiceExternalIPs=false');
    const key = item.slice(0, eq).trim();
    const value = parseBool(item.slice(eq + 1).trim());
    if (value === undefined) throw ConfigError.invalid(flag, item, `${key}=true or ${key}=false`);
    out[key] = value;
  }
  return out;
}

/** Applies `set` to the registry; throws a ConfigError naming `label` for what upstream refuses. */
export function resolveFeatureGates(set: Readonly<Record<string, boolean>>, label: string): ResolvedGates {
  const enabled = new Map<string, boolean>();
  const warnings: string[] = [];
  for (const [name, value] of Object.entries(set)) {
    const gate = REGISTRY.get(name);
    if (gate === undefined) {
      throw new ConfigError(
        `unrecognized feature gate ${JSON.stringify(name)} in ${label}: kube-proxy ${KUBE_PROXY_VERSION} has no such gate (check the spelling; gates of newer releases are refused, as kube-proxy refuses them)`,
        label,
        name,
      );
    }
    if (gate.locked === true && gate.default !== value) {
      throw new ConfigError(
        `cannot set feature gate ${name} to ${value} in ${label}: it is locked to ${gate.default} in kube-proxy ${KUBE_PROXY_VERSION}; remove it`,
        label,
        `${name}=${value}`,
      );
    }
    if (gate.stage === 'PRE-ALPHA') {
      throw new ConfigError(`cannot set feature gate ${name} in ${label}: it is pre-alpha in kube-proxy ${KUBE_PROXY_VERSION}; remove it`, label, name);
    }
    enabled.set(name, value);
    if (gate.stage === 'GA' || gate.stage === 'DEPRECATED') {
      warnings.push(`setting ${gate.stage === 'GA' ? 'GA' : 'deprecated'} feature gate ${name}=${value}; it will be removed in a future release`);
    }
  }
  // AllAlpha/AllBeta set every gate of their stage that was not set explicitly.
  for (const [special, stage] of Object.entries(SPECIAL)) {
    const v = set[special];
    if (v === undefined) continue;
    for (const g of UPSTREAM_FEATURE_GATES) {
      if (g.stage === stage && !(g.name in SPECIAL) && !enabled.has(g.name)) enabled.set(g.name, v);
    }
  }
  const isOn = (name: string): boolean => enabled.get(name) ?? REGISTRY.get(name)?.default ?? false;
  for (const g of UPSTREAM_FEATURE_GATES) {
    if (!isOn(g.name)) continue;
    const off = (g.dependsOn ?? []).filter((d) => !isOn(d));
    if (off.length > 0) {
      throw new ConfigError(`feature gate ${g.name} is enabled in ${label}, but depends on gates that are disabled: ${off.join(', ')}; enable them or disable ${g.name}`, label);
    }
  }
  return { explicit: { ...set }, enabled: isOn, warnings };
}

/** The --help text for --feature-gates: the gates that matter to kube-ipvs, not all of them. */
export function featureGatesHelp(): string {
  const line = (name: string): string => {
    const g = REGISTRY.get(name);
    return g ? `${name}=true|false (${g.stage} - default=${g.default})` : name;
  };
  return (
    `A set of key=value pairs that describe feature gates. Every gate of kube-proxy ${KUBE_PROXY_VERSION} is accepted ` +
    `(an unknown or locked one is an error, as in kube-proxy); those that change kube-ipvs: ` +
    `${Object.keys(IMPLEMENTED_GATES).map(line).join(', ')}.`
  );
}
