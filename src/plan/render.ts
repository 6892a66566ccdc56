// Prints a desired state in the real tools' own syntax (what `kube-ipvs plan` shows), so it can be
// diffed against `ipvsadm -Sn`, `ipset save` and `iptables-save` on a live node.
import { renderIpsetSave } from '../model/text/ipset.js';
import { renderIptablesSave } from '../model/text/iptables.js';
import { compareRealServers, renderIpvsadmSave } from '../model/text/ipvs.js';
import { hostPrefix } from '../model/ip.js';
import type { IptablesTable } from '../model/kernel.js';
import type { DesiredState, FamilyDesiredState } from './desired.js';
import { compareIpText } from './node-ips.js';
import { jumpRuleSpec } from './rules.js';

export const OUTPUT_FORMATS = ['ipvs', 'ipset', 'iptables', 'addresses', 'sysctl', 'json', 'all'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function renderIpvs(state: DesiredState): string {
  return renderIpvsadmSave(state.families.flatMap((f) => [...f.virtualServers.values()]));
}

export function renderIpsets(state: DesiredState): string {
  return renderIpsetSave(state.families.flatMap((f) => f.ipsets));
}

/** Our chains plus the jumps from the built-in chains, as iptables-save prints them. */
export function familyIptablesTables(f: FamilyDesiredState): IptablesTable[] {
  return f.iptables.map((t) => {
    const jumps = f.jumps.filter((j) => j.table === t.table).map((j) => ({ chain: j.from, spec: jumpRuleSpec(j) }));
    return { table: t.table, chains: t.chains, rules: [...jumps, ...t.rules] };
  });
}

export function renderIptables(state: DesiredState): string {
  return state.families
    .map((f) => `# ${f.family === 'IPv4' ? 'iptables-save' : 'ip6tables-save'}\n${renderIptablesSave(familyIptablesTables(f))}`)
    .join('');
}

export function renderAddresses(state: DesiredState): string {
  const lines: string[] = [];
  for (const f of state.families) {
    for (const a of [...f.boundAddresses].sort(compareIpText)) lines.push(`${a}/${hostPrefix(f.family)}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

export function renderSysctls(state: DesiredState): string {
  const lines = state.sysctls.map((s) => `${s.key.replaceAll('/', '.')}${s.mode === 'atLeast' ? '>=' : '='}${s.value}`);
  const t = state.ipvsTimeouts;
  if (t.tcp || t.tcpFin || t.udp) lines.push(`# ipvsadm --set ${t.tcp} ${t.tcpFin} ${t.udp}`);
  return lines.map((l) => `${l}\n`).join('');
}

/** Everything as one JSON document (stable key order, sorted members). */
export function renderJson(state: DesiredState): string {
  const doc = {
    families: state.families.map((f) => ({
      family: f.family,
      virtualServers: [...f.virtualServers.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, spec]) => ({ key, ...spec.vs, realServers: [...spec.realServers].sort(compareRealServers) })),
      ipsets: f.ipsets.map((s) => ({ ...s.spec, entries: [...s.entries].sort() })),
      boundAddresses: [...f.boundAddresses].sort(compareIpText),
      iptables: familyIptablesTables(f),
      noLocalEndpoints: f.noLocalEndpoints,
    })),
    sysctls: state.sysctls,
    ipvsTimeouts: state.ipvsTimeouts,
    conflicts: state.conflicts,
    healthCheckNodePorts: Object.fromEntries([...state.healthCheckNodePorts].sort()),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export function renderState(state: DesiredState, format: OutputFormat): string {
  switch (format) {
    case 'ipvs':
      return renderIpvs(state);
    case 'ipset':
      return renderIpsets(state);
    case 'iptables':
      return renderIptables(state);
    case 'addresses':
      return renderAddresses(state);
    case 'sysctl':
      return renderSysctls(state);
    case 'json':
      return renderJson(state);
    case 'all':
      return [
        ['ipvs (ipvsadm -Sn)', renderIpvs(state)],
        ['ipset (ipset save)', renderIpsets(state)],
        ['iptables (iptables-save)', renderIptables(state)],
        ['addresses (kube-ipvs0)', renderAddresses(state)],
        ['sysctl', renderSysctls(state)],
      ]
        .map(([title, body]) => `### ${title}\n${body}`)
        .join('\n');
  }
}
