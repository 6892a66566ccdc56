// `kube-ipvs status` as text: the daemon's state in a few lines, then one block per service port
// (its type, scheduler and virtual servers, then a table of its real servers). Columns line up
// across blocks; `text` fits the terminal width by shortening pod and node names and listing
// fewer addresses, `wide` adds zones, per-direction rates and one line per virtual server and
// never cuts. Times are relative to the document's own time, so output is reproducible.
import type { ConflictStatus, RealServerStatus, ServicePortStatus, StatusDocument, SubsystemCounts, SyncRecord } from './status-document.js';

export interface TableOptions {
  readonly wide: boolean;
  /** Terminal columns; undefined for no limit (output to a pipe). */
  readonly width?: number;
}

const ELLIPSIS = '…';

function duration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 10000) / 10} ms`;
  return `${Math.round(seconds * 100) / 100} s`;
}

function ago(iso: string | undefined, now: number): string {
  if (iso === undefined) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''} ago`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m ago`;
}

/** A count or rate in at most 5 characters: 999, 1.2k, 34.5M. */
export function shortNumber(n: number): string {
  if (n < 1000) return String(Math.round(n * 10) / 10);
  for (const [unit, size] of [['k', 1e3], ['M', 1e6], ['G', 1e9], ['T', 1e12]] as const) {
    if (n < size * 1000) return `${(n / size).toFixed(n < size * 10 ? 1 : 0)}${unit}`;
  }
  return `${(n / 1e15).toFixed(0)}P`;
}

function bytesRate(n: number): string {
  if (n < 1024) return `${Math.round(n)}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)}MiB`;
  return `${(n / 1024 ** 3).toFixed(1)}GiB`;
}

function counts(c: SubsystemCounts): string {
  return Object.entries(c)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
}

function syncLine(r: SyncRecord | undefined, now: number): string {
  if (!r) return 'last sync: none yet';
  return `last sync: ${r.full ? 'full' : 'partial'}, ${duration(r.durationSeconds)}, ${r.ok ? 'ok' : `FAILED (${r.failures} operation${r.failures === 1 ? '' : 's'})`}, ${ago(r.at, now)}; ${r.changes ? `wrote ${r.changes}` : 'no writes'}`;
}

/** The daemon's state: node, source, syncs, drift, failures, conflicts. */
export function renderDaemon(d: StatusDocument): string {
  const now = Date.parse(d.generatedAt);
  const s = d.sync;
  const lines = [
    `node ${d.node.name}: ${d.node.families.join('+') || 'no family'}, ${d.proxy.healthy ? 'healthy' : 'UNHEALTHY'}${d.node.eligible ? '' : ', being deleted'}; source ${d.source.kind} ${d.source.target}: ${d.source.connected ? 'connected' : `FAILING (${d.source.failing.join(', ')})`}`,
    `${syncLine(s.last, now)}${s.lastFullAt !== undefined && !s.last?.full ? `; last full ${ago(s.lastFullAt, now)}` : ''}`,
    `pending: ${s.pending.services} services, ${s.pending.endpoints} endpoints; drift: ${s.drift.lastAt !== undefined ? `${counts(s.drift.last)} repaired ${ago(s.drift.lastAt, now)}` : 'none found'}; totals: ${d.totals.servicePorts} service ports, ${d.totals.virtualServers} virtual servers, ${d.totals.realServers} real servers, ${d.totals.draining} draining`,
  ];
  if (d.failures.length > 0) {
    lines.push('failed operations (last sync):');
    for (const f of d.failures) lines.push(`  ${f.subsystem} ${f.operation} ${f.object}: ${f.error}`);
  }
  if (d.problems.length > 0) {
    lines.push('invalid objects:');
    for (const p of d.problems) lines.push(`  ${p.kind} ${p.namespace}/${p.name}: ${p.field ? `${p.field}: ` : ''}${p.reason} (${p.effect === 'skipped' ? 'skipped' : 'field ignored'})`);
  }
  if (d.conflicts.length > 0) {
    lines.push('conflicts:');
    for (const c of d.conflicts) lines.push(`  virtual server ${c.virtualServer} is wanted by ${[c.winner, ...c.losers].join(', ')}; ${c.winner} has it`);
  }
  return `${lines.join('\n')}\n`;
}

function state(r: RealServerStatus): string {
  if (r.terminating) return r.serving ? 'terminating' : 'term,!serving';
  if (r.ready) return 'ready';
  if (r.serving) return 'serving';
  if (r.node !== undefined || r.pod !== undefined) return 'not-ready';
  // No endpoint stands for it any more.
  return r.draining ? 'draining' : 'removed';
}

interface Column {
  readonly title: string;
  readonly right?: boolean;
  /** Shortened when the line is too long (pod and node names), first down to this width. */
  readonly flexible?: number;
  /** Left out when the line is still too long, lowest first. */
  readonly droppable?: number;
  readonly cell: (r: RealServerStatus) => string;
}

function columns(wide: boolean): Column[] {
  const cols: Column[] = [
    { title: 'ENDPOINT', cell: (r) => r.endpoint },
    { title: 'POD', flexible: 16, cell: (r) => r.pod ?? '-' },
    { title: 'NODE', flexible: 8, droppable: 3, cell: (r) => (r.node ?? '-') + (r.local ? '*' : '') },
  ];
  if (wide) cols.push({ title: 'ZONE', cell: (r) => r.zone ?? '-' });
  cols.push(
    { title: 'STATE', cell: state },
    { title: 'WEIGHT', right: true, cell: (r) => (r.weight === undefined ? '-' : String(r.weight)) },
    { title: 'ACTIVE', right: true, cell: (r) => shortNumber(r.activeConnections) },
    { title: 'INACTIVE', right: true, droppable: 1, cell: (r) => shortNumber(r.inactiveConnections) },
    { title: 'DRAIN LEFT', right: true, cell: (r) => (r.draining ? `${Math.ceil(r.draining.leftSeconds)}s` : '-') },
    { title: 'CONN/S', right: true, droppable: 2, cell: (r) => shortNumber(r.stats.connectionsPerSecond) },
  );
  if (wide) {
    cols.push(
      { title: 'PKT/S IN', right: true, cell: (r) => shortNumber(r.stats.packetsInPerSecond) },
      { title: 'PKT/S OUT', right: true, cell: (r) => shortNumber(r.stats.packetsOutPerSecond) },
      { title: 'B/S IN', right: true, cell: (r) => bytesRate(r.stats.bytesInPerSecond) },
      { title: 'B/S OUT', right: true, cell: (r) => bytesRate(r.stats.bytesOutPerSecond) },
    );
  }
  return cols;
}

function shorten(text: string, width: number): string {
  if (text.length <= width) return text;
  return width <= 1 ? ELLIPSIS.slice(0, width) : `${text.slice(0, width - 1)}${ELLIPSIS}`;
}

const INDENT = '  ';
const GAP = '  ';

function header(p: ServicePortStatus, o: TableOptions, conflicts: readonly ConflictStatus[]): string {
  const sched = `${p.scheduler}${p.schedulerFlags.length > 0 ? ` ${p.schedulerFlags.join(',')}` : ''}${p.persistenceSeconds > 0 ? ` sticky ${p.persistenceSeconds}s` : ''}`;
  const head = `${p.key}  ${p.type}  ${sched}`;
  const lost = conflicts.filter((c) => c.losers.includes(p.key)).map((c) => `${c.virtualServer} went to ${c.winner}`);
  const vss = p.virtualServers.map((v) => `${v.key.slice(0, v.key.lastIndexOf('/'))}${v.inKernel ? '' : '(missing)'}`);
  if (lost.length > 0) vss.push(`(conflict: ${lost.join('; ')})`);
  if (vss.length === 0) return `${head}  (no virtual server planned)`;
  if (o.wide || o.width === undefined) return `${head}  ${vss.join(' ')}`;
  // Fit as many addresses as the width allows, then say how many more there are.
  let line = head;
  for (let i = 0; i < vss.length; i++) {
    const rest = vss.length - i - 1;
    const more = rest > 0 ? ` +${rest} more` : '';
    if (`${line}  ${vss[i]}${more}`.length > o.width && i > 0) return `${line} +${vss.length - i} more`;
    line += `${i === 0 ? '  ' : ' '}${vss[i]}`;
  }
  return line;
}

/** The service ports with their real servers. */
export function renderServices(ports: readonly ServicePortStatus[], o: TableOptions, conflicts: readonly ConflictStatus[] = []): string {
  if (ports.length === 0) return 'no service ports match\n';
  let cols = columns(o.wide);
  const natural = (c: Column): number => Math.max(c.title.length, ...ports.flatMap((p) => p.realServers.map((r) => c.cell(r).length)));
  let widths = cols.map(natural);
  if (!o.wide && o.width !== undefined) {
    const limit = o.width;
    const total = (): number => INDENT.length + widths.reduce((n, w) => n + w, 0) + GAP.length * (widths.length - 1);
    // Too wide: shorten names to a useful width, then leave out the least useful columns, then
    // shorten names down to their titles.
    const shrink = (floor: (c: Column) => number): void => {
      for (;;) {
        if (total() <= limit) return;
        let widest = -1;
        cols.forEach((c, i) => {
          if (c.flexible !== undefined && (widths[i] as number) > floor(c) && (widest < 0 || (widths[i] as number) > (widths[widest] as number))) widest = i;
        });
        if (widest < 0) return;
        widths[widest] = (widths[widest] as number) - 1;
      }
    };
    shrink((c) => Math.max(c.title.length, c.flexible ?? 0));
    for (const rank of [1, 2, 3]) {
      if (total() <= limit) break;
      const keep = cols.map((c) => c.droppable !== rank);
      widths = widths.filter((_, i) => keep[i]);
      cols = cols.filter((_, i) => keep[i]);
    }
    shrink((c) => c.title.length);
  }
  const line = (cells: readonly string[]): string =>
    (INDENT + cells.map((c, i) => {
      const w = widths[i] as number;
      const t = shorten(c, w);
      return (cols[i] as Column).right ? t.padStart(w) : t.padEnd(w);
    }).join(GAP)).trimEnd();
  const out: string[] = [];
  for (const p of ports) {
    if (out.length > 0) out.push('');
    out.push(header(p, o, conflicts));
    if (o.wide) {
      out.push(`${INDENT}traffic policy: internal ${p.internalTrafficPolicy}, external ${p.externalTrafficPolicy}`);
      for (const v of p.virtualServers) {
        const s = v.stats;
        out.push(`${INDENT}${v.kind.padEnd(12)} ${v.key}${v.inKernel ? '' : ' (missing in the kernel)'}: ${v.realServers} real servers, ${shortNumber(s.connections)} conns, ${shortNumber(s.connectionsPerSecond)} conn/s, ${bytesRate(s.bytesInPerSecond)}/s in, ${bytesRate(s.bytesOutPerSecond)}/s out`);
      }
    }
    if (p.realServers.length === 0) {
      out.push(`${INDENT}(no endpoints)`);
      continue;
    }
    out.push(line(cols.map((c) => c.title)));
    for (const r of p.realServers) out.push(line(cols.map((c) => c.cell(r))));
  }
  return `${out.join('\n')}\n`;
}

/** The whole text output of `kube-ipvs status`. */
export function renderStatus(d: StatusDocument, o: TableOptions): string {
  const note = d.realServerStats ? '' : 'note: too many virtual servers selected to read each real server\'s rates (0 shown); filter by namespace or service to see them\n';
  return `${renderDaemon(d)}\n${note}${renderServices(d.services, o, d.conflicts)}`;
}
