// Kernel dumps (test/fidelity/guest.sh) → comparable lines per category, and the comparison of two
// of them. Normalising removes only what carries no meaning: counters, the kernel's hash order of
// virtual servers, real servers, set entries and chain declarations, and chains that belong to
// neither proxy. Rule order inside a chain is kept: it is part of the contract, except in the one
// chain whose order upstream takes from Go's map iteration (UNORDERED_CHAINS).

export const CATEGORIES = ['ipvs', 'ipvs-timeouts', 'ipset', 'iptables', 'ip6tables', 'addresses', 'link', 'sysctl'] as const;
export type Category = (typeof CATEGORIES)[number];

export type NormalizedDump = Record<Category, string[]>;

/** Splits a dump into its "### name" sections. */
export function sections(dump: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of dump.split('\n')) {
    const m = /^### (\S+)$/.exec(line);
    if (m?.[1]) {
      current = [];
      out.set(m[1], current);
    } else if (current && line.trim() !== '') {
      current.push(line.trimEnd());
    }
  }
  return out;
}

/**
 * `ipvsadm -Sn`: one "VS" line per virtual server and one "RS" line per real server prefixed
 * with its virtual server, sorted (the kernel lists them in hash order).
 */
export function normalizeIpvs(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (const l of lines) {
    // ipvsadm names a virtual server -t (TCP), -u (UDP), -f (fwmark) or --sctp-service (SCTP).
    const a = /^-A ((?:-[tuf]|--sctp-service) \S+)(.*)$/.exec(l);
    if (a?.[1] !== undefined) {
      out.push(`VS ${a[1]}${a[2] ?? ''}`);
      continue;
    }
    const r = /^-a ((?:-[tuf]|--sctp-service) \S+) (.*)$/.exec(l);
    if (r?.[1] !== undefined) {
      out.push(`RS ${r[1]} ${r[2] ?? ''}`);
      continue;
    }
    // A line we cannot read would otherwise drop out of the comparison unseen.
    if (/^-[Aa] /.test(l)) throw new Error(`ipvsadm -Sn: unrecognised line: ${l}`);
  }
  return out.sort();
}

/**
 * `ipset save`: sorted create and add lines (entries come in hash order), without the hash seed
 * (`initval`) the kernel draws at random for each set.
 */
export function normalizeIpset(lines: readonly string[]): string[] {
  return lines
    .filter((l) => l.startsWith('create ') || l.startsWith('add '))
    .map((l) => l.replace(/ initval 0x[0-9a-f]+/, ''))
    .sort();
}

const BUILTIN = new Set(['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING']);

/**
 * Chains whose rule order carries no meaning and is not upstream's contract: kube-proxy v1.36.3
 * writes KUBE-IPVS-OUT-FILTER's DROP rules (one per LoadBalancer IP, port and protocol the node
 * must not reach) from lbNoNodeAccessIPPortProtocolEntries, filled while ranging over svcPortMap, a
 * Go map (pkg/proxy/ipvs/proxier.go, syncProxyRules), so their order changes from sync to sync.
 * The rules match disjoint packets, so any order filters the same. Compared sorted.
 */
const UNORDERED_CHAINS = new Set(['filter KUBE-IPVS-OUT-FILTER']);

/**
 * `iptables-save`: the KUBE-* chains (declarations without counters, sorted) and, per chain in
 * table order, its rules in order; a built-in chain contributes only its rules that mention a
 * KUBE-* chain or set. Each line is "table chain-or-:decl rule".
 */
