// What the next sync would change: the live kernel against the desired state, as +/- lines in the
// tools' own syntax (a diff of `ipvsadm -Sn`, `ipset save`, `iptables-save`, kube-ipvs0's
// addresses and sysctl values), grouped by the Service that owns each object. Pure. It judges
// each subsystem as its reconciler does, so a line here is a write the next full sync makes:
// - IPVS: our families' virtual servers outside --ipvs-exclude-cidrs; a TCP real server at weight
//   0 that is no longer wanted is draining, which is listed apart and is not a difference;
// - ipsets: only the planned sets (a different hashsize is not drift: the kernel grows it);
// - iptables: our chains rule by rule, and the jumps into them from the built-in chains;
// - kube-ipvs0: the addresses of the proxied families; sysctls: the planned values.
import type { ListedRealServer } from '../dataplane/ipvs/backend.js';
import type { IptablesTables } from '../model/text/iptables.js';
import { renderIpsetCreate, sortIpsetEntries } from '../model/text/ipset.js';
import { compareRealServers, compareVirtualServers, renderIpvsadmRealServerLine, renderIpvsadmServiceLine } from '../model/text/ipvs.js';
import type { ParsedCidr } from '../model/ip.js';
import { hostPrefix, inAnyCidr, parseCidr } from '../model/ip.js';
import type { RealServer, VirtualServer } from '../model/kernel.js';
import { rsKey, sameVirtualServer, vsKey } from '../model/kernel.js';
import type { IpFamily } from '../model/types.js';
import type { DesiredState, FamilyDesiredState } from '../plan/desired.js';
import type { OwnerIndex } from '../plan/owners.js';
import { serviceOfPortKey } from '../plan/owners.js';
import { compareIpText } from '../plan/node-ips.js';
import { familyIptablesTables } from '../plan/render.js';
import { sameIpsetSpec } from './ipset-reconciler.js';
import type { LiveKernel } from './live.js';

/** The subsystems a difference is counted under (the names the metrics and sync reports use). */
export type DriftSubsystem = 'ipvs' | 'ipset' | 'iptables' | 'netif' | 'sysctl';
export const DRIFT_SUBSYSTEMS: readonly DriftSubsystem[] = ['ipvs', 'ipset', 'iptables', 'netif', 'sysctl'];

export interface DriftLine {
  readonly subsystem: DriftSubsystem;
  /** The tool whose output the line belongs to, e.g. "ipvsadm -Sn", "iptables-save -t nat". */
  readonly section: string;
  /** '+': the next sync adds it; '-': it removes (or replaces) it. */
  readonly sign: '+' | '-';
  readonly text: string;
}

/** Where a group's objects belong. */
export type DriftOwner = { readonly kind: 'service'; readonly service: string; readonly ports: readonly string[] } | { readonly kind: 'node' } | { readonly kind: 'unowned' };

export interface DriftGroup {
  readonly owner: DriftOwner;
  readonly lines: readonly DriftLine[];
}

/** A real server at weight 0 that is no longer wanted: it drains until its connections end. */
export interface DrainingNote {
  readonly service: string | undefined;
  readonly line: string;
  readonly activeConns: number;
  readonly inactiveConns: number;
}

export interface DriftReport {
  /** True when any +/- line exists (what `kube-ipvs diff` exits 1 for). */
  readonly differs: boolean;
  readonly counts: Readonly<Record<DriftSubsystem, number>>;
  /** Services by name, then node-wide objects, then objects no Service owns. */
  readonly groups: readonly DriftGroup[];
  readonly draining: readonly DrainingNote[];
}

export interface DriftOptions {
  readonly owners: OwnerIndex;
  /** --ipvs-exclude-cidrs: virtual servers inside are never ours. */
  readonly excludeCIDRs: readonly string[];
}

interface Owned {
  readonly owners: readonly string[];
  readonly line: DriftLine;
}

