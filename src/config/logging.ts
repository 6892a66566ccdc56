// kube-proxy's logging configuration (component-base logs/api/v1: the `logging` section of a
// KubeProxyConfiguration and the --logging-format, -v, --vmodule, --log-* flags) and its
// validation. What kube-ipvs does with it: the format, and the split of info and error lines
// between stdout and stderr. Verbosity levels, per-file verbosity and buffering have no
// counterpart in kube-ipvs's logger (see NO_EFFECT in load.ts).
import { ConfigError } from './errors.js';
import type { LogFormat } from './types.js';

export interface VModuleItem {
  readonly pattern: string;
  readonly level: number;
}

export interface LoggingSettings {
  readonly format: string;
  readonly flushFrequencyMs: number;
  readonly verbosity: number;
  readonly vmodule: readonly VModuleItem[];
  readonly textSplitStream: boolean;
  /** A resource quantity as written ("0", "64Ki"). */
  readonly textInfoBufferSize: string;
  readonly jsonSplitStream: boolean;
  readonly jsonInfoBufferSize: string;
}

export type LoggingField = keyof LoggingSettings;

/** SetRecommendedLoggingConfiguration's values. */
export const DEFAULT_LOGGING: LoggingSettings = {
  format: 'text',
  flushFrequencyMs: 5000,
  verbosity: 0,
  vmodule: [],
  textSplitStream: false,
  textInfoBufferSize: '0',
  jsonSplitStream: false,
  jsonInfoBufferSize: '0',
};

const MAX_LEVEL = 2 ** 31 - 1;

/** klog's -v: an unsigned integer that fits in an int32. */
export function parseVerbosity(text: string, label: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n > MAX_LEVEL) throw ConfigError.invalid(label, text, 'a log level from 0 to 2147483647');
  return n;
}

/** --vmodule: comma-separated pattern=N; empty items are skipped, as klog does. */
export function parseVModule(text: string, label: string): VModuleItem[] {
  const out: VModuleItem[] = [];
  for (const item of text.split(',')) {
    if (item === '') continue;
    const parts = item.split('=');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') throw ConfigError.invalid(label, item, 'pattern=N items such as proxier*=4');
    out.push({ pattern: parts[0] ?? '', level: parseVerbosity(parts[1] ?? '', label) });
  }
  return out;
}

export function formatVModule(items: readonly VModuleItem[]): string {
  return items.map((i) => `${i.pattern}=${i.level}`).join(',');
}

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/;
const SUFFIX: Readonly<Record<string, number>> = {
  '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** The value of a Kubernetes resource quantity ("512", "1K" is not one but "1k" is, "2Ki", "1e3"). */
export function parseQuantity(text: string): number | undefined {
  const m = QUANTITY.exec(text.trim());
  if (!m) return undefined;
  const v = Number(`${m[2] ?? ''}e${m[3] ?? '0'}`) * (SUFFIX[m[4] ?? ''] ?? 1);
  return m[1] === '-' ? -v : v;
}

export interface ValidatedLogging {
  readonly format: LogFormat;
  /** Info lines to stdout and error lines to stderr (otherwise everything to stderr). */
  readonly splitStream: boolean;
}

/**
 * logsapi.Validate: flush frequency > 0, a registered format (json needs LoggingBetaOptions),
 * vmodule only with text, split streams and info buffers only with LoggingAlphaOptions.
 */
export function validateLogging(l: LoggingSettings, gate: (name: string) => boolean, label: (f: LoggingField) => string): ValidatedLogging {
  if (!(l.flushFrequencyMs > 0)) throw ConfigError.invalid(label('flushFrequencyMs'), String(l.flushFrequencyMs), 'a duration greater than 0, such as 5s');
  if (l.format !== 'text' && l.format !== 'json') throw ConfigError.invalid(label('format'), l.format, 'text or json');
  if (l.format === 'json' && !gate('LoggingBetaOptions')) {
    throw new ConfigError(`${label('format')}: the json format needs the LoggingBetaOptions feature gate, which is disabled`, label('format'), l.format);
  }
  if (l.vmodule.length > 0 && l.format !== 'text') {
    throw new ConfigError(`${label('vmodule')} is only supported with the text log format`, label('vmodule'), formatVModule(l.vmodule));
  }
  for (const [split, buffer] of [
    ['textSplitStream', 'textInfoBufferSize'],
    ['jsonSplitStream', 'jsonInfoBufferSize'],
  ] as const) {
    const size = parseQuantity(l[buffer]);
    if (size === undefined) throw ConfigError.invalid(label(buffer), l[buffer], 'a quantity such as 0, 512, 64Ki or 1M');
    for (const [set, field] of [[l[split], split], [size !== 0, buffer]] as const) {
      if (set && !gate('LoggingAlphaOptions')) {
        throw new ConfigError(`${label(field)} needs the LoggingAlphaOptions feature gate, which is disabled`, label(field));
      }
    }
  }
  const format: LogFormat = l.format;
  return { format, splitStream: format === 'json' ? l.jsonSplitStream : l.textSplitStream };
}
