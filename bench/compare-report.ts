// Turns what bench/compare-guest.sh sent for each proxy (marks with /proc counters, metrics
// scrapes, kernel counts, reach time, kprobe hits) into figures, and prints one table per size
// with kube-ipvs's ratio to each upstream mode.

/** One mark: the time and the proxy's /proc counters then. */
interface Mark {
  readonly t: number;
  /** utime + stime + cutime + cstime: CPU seconds of the process and its reaped children. */
  readonly cpu: number;
  readonly rssMB: number;
  readonly hwmMB: number;
}

export interface Figures {
  readonly label: string;
  readonly status: string;
  /** Process start → the whole cluster programmed (seconds), and how that time was established. */
  readonly coldComplete?: number;
  readonly coldHow?: string;
  readonly coldCpu?: number;
  readonly coldPeakRssMB?: number;
  /** Process start → default/kubernetes answered through its ClusterIP. */
  readonly reach?: number;
  /** The first full sync's duration and start (seconds after process start), from the metrics. */
  readonly firstSyncDuration?: number;
  readonly firstSyncStart?: number;
  readonly churnChanges?: number;
  readonly churnSeconds?: number;
  readonly churnCpuPerMin?: number;
  /**
   * CPU per minute of the writer's minutes after its first (the guest marks each minute): the
   * churn's cost without its first minute, in which a JIT-compiled daemon may still be warming up.
   */
  readonly churnLaterCpuPerMin?: number;
  readonly churnSyncs?: number;
  readonly churnP50?: number;
  readonly churnP99?: number;
  readonly churnSamples?: number;
  readonly idleCpuPerMin?: number;
  readonly idleRssMB?: number;
  readonly restartFirstSync?: number;
  readonly restartWrites?: number;
  readonly restartWritesBySubsystem?: Readonly<Record<string, number>>;
  readonly kernelCounts?: string;
  readonly notes: string[];
}

function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const m = /^### (\S+)$/.exec(line);
    if (m) {
      current = [];
      out.set(m[1] as string, current);
    } else current?.push(line);
  }
  return out;
}

function parseMarks(lines: readonly string[], clkTck: number): Map<string, Mark> {
  const out = new Map<string, Mark>();
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    if (f.length < 8) continue;
    const n = f.slice(1).map(Number);
    const [t, ut, st, cut, cst, rss, hwm] = n as [number, number, number, number, number, number, number];
    out.set(f[0] as string, { t, cpu: (ut + st + cut + cst) / clkTck, rssMB: rss / 1024, hwmMB: hwm / 1024 });
  }
  return out;
}

/** A Prometheus text scrape: series name{labels} → value. */
type Scrape = Map<string, number>;

function parseScrape(lines: readonly string[] | undefined): Scrape {
  const out: Scrape = new Map();
  for (const l of lines ?? []) {
    if (l.startsWith('#') || l.trim() === '') continue;
    const m = /^([^\s{]+)(\{[^}]*\})?\s+(\S+)/.exec(l);
    if (m) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

const FAMILIES = ['IPv4', 'IPv6'] as const;
const SYNC = 'kubeproxy_sync_proxy_rules';

/** Per family: completed syncs, their total duration, the end of the last one. */
function syncs(s: Scrape): Map<string, { count: number; sum: number; last: number }> {
  const out = new Map<string, { count: number; sum: number; last: number }>();
  for (const f of FAMILIES) {
    const count = s.get(`${SYNC}_duration_seconds_count{ip_family="${f}"}`) ?? 0;
    out.set(f, { count, sum: s.get(`${SYNC}_duration_seconds_sum{ip_family="${f}"}`) ?? 0, last: s.get(`${SYNC}_last_timestamp_seconds{ip_family="${f}"}`) ?? 0 });
  }
  return out;
}

/**
 * The first IPv4 sync (the cluster is IPv4) from a scrape taken after it: its end and start, when
 * it was the only one so far (else unknown: a later sync overwrote them).
 */
function firstSync(s: Scrape): { end: number; start: number } | undefined {
  const v = syncs(s).get('IPv4');
  return v && v.count === 1 ? { end: v.last, start: v.last - v.sum } : undefined;
}

/** histogram_quantile over the bucket increase between two scrapes, all families together. */
function quantiles(before: Scrape, after: Scrape, metric: string, qs: readonly number[]): { values: number[]; samples: number } {
  const buckets = new Map<number, number>();
  for (const [k, v] of after) {
    const m = new RegExp(`^${metric}_bucket\\{(.*)\\}$`).exec(k);
    if (!m) continue;
    const le = /le="([^"]+)"/.exec(m[1] as string)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + v - (before.get(k) ?? 0));
  }
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  const values = qs.map((q) => {
    if (total <= 0) return NaN;
    const rank = q * total;
    let prevBound = 0;
    let prevCount = 0;
    for (const [bound, count] of sorted) {
      if (count >= rank) {
        if (!Number.isFinite(bound)) return prevBound;
        return prevBound + ((bound - prevBound) * (rank - prevCount)) / Math.max(count - prevCount, 1e-9);
      }
      prevBound = bound;
      prevCount = count;
    }
    return prevBound;
  });
  return { values, samples: total };
}

