// ipset membership as the kernel's `-m set --match-set NAME DIRS` tests it, over the planned set
// entries (which are stored in the exact text `ipset save` prints). Used by the packet tracer.
import type { IpsetState } from '../model/kernel.js';
import { cidrContains, formatIp, hostPrefix, parseCidr, parseIp } from '../model/ip.js';
import type { ParsedCidr, ParsedIp } from '../model/ip.js';
import type { IpFamily, Protocol } from '../model/types.js';
import { TraceError } from './trace-error.js';

/** The parts of a packet a set lookup can read. */
export interface SetProbe {
  readonly family: IpFamily;
  readonly src: ParsedIp;
  readonly dst: ParsedIp;
  readonly dstPort: number;
  readonly protocol: Protocol;
}

export type SetDir = 'src' | 'dst';

interface NetEntry {
  /** "IP,proto:port" of the entry: compared as text. */
  readonly head: string;
  readonly net: ParsedCidr;
}

const DIMENSIONS: Readonly<Record<string, number>> = {
  'hash:ip': 1,
  'hash:ip,port': 2,
  'hash:ip,port,ip': 3,
  'hash:ip,port,net': 3,
  'bitmap:port': 1,
};

/** Parses "src,dst,..." as the set match option takes it. */
export function parseSetDirs(text: string): SetDir[] {
  const dirs = text.split(',');
  for (const d of dirs) {
    if (d !== 'src' && d !== 'dst') throw new TraceError(`ipset match: bad direction list ${JSON.stringify(text)} (expected src/dst, comma-separated)`);
  }
  return dirs as SetDir[];
}

export class IpsetIndex {
  private readonly byName: ReadonlyMap<string, IpsetState>;
  private readonly netEntries = new Map<string, NetEntry[]>();

  constructor(sets: readonly IpsetState[]) {
    this.byName = new Map(sets.map((s) => [s.spec.name, s]));
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /**
   * Whether the packet is in the set, read through `dirs`. As in the kernel (ip_set_test): fewer
   * directions than the set's dimension, or a set of the other family, never match; extra
   * directions are ignored. A missing set throws (iptables refuses such a rule).
   */
  test(name: string, dirs: readonly SetDir[], p: SetProbe): boolean {
    const set = this.byName.get(name);
    if (!set) throw new TraceError(`ipset ${name} does not exist (a rule matches on it)`);
    const type = set.spec.type;
    const dim = DIMENSIONS[type];
    if (dim === undefined) throw new TraceError(`ipset ${name}: unsupported type ${type}`);
    if (dirs.length < dim) return false;
    const ip = (d: SetDir | undefined): ParsedIp => (d === 'src' ? p.src : p.dst);
    const port = (d: SetDir | undefined): number => {
      // Only the destination port is part of a traced packet; kube-proxy never matches a source port.
      if (d === 'src') throw new TraceError(`ipset ${name}: matching the source port is not supported by the tracer`);
      return p.dstPort;
    };
    if (type === 'bitmap:port') {
      // A bitmap:port stores no protocol: any TCP/UDP/SCTP port matches.
      return set.entries.has(String(port(dirs[0])));
    }
    const isv4 = set.spec.family === 'inet';
    if (isv4 !== (p.family === 'IPv4')) return false;
    const first = formatIp(ip(dirs[0]));
    if (type === 'hash:ip') return set.entries.has(first);
    const head = `${first},${p.protocol.toLowerCase()}:${port(dirs[1])}`;
    if (type === 'hash:ip,port') return set.entries.has(head);
    if (type === 'hash:ip,port,ip') return set.entries.has(`${head},${formatIp(ip(dirs[2]))}`);
    const third = ip(dirs[2]);
    return this.nets(name, set).some((e) => e.head === head && cidrContains(e.net, third));
  }

  private nets(name: string, set: IpsetState): NetEntry[] {
    let out = this.netEntries.get(name);
    if (out) return out;
    out = [];
    for (const entry of set.entries) {
      const parts = entry.split(',');
      const netText = parts[2] ?? '';
      // ipset prints a host net without its prefix.
      const ip = netText.includes('/') ? undefined : parseIp(netText);
      const net = ip ? parseCidr(`${netText}/${hostPrefix(ip.family)}`) : parseCidr(netText);
      if (parts.length !== 3 || !net) throw new TraceError(`ipset ${name}: cannot read entry ${JSON.stringify(entry)}`);
      out.push({ head: `${parts[0]},${parts[1]}`, net });
    }
    this.netEntries.set(name, out);
    return out;
  }
}