/** Longest-common-subsequence line diff for short lists (a chain's rules); sets beyond that size. */
function lineDiff(have: readonly string[], want: readonly string[]): Array<{ sign: '+' | '-'; text: string }> {
  const n = have.length;
  const m = want.length;
  if (n * m > 4_000_000) {
    const h = new Set(have);
    const w = new Set(want);
    return [...have.filter((l) => !w.has(l)).map((text) => ({ sign: '-' as const, text })), ...want.filter((l) => !h.has(l)).map((text) => ({ sign: '+' as const, text }))];
  }
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    const row = lcs[i] as Uint32Array;
    const next = lcs[i + 1] as Uint32Array;
    for (let j = m - 1; j >= 0; j--) row[j] = have[i] === want[j] ? (next[j + 1] as number) + 1 : Math.max(next[j] as number, row[j + 1] as number);
  }
  const out: Array<{ sign: '+' | '-'; text: string }> = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && have[i] === want[j]) {
      i++;
      j++;
    } else if (j < m && (i === n || ((lcs[i] as Uint32Array)[j + 1] as number) >= ((lcs[i + 1] as Uint32Array)[j] as number))) {
      out.push({ sign: '+', text: want[j++] as string });
    } else {
      out.push({ sign: '-', text: have[i++] as string });
    }
  }
  return out;
}

function toolName(family: IpFamily): string {
  return family === 'IPv4' ? 'iptables-save' : 'ip6tables-save';
}

export function diffLive(desired: DesiredState, live: LiveKernel, o: DriftOptions): DriftReport {
  const owned: Owned[] = [];
  const draining: DrainingNote[] = [];
  const excluded: ParsedCidr[] = o.excludeCIDRs.map((c) => parseCidr(c)).filter((c): c is ParsedCidr => c !== undefined);
  const families = desired.families.map((f) => f.family);
  const emit = (owners: readonly string[], subsystem: DriftSubsystem, section: string, sign: '+' | '-', text: string): void => {
    owned.push({ owners, line: { subsystem, section, sign, text } });
  };

  // IPVS.
  const liveVs = new Map<string, VirtualServer>();
  for (const v of live.virtualServers) {
    if (!families.includes(v.family) || inAnyCidr(v.address, excluded)) continue;
    liveVs.set(vsKey(v), { family: v.family, protocol: v.protocol, address: v.address, port: v.port, scheduler: v.scheduler, flags: v.flags, timeout: v.timeout });
  }
  const ipvs = 'ipvsadm -Sn';
  const wantedVs = desired.families.flatMap((f) => [...f.virtualServers.values()]).sort((a, b) => compareVirtualServers(a.vs, b.vs));
  for (const spec of wantedVs) {
    const key = vsKey(spec.vs);
    const owners = o.owners.ofVirtualServer(key);
    const have = liveVs.get(key);
    if (!have) {
      emit(owners, 'ipvs', ipvs, '+', renderIpvsadmServiceLine(spec.vs));
      for (const rs of [...spec.realServers].sort(compareRealServers)) emit(owners, 'ipvs', ipvs, '+', renderIpvsadmRealServerLine(spec.vs, rs));
      continue;
    }
    if (!sameVirtualServer(have, spec.vs)) {
      emit(owners, 'ipvs', ipvs, '-', renderIpvsadmServiceLine(have));
      emit(owners, 'ipvs', ipvs, '+', renderIpvsadmServiceLine(spec.vs));
    }
    diffRealServers(spec.vs, spec.realServers, live.realServers.get(key) ?? [], owners, emit, draining);
  }
  const wantedKeys = new Set(wantedVs.map((s) => vsKey(s.vs)));
  for (const [key, vs] of [...liveVs].sort(([, a], [, b]) => compareVirtualServers(a, b))) {
    if (wantedKeys.has(key)) continue;
    const owners = o.owners.ofVirtualServer(key);
    emit(owners, 'ipvs', ipvs, '-', renderIpvsadmServiceLine(vs));
    for (const rs of sortedListed(live.realServers.get(key) ?? [])) emit(owners, 'ipvs', ipvs, '-', renderIpvsadmRealServerLine(vs, rs));
  }

  // ipsets: the planned sets only.
  const liveSets = new Map(live.ipsets.map((s) => [s.spec.name, s]));
  for (const want of desired.families.flatMap((f) => f.ipsets)) {
    const name = want.spec.name;
    const have = liveSets.get(name);
    const section = 'ipset save';
    const setOwners = (e: string): readonly string[] => o.owners.ofSetEntry(name, e);
    const usable = have !== undefined && sameIpsetSpec(have.spec, want.spec);
    if (have && !usable) emit([], 'ipset', section, '-', renderIpsetCreate(have.spec));
    if (!usable) emit([], 'ipset', section, '+', renderIpsetCreate(want.spec));
    const current = usable ? have.entries : new Set<string>();
    if (have && !usable) for (const e of sortIpsetEntries(have.entries)) emit(setOwners(e), 'ipset', section, '-', `add ${name} ${e}`);
    for (const e of sortIpsetEntries([...current].filter((x) => !want.entries.has(x)))) emit(setOwners(e), 'ipset', section, '-', `add ${name} ${e}`);
    for (const e of sortIpsetEntries([...want.entries].filter((x) => !current.has(x)))) emit(setOwners(e), 'ipset', section, '+', `add ${name} ${e}`);
  }

  // iptables: our chains and the jumps into them, per family.
  for (const f of desired.families) {
    const tables = live.iptables.find((t) => t.family === f.family)?.tables;
    diffIptables(f, tables ?? new Map(), (section, sign, text) => emit([], 'iptables', section, sign, text));
  }

  // kube-ipvs0.
  const wantBound = new Set(desired.families.flatMap((f) => [...f.boundAddresses]));
  const section = 'kube-ipvs0 addresses';
  const hostAddr = (a: string): string => `${a}/${hostPrefix(a.includes(':') ? 'IPv6' : 'IPv4')}`;
  for (const a of [...live.bound].filter((x) => !wantBound.has(x) && families.includes(x.includes(':') ? 'IPv6' : 'IPv4')).sort(compareIpText)) emit(o.owners.ofAddress(a), 'netif', section, '-', hostAddr(a));
  for (const a of [...wantBound].filter((x) => !live.bound.has(x)).sort(compareIpText)) emit(o.owners.ofAddress(a), 'netif', section, '+', hostAddr(a));

  // sysctls.
  for (const s of desired.sysctls) {
    const current = live.sysctls.get(s.key);
    if (!live.sysctls.has(s.key)) continue;
    const n = current === undefined ? NaN : Number(current.split(/\s+/)[0]);
    if (s.mode === 'atLeast' ? n >= s.value : n === s.value) continue;
    const name = s.key.replaceAll('/', '.');
    // kube-ipvs writes sysctls when it starts (as kube-proxy does), not on every sync.
    const section = 'sysctl (set when kube-ipvs starts)';
    if (current !== undefined) emit([], 'sysctl', section, '-', `${name} = ${current}`);
    emit([], 'sysctl', section, '+', `${name} = ${s.value}`);
  }

  return assemble(owned, draining);
}