function syncCount(s: Scrape): number {
  let n = 0;
  for (const [, v] of syncs(s)) n += v.count;
  return n;
}

/** CPU seconds per thread name between two marks (threads that started in between count from 0). */
function threadCpu(lines: readonly string[], from: string, to: string, clkTck: number): string {
  const at = (mark: string): Map<string, { comm: string; ticks: number }> => {
    const m = new Map<string, { comm: string; ticks: number }>();
    for (const l of lines) {
      const [name, tid, comm, ut, st] = l.trim().split(/\s+/);
      if (name === mark && tid && comm) m.set(tid, { comm, ticks: Number(ut) + Number(st) });
    }
    return m;
  };
  const a = at(from);
  const b = at(to);
  const byComm = new Map<string, number>();
  for (const [tid, t] of b) byComm.set(t.comm, (byComm.get(t.comm) ?? 0) + (t.ticks - (a.get(tid)?.ticks ?? 0)) / clkTck);
  return [...byComm].filter(([, s]) => s >= 0.05).sort((x, y) => y[1] - x[1]).map(([c, s]) => `${c} ${s.toFixed(1)}`).join(', ');
}

/** CPU per minute over each span between the writer's start, its minute marks and its end. */
function churnMinutes(marks: ReadonlyMap<string, Mark>, start: Mark, end: Mark): number[] {
  const points = [start];
  for (let k = 1; marks.has(`churn-m${k}`); k++) points.push(marks.get(`churn-m${k}`) as Mark);
  if (points.length === 1) return [];
  points.push(end);
  const out: number[] = [];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1] as Mark;
    const b = points[i] as Mark;
    if (b.t - a.t >= 1) out.push(((b.cpu - a.cpu) / (b.t - a.t)) * 60);
  }
  return out;
}

