// The host's CPU time by kind, from /proc/stat: the share that other tenants of a virtual host
// took (steal) is invisible in the load average, and it slows the benchmark's VM unevenly.
import { readFileSync } from 'node:fs';

/** Cumulative clock ticks of all CPUs: every kind together, and steal alone. */
export interface HostCpu {
  readonly total: number;
  readonly steal: number;
}

/** The aggregate "cpu" line of /proc/stat (user nice system idle iowait irq softirq steal …). */
export function parseProcStat(text: string): HostCpu | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  const f = line?.trim().split(/\s+/).slice(1, 9).map(Number);
  if (!f || f.length < 8 || f.some((n) => !Number.isFinite(n))) return undefined;
  // guest and guest_nice (after steal) are already counted in user and nice.
  return { total: f.reduce((a, b) => a + b, 0), steal: f[7] as number };
}

/** Now, or undefined where there is no /proc/stat. */
export function readHostCpu(path = '/proc/stat'): HostCpu | undefined {
  try {
    return parseProcStat(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Steal as a percentage of the host's CPU time between two readings. */
export function stealPercent(from: HostCpu | undefined, to: HostCpu | undefined): number | undefined {
  if (!from || !to || to.total <= from.total) return undefined;
  return ((to.steal - from.steal) / (to.total - from.total)) * 100;
}