function sortedListed(list: readonly ListedRealServer[]): RealServer[] {
  return list.map((r) => ({ address: r.address, port: r.port, weight: r.weight, forward: r.forward })).sort(compareRealServers);
}

function diffRealServers(
  vs: VirtualServer,
  want: readonly RealServer[],
  have: readonly ListedRealServer[],
  owners: readonly string[],
  emit: (owners: readonly string[], subsystem: DriftSubsystem, section: string, sign: '+' | '-', text: string) => void,
  draining: DrainingNote[],
): void {
  const section = 'ipvsadm -Sn';
  const haveByKey = new Map(have.map((r) => [rsKey(r), r]));
  const wanted = new Set<string>();
  for (const w of [...want].sort(compareRealServers)) {
    const k = rsKey(w);
    wanted.add(k);
    const h = haveByKey.get(k);
    if (!h) emit(owners, 'ipvs', section, '+', renderIpvsadmRealServerLine(vs, w));
    else if (h.weight !== w.weight) {
      emit(owners, 'ipvs', section, '-', renderIpvsadmRealServerLine(vs, { ...w, weight: h.weight }));
      emit(owners, 'ipvs', section, '+', renderIpvsadmRealServerLine(vs, w));
    }
  }
  for (const h of sortedListed(have)) {
    if (wanted.has(rsKey(h))) continue;
    const listed = haveByKey.get(rsKey(h)) as ListedRealServer;
    const line = renderIpvsadmRealServerLine(vs, h);
    if (vs.protocol === 'TCP' && h.weight === 0) {
      // Quiesced and unwanted: it drains until its connections end (the sync adopts it as is).
      draining.push({ service: owners[0] !== undefined ? serviceOfPortKey(owners[0]) : undefined, line, activeConns: listed.activeConns, inactiveConns: listed.inactiveConns });
    } else {
      emit(owners, 'ipvs', section, '-', line);
    }
  }
}