export function figuresOf(label: string, text: string, clkTck: number): Figures {
  const sec = sections(text);
  const status = (sec.get('status') ?? []).join(' ').trim() || 'no result';
  const marks = parseMarks(sec.get('marks') ?? [], clkTck);
  const notes: string[] = [];
  const start = marks.get('start');
  const synced = marks.get('synced');
  const fig: { -readonly [K in keyof Figures]: Figures[K] } = { label, status, notes };
  if (!start || !synced) return fig;

  // Cold start: the proxy's own first sync, verified in the kernel right after it; or, when the
  // kernel was not complete then, the first kernel poll that found it complete.
  const counts = (sec.get('counts') ?? []).filter((l) => l.trim() !== '');
  const first = firstSync(parseScrape(sec.get('metrics-cold')));
  const completeAt = marks.get('complete');
  // The first sync's span: from the scrape that first showed a completed sync (the guest polls
  // for it), else from the scrape after the proxy went quiet if that sync was still the only one.
  const firstSeen = firstSync(parseScrape(sec.get('metrics-first'))) ?? first;
  if (firstSeen) {
    fig.firstSyncDuration = firstSeen.end - firstSeen.start;
    fig.firstSyncStart = firstSeen.start - start.t;
  } else notes.push('first sync span unknown (more than one sync by the first scrape that saw one)');
  if (completeAt) {
    // One check means the kernel was complete when the sync was seen: the sync's end is the time.
    if (first && counts.length === 1) {
      fig.coldComplete = first.end - start.t;
      fig.coldHow = 'end of the first sync (metrics), kernel checked complete right after';
    } else {
      fig.coldComplete = completeAt.t - start.t;
      fig.coldHow = 'the kernel poll (every 1 s) that first found it complete';
    }
  } else {
    notes.push('the kernel never held the whole cluster');
  }
  fig.coldCpu = synced.cpu;
  fig.coldPeakRssMB = synced.hwmMB;
  fig.kernelCounts = counts.at(-1)?.split(/\s+/).slice(1).join(' ');
  if (fig.coldHow) notes.push(`cold start: ${fig.coldHow}`);

  const reach = (sec.get('reach') ?? []).join('').trim();
  if (reach !== '' && reach !== 'none' && Number.isFinite(Number(reach))) fig.reach = Number(reach) - start.t;
  else notes.push('default/kubernetes never answered through its ClusterIP');

  const cs = marks.get('churn-start');
  const ce = marks.get('churn-end');
  const cy = marks.get('churn-synced');
  if (cs && ce && cy) {
    fig.churnSeconds = ce.t - cs.t;
    fig.churnChanges = Number(/ok (\d+)/.exec((sec.get('churn') ?? []).join(' '))?.[1] ?? NaN);
    fig.churnCpuPerMin = ((cy.cpu - cs.cpu) / fig.churnSeconds) * 60;
    const before = parseScrape(sec.get('metrics-churn-baseline'));
    const after = parseScrape(sec.get('metrics-churn'));
    const q = quantiles(before, after, 'kubeproxy_network_programming_duration_seconds', [0.5, 0.99]);
    [fig.churnP50, fig.churnP99] = q.values;
    fig.churnSamples = q.samples;
    fig.churnSyncs = syncCount(after) - syncCount(before);
    const threads = threadCpu(sec.get('threads') ?? [], 'churn-start', 'churn-synced', clkTck);
    if (threads) notes.push(`churn CPU s by thread: ${threads}`);
    const minutes = churnMinutes(marks, cs, ce);
    if (minutes.length > 0) notes.push(`churn CPU s per minute, minute by minute: ${minutes.map((m) => m.toFixed(1)).join(', ')}`);
    const m1 = marks.get('churn-m1');
    if (m1 && ce.t - m1.t >= 60) fig.churnLaterCpuPerMin = ((ce.cpu - m1.cpu) / (ce.t - m1.t)) * 60;
  }
  const is = marks.get('idle-start');
  const ie = marks.get('idle-end');
  if (is && ie) {
    fig.idleCpuPerMin = ((ie.cpu - is.cpu) / (ie.t - is.t)) * 60;
    fig.idleRssMB = ie.rssMB;
    const threads = threadCpu(sec.get('threads') ?? [], 'idle-start', 'idle-end', clkTck);
    if (threads) notes.push(`idle CPU s by thread: ${threads}`);
  }
  const rs = marks.get('restart-start');
  if (rs && marks.get('restart-synced')) {
    const r = firstSync(parseScrape(sec.get('metrics-restart')));
    const end = r?.end ?? (marks.get('restart-synced') as Mark).t;
    if (!r) notes.push('restart: more than one sync by the time it was seen; the time is when it was seen');
    fig.restartFirstSync = end - rs.t;
    const by: Record<string, number> = {};
    let total = 0;
    for (const l of sec.get('kprobes') ?? []) {
      const [subsystem, , hits] = l.trim().split(/\s+/);
      if (!subsystem || hits === undefined) continue;
      by[subsystem] = (by[subsystem] ?? 0) + Number(hits);
      total += Number(hits);
    }
    fig.restartWrites = total;
    fig.restartWritesBySubsystem = by;
    const missing = (sec.get('kprobes-missing') ?? []).filter((l) => l.trim() !== '');
    if (missing.length > 0) notes.push(`kprobes not placed: ${missing.join(', ')}`);
  }
  return fig;
}

