// A small command-line parser with pflag's (kube-proxy's) conventions: `--name=value`,
// `--name value`, bare `--bool`, `--bool=false`, `-x` shorthands, `--` ends flags, flags and
// positional arguments may be interleaved. Written here to keep the dependency list short.
import { ConfigError } from './errors.js';

/**
 * string: one value, the last occurrence wins.
 * bool: `--flag` or `--flag=true|false` (never `--flag false`: that would be ambiguous with a
 *   positional argument, as in pflag).
 * list: comma-separated values; repeating the flag appends (pflag's StringSlice).
 * repeatable: one value per occurrence, commas kept (e.g. file paths).
 * optional: `--flag` alone means `noOptDefault`, a value only as `--flag=value` (pflag's
 *   NoOptDefVal, as --version and --version=raw).
 */
export type FlagKind = 'string' | 'bool' | 'list' | 'repeatable' | 'optional';
export type FlagValue = string | boolean | readonly string[];

export interface FlagSpec {
  /** Long name without dashes. */
  readonly name: string;
  readonly kind: FlagKind;
  readonly help: string;
  /** Shown by --help; for command flags also the value reported when the flag is absent. */
  readonly default?: FlagValue;
  /** One-letter shorthand without the dash ("v" for -v). */
  readonly short?: string;
  /** Placeholder in --help ("duration", "cidrs"); derived from kind when absent. */
  readonly valueName?: string;
  /** Set for deprecated flags: the sentence --help prints (or the warning, when hidden). */
  readonly deprecated?: string;
  /** Not listed by --help (upstream's deprecated flags are hidden). */
  readonly hidden?: boolean;
  /** For kind optional: the value of the bare flag. */
  readonly noOptDefault?: string;
}

export interface ParsedFlags {
  /** Only the flags present on the command line, by long name. */
  readonly values: ReadonlyMap<string, FlagValue>;
  readonly positional: readonly string[];
}

// strconv.ParseBool's accepted spellings, so existing kube-proxy command lines keep working.
const TRUE_WORDS = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

export function parseBool(text: string): boolean | undefined {
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  return undefined;
}

/** Splits a comma-separated list value; blanks are dropped so `--x=` means an empty list. */
export function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const byName = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const spec of specs) {
    // A clash is a programming error in the flag tables, not a user error.
    if (byName.has(spec.name)) throw new Error(`flag --${spec.name} is defined twice`);
    byName.set(spec.name, spec);
    if (spec.short !== undefined) {
      if (byShort.has(spec.short)) throw new Error(`flag -${spec.short} is defined twice`);
      byShort.set(spec.short, spec);
    }
  }

  const values = new Map<string, FlagValue>();
  const positional: string[] = [];

  const store = (spec: FlagSpec, shown: string, raw: string | undefined): void => {
    switch (spec.kind) {
      case 'bool': {
        const b = raw === undefined ? true : parseBool(raw);
        if (b === undefined) throw ConfigError.invalid(shown, raw ?? '', 'true or false');
        values.set(spec.name, b);
        return;
      }
      case 'string':
        values.set(spec.name, raw ?? '');
        return;
      case 'optional':
        values.set(spec.name, raw ?? spec.noOptDefault ?? '');
        return;
      case 'list':
      case 'repeatable': {
        const prev = values.get(spec.name);
        const items = spec.kind === 'list' ? splitList(raw ?? '') : [raw ?? ''];
        values.set(spec.name, [...(Array.isArray(prev) ? (prev as readonly string[]) : []), ...items]);
        return;
      }
    }
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }

    let spec: FlagSpec | undefined;
    let shown: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      shown = `--${name}`;
      spec = byName.get(name);
    } else {
      // -x, -x=value, -xvalue (pflag shorthand forms).
      const letter = arg.slice(1, 2);
      const rest = arg.slice(2);
      shown = `-${letter}`;
      spec = byShort.get(letter);
      inline = rest === '' ? undefined : rest.startsWith('=') ? rest.slice(1) : rest;
    }
    if (spec === undefined) {
      throw new ConfigError(`unknown flag ${shown}: see --help for the accepted flags`, shown);
    }
    if (spec.kind !== 'bool' && spec.kind !== 'optional' && inline === undefined) {
      const next = argv[i + 1];
      // "--a --b" is almost always a forgotten value, not a value that starts with "--".
      if (next === undefined || next.startsWith('--')) {
        throw new ConfigError(
          `flag ${shown} needs a value: expected ${shown}=VALUE or ${shown} VALUE`,
          shown,
        );
      }
      inline = next;
      i++;
    }
    store(spec, shown, inline);
  }
  return { values, positional };
}

function defaultText(spec: FlagSpec): string {
  const d = spec.default;
  // Zero values are not shown, as in pflag.
  if (d === undefined || d === false || d === '' || d === '0s') return '';
  if (Array.isArray(d)) return d.length === 0 ? '' : ` (default [${d.join(',')}])`;
  // Free-form strings are quoted so an address or name reads unambiguously; typed values are not.
  if (typeof d === 'string' && spec.valueName === undefined) return ` (default ${JSON.stringify(d)})`;
  return ` (default ${String(d)})`;
}

/** pflag-style usage lines: `  -v, --v string   help (default "x")`. */
export function formatFlagHelp(allSpecs: readonly FlagSpec[]): string {
  const specs = allSpecs.filter((s) => s.hidden !== true);
  const heads = specs.map((s) => {
    const valueName = s.valueName ?? (s.kind === 'bool' ? '' : s.kind === 'list' ? 'strings' : 'string');
    const short = s.short !== undefined ? `-${s.short}, ` : '    ';
    return `  ${short}--${s.name}${valueName ? ` ${valueName}` : ''}`;
  });
  const width = Math.max(0, ...heads.map((h) => h.length)) + 3;
  return specs
    .map((s, i) => {
      const deprecated = s.deprecated !== undefined ? ` (DEPRECATED: ${s.deprecated})` : '';
      return `${(heads[i] ?? '').padEnd(width)}${s.help}${defaultText(s)}${deprecated}`;
    })
    .join('\n');
}