function diffIptables(f: FamilyDesiredState, tables: IptablesTables, emit: (section: string, sign: '+' | '-', text: string) => void): void {
  for (const t of familyIptablesTables(f)) {
    const section = `${toolName(f.family)} -t ${t.table}`;
    const live = tables.get(t.table);
    for (const chain of t.chains) {
      if (!live?.chains.has(chain)) emit(section, '+', `:${chain} - [0:0]`);
    }
    // Built-in chains: only whether each of our jumps is there (other rules are not ours).
    const jumpChains = [...new Set(t.rules.filter((r) => !t.chains.includes(r.chain)).map((r) => r.chain))];
    for (const chain of jumpChains) {
      const have = new Set((live?.rules ?? []).filter((r) => r.chain === chain).map((r) => r.spec));
      for (const r of t.rules) if (r.chain === chain && !have.has(r.spec)) emit(section, '+', `-A ${chain} ${r.spec}`);
    }
    for (const chain of t.chains) {
      const have = (live?.rules ?? []).filter((r) => r.chain === chain).map((r) => `-A ${chain} ${r.spec}`);
      const want = t.rules.filter((r) => r.chain === chain).map((r) => `-A ${chain} ${r.spec}`);
      for (const d of lineDiff(have, want)) emit(section, d.sign, d.text);
    }
  }
}

function assemble(owned: readonly Owned[], draining: readonly DrainingNote[]): DriftReport {
  const counts: Record<DriftSubsystem, number> = { ipvs: 0, ipset: 0, iptables: 0, netif: 0, sysctl: 0 };
  const byService = new Map<string, { ports: Set<string>; lines: DriftLine[] }>();
  const node: DriftLine[] = [];
  const unowned: DriftLine[] = [];
  const nodeWide: ReadonlySet<DriftSubsystem> = new Set(['iptables', 'sysctl']);
  for (const { owners, line } of owned) {
    counts[line.subsystem]++;
    if (owners.length === 0) {
      // Set headers, rules and sysctls belong to the node; an object no Service claims is stale.
      (nodeWide.has(line.subsystem) || line.text.startsWith('create ') ? node : unowned).push(line);
      continue;
    }
    const service = [...new Set(owners.map(serviceOfPortKey))].sort().join(', ');
    let g = byService.get(service);
    if (!g) byService.set(service, (g = { ports: new Set(), lines: [] }));
    for (const p of owners) g.ports.add(p);
    g.lines.push(line);
  }
  const groups: DriftGroup[] = [...byService.keys()].sort().map((service) => {
    const g = byService.get(service) as { ports: Set<string>; lines: DriftLine[] };
    return { owner: { kind: 'service', service, ports: [...g.ports].sort() }, lines: g.lines };
  });
  if (node.length > 0) groups.push({ owner: { kind: 'node' }, lines: node });
  if (unowned.length > 0) groups.push({ owner: { kind: 'unowned' }, lines: unowned });
  return { differs: owned.length > 0, counts, groups, draining: [...draining] };
}

function ownerTitle(owner: DriftOwner): string {
  switch (owner.kind) {
    case 'service':
      return `Service ${owner.service} (${owner.ports.join(', ')})`;
    case 'node':
      return 'Node-wide (no single Service)';
    case 'unowned':
      return 'Not owned by any current Service (stale)';
  }
}

/** The text `kube-ipvs diff` prints: one block per owner, lines under the tool they belong to. */
export function renderDrift(r: DriftReport): string {
  const out: string[] = [];
  for (const g of r.groups) {
    out.push(`### ${ownerTitle(g.owner)}`);
    let section = '';
    for (const l of g.lines) {
      if (l.section !== section) out.push(`# ${(section = l.section)}`);
      out.push(`${l.sign} ${l.text}`);
    }
  }
  if (r.draining.length > 0) {
    out.push('### Draining (weight 0 until their connections end; not a difference)');
    for (const d of r.draining) out.push(`  ${d.line}  # ${d.service ?? 'no Service'}: ${d.activeConns} active, ${d.inactiveConns} inactive`);
  }
  const total = DRIFT_SUBSYSTEMS.reduce((n, s) => n + r.counts[s], 0);
  const parts = DRIFT_SUBSYSTEMS.filter((s) => r.counts[s] > 0).map((s) => `${s} ${r.counts[s]}`);
  out.push(total === 0 ? 'no differences: the kernel holds what kube-ipvs wants' : `${total} difference${total === 1 ? '' : 's'} (${parts.join(', ')})`);
  return `${out.join('\n')}\n`;
}
