// Go time.Duration text, as kube-proxy's flags and KubeProxyConfiguration files use it
// ("30s", "1m30s", "500ms", "1.5h", "-1s", "0"). Parsing works in integer nanoseconds (BigInt)
// so sums like "1h0.000000001s" and the int64 overflow check are exact, as in Go.

const NS_PER_UNIT: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['µs', 1_000n], // U+00B5 micro sign
  ['μs', 1_000n], // U+03BC Greek mu; Go accepts both
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

const MAX_NS = (1n << 63n) - 1n;
const COMPONENT = /^(\d*)(?:\.(\d*))?([^\d.]+)/;

/** Nanoseconds of a Go duration, or undefined when the text is not one. */
export function parseDurationNs(text: string): bigint | undefined {
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  // A bare zero is the only unit-less duration Go accepts.
  if (s === '0') return 0n;
  if (s === '') return undefined;
  let total = 0n;
  while (s !== '') {
    const m = COMPONENT.exec(s);
    if (!m) return undefined;
    const whole = m[1] ?? '';
    const frac = m[2] ?? '';
    const unitText = m[3] ?? '';
    if (whole === '' && frac === '') return undefined;
    // The unit runs until the next digit or dot, so "5sec" fails instead of reading "5s" + "ec".
    const unit = NS_PER_UNIT.get(unitText);
    if (unit === undefined) return undefined;
    let value = BigInt(whole === '' ? '0' : whole) * unit;
    if (frac !== '') {
      // Go truncates fractions below a nanosecond.
      value += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    }
    total += value;
    if (total > MAX_NS + (negative ? 1n : 0n)) return undefined;
    s = s.slice(m[0].length);
  }
  return negative ? -total : total;
}

/** Milliseconds (possibly fractional, e.g. 0.1 for "100us") of a Go duration, or undefined. */
export function parseDuration(text: string): number | undefined {
  const ns = parseDurationNs(text);
  return ns === undefined ? undefined : Number(ns) / 1e6;
}

/** Go's Duration.String() of a millisecond count: "30s", "1m30s", "15m0s", "24h0m0s", "500ms". */
export function formatDuration(ms: number): string {
  const ns = BigInt(Math.round(ms * 1e6));
  if (ns === 0n) return '0s';
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  if (abs < 1_000_000_000n) {
    const [unit, size] =
      abs < 1_000n ? ['ns', 1n] : abs < 1_000_000n ? ['µs', 1_000n] : ['ms', 1_000_000n];
    return `${sign}${fixed(abs, size)}${unit}`;
  }
  const hours = abs / 3_600_000_000_000n;
  const minutes = (abs / 60_000_000_000n) % 60n;
  const seconds = fixed(abs % 60_000_000_000n, 1_000_000_000n);
  if (hours > 0n) return `${sign}${hours}h${minutes}m${seconds}s`;
  if (minutes > 0n) return `${sign}${minutes}m${seconds}s`;
  return `${sign}${seconds}s`;
}

/** value/size as decimal text without trailing zeros. */
function fixed(value: bigint, size: bigint): string {
  const whole = value / size;
  const rest = value % size;
  if (rest === 0n) return whole.toString();
  const digits = size.toString().length - 1;
  const frac = rest.toString().padStart(digits, '0').replace(/0+$/, '');
  return `${whole}.${frac}`;
}