const fmt = (v: number | undefined, digits = 1): string => (v === undefined || Number.isNaN(v) ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(digits));

/** How many times better kube-ipvs is (other / ours, lower is better); "—" when undefined. */
function ratio(other: number | undefined, ours: number | undefined): string {
  if (other === undefined || ours === undefined || Number.isNaN(other) || Number.isNaN(ours)) return '—';
  if (ours === 0) return other === 0 ? '=' : '∞';
  const r = other / ours;
  return `${r >= 10 ? r.toFixed(0) : r >= 0.095 ? r.toFixed(1) : r.toPrecision(1)}×`;
}

interface Row {
  readonly name: string;
  readonly get: (f: Figures) => number | undefined;
  readonly digits?: number;
  readonly cell?: (f: Figures) => string;
  /** A figure whose ratio means nothing (a share, a count of syncs). */
  readonly noRatio?: boolean;
}

const ROWS: readonly Row[] = [
  { name: 'cold start: whole cluster in the kernel (s)', get: (f) => f.coldComplete },
  { name: 'cold start: CPU (s, with children)', get: (f) => f.coldCpu },
  { name: 'cold start: peak RSS (MB)', get: (f) => f.coldPeakRssMB, digits: 0 },
  { name: 'first sync: its own duration (s, from its metrics)', get: (f) => f.firstSyncDuration },
  { name: 'default/kubernetes answers via ClusterIP (s after start)', get: (f) => f.reach },
  {
    name: '… as % of the first sync (from its start)',
    get: (f) => (f.reach !== undefined && f.firstSyncStart !== undefined && f.firstSyncDuration ? ((f.reach - f.firstSyncStart) / f.firstSyncDuration) * 100 : undefined),
    digits: 0,
    noRatio: true,
  },
  { name: 'churn: CPU (s per minute of churn)', get: (f) => f.churnCpuPerMin, digits: 2 },
  { name: 'churn after its first minute: CPU (s per minute)', get: (f) => f.churnLaterCpuPerMin, digits: 2 },
  { name: 'churn: network programming p50 (s)', get: (f) => f.churnP50, digits: 2 },
  { name: 'churn: network programming p99 (s)', get: (f) => f.churnP99, digits: 2 },
  { name: 'churn: syncs', get: (f) => f.churnSyncs, digits: 0, noRatio: true },
  { name: 'idle: CPU (s per minute)', get: (f) => f.idleCpuPerMin, digits: 2 },
  { name: 'idle: RSS (MB)', get: (f) => f.idleRssMB, digits: 0 },
  { name: 'restart: first sync (s after start)', get: (f) => f.restartFirstSync },
  {
    name: 'restart: kernel write requests',
    get: (f) => f.restartWrites,
    digits: 0,
    cell: (f) => {
      if (f.restartWrites === undefined) return '—';
      const by = Object.entries(f.restartWritesBySubsystem ?? {}).filter(([, n]) => n > 0).map(([s, n]) => `${s} ${n}`);
      return by.length > 0 ? `${f.restartWrites} (${by.join(', ')})` : String(f.restartWrites);
    },
  },
];

/** Markdown table: one column per proxy, then kube-ipvs's ratio to each other proxy. */
export function table(figs: readonly Figures[], ours: string): string {
  const us = figs.find((f) => f.label === ours);
  const others = figs.filter((f) => f.label !== ours);
  const head = ['figure', ...figs.map((f) => f.label), ...(us ? others.map((o) => `${o.label} / kube-ipvs`) : [])];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const row of ROWS) {
    const cells = figs.map((f) => (row.cell ? row.cell(f) : fmt(row.get(f), row.digits ?? 1)));
    const ratios = us ? others.map((o) => (row.noRatio ? '' : ratio(row.get(o), row.get(us)))) : [];
    lines.push(`| ${[row.name, ...cells, ...ratios].join(' | ')} |`);
  }
  return lines.join('\n');
}