export function normalizeIptables(lines: readonly string[]): string[] {
  const decls: string[] = [];
  const rules = new Map<string, string[]>();
  let table = '';
  for (const l of lines) {
    if (l.startsWith('#') || l === 'COMMIT') continue;
    if (l.startsWith('*')) {
      table = l.slice(1);
      continue;
    }
    const d = /^:(\S+) (\S+)/.exec(l);
    if (d?.[1] !== undefined) {
      if (d[1].startsWith('KUBE-')) decls.push(`${table} :${d[1]} ${d[2] ?? ''}`);
      continue;
    }
    const r = /^-A (\S+) (.*)$/.exec(l.replace(/^\[\d+:\d+\] /, ''));
    if (r?.[1] === undefined) continue;
    const chain = r[1];
    const rule = r[2] ?? '';
    if (!chain.startsWith('KUBE-') && !(BUILTIN.has(chain) && rule.includes('KUBE-'))) continue;
    const key = `${table} ${chain}`;
    const list = rules.get(key) ?? [];
    list.push(`${key} ${rule}`);
    rules.set(key, list);
  }
  const chains = [...rules.keys()].sort();
  for (const c of chains) if (UNORDERED_CHAINS.has(c)) rules.get(c)?.sort();
  return [...decls.sort(), ...chains.flatMap((c) => rules.get(c) ?? [])];
}

export function normalizeDump(dump: string): NormalizedDump {
  const s = sections(dump);
  const get = (name: string): string[] => s.get(name) ?? [];
  return {
    ipvs: normalizeIpvs(get('ipvs')),
    'ipvs-timeouts': get('ipvs-timeouts').filter((l) => l.startsWith('Timeout')),
    ipset: normalizeIpset(get('ipset')),
    iptables: normalizeIptables(get('iptables')),
    ip6tables: normalizeIptables(get('ip6tables')),
    addresses: [...get('addresses')].sort(),
    link: get('link'),
    sysctl: get('sysctl'),
  };
}

export interface LineDiff {
  readonly category: Category;
  /** Which side has the line: upstream kube-proxy or kube-ipvs. */
  readonly side: 'upstream' | 'kube-ipvs';
  readonly line: string;
}

/**
 * The lines only one side has. For sorted categories a multiset difference; for iptables the
 * chains are compared as sequences (longest common subsequence), so a rule in the wrong place
 * shows as one line missing on each side.
 */
export function compareDumps(upstream: NormalizedDump, ours: NormalizedDump): LineDiff[] {
  const out: LineDiff[] = [];
  for (const category of CATEGORIES) {
    const a = upstream[category];
    const b = ours[category];
    const [onlyA, onlyB] = category === 'iptables' || category === 'ip6tables' ? sequenceDiff(a, b) : multisetDiff(a, b);
    for (const line of onlyA) out.push({ category, side: 'upstream', line });
    for (const line of onlyB) out.push({ category, side: 'kube-ipvs', line });
  }
  return out;
}

function multisetDiff(a: readonly string[], b: readonly string[]): [string[], string[]] {
  const count = new Map<string, number>();
  for (const l of b) count.set(l, (count.get(l) ?? 0) + 1);
  const onlyA: string[] = [];
  for (const l of a) {
    const n = count.get(l) ?? 0;
    if (n > 0) count.set(l, n - 1);
    else onlyA.push(l);
  }
  const onlyB: string[] = [];
  for (const [l, n] of count) for (let i = 0; i < n; i++) onlyB.push(l);
  return [onlyA, onlyB.sort()];
}

/** Longest common subsequence diff; dumps are small (thousands of lines at most). */
export function sequenceDiff(a: readonly string[], b: readonly string[]): [string[], string[]] {
  const n = a.length;
  const m = b.length;
  // Rows of the LCS table from the end, as Uint32Arrays: (n+1)*(m+1) cells.
  const table: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    const row = table[i] as Uint32Array;
    const next = table[i + 1] as Uint32Array;
    for (let j = m - 1; j >= 0; j--) {
      row[j] = a[i] === b[j] ? (next[j + 1] as number) + 1 : Math.max(next[j] as number, row[j + 1] as number);
    }
  }
  const onlyA: string[] = [];
  const onlyB: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      i++;
      j++;
    } else if (((table[i + 1] as Uint32Array)[j] as number) >= ((table[i] as Uint32Array)[j + 1] as number)) {
      onlyA.push(a[i++] as string);
    } else {
      onlyB.push(b[j++] as string);
    }
  }
  while (i < n) onlyA.push(a[i++] as string);
  while (j < m) onlyB.push(b[j++] as string);
  return [onlyA, onlyB];
}
