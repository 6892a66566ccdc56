// /proc/net/ip_vs: every virtual server of the network namespace with its real servers, weights
// and connection counts, in one read. A full resync needs exactly that for every virtual server;
// over generic netlink it is one dump per virtual server (15,000 at 10k services), so the read is
// the cheap way to it. The format is the kernel's (ip_vs_ctl.c, ip_vs_info_seq_show):
//   IP Virtual Server version 1.2.1 (size=4096)
//   Prot LocalAddress:Port Scheduler Flags
//     -> RemoteAddress:Port Forward Weight ActiveConn InActConn
//   TCP  0A60000A:0050 rr
//     -> 0AF40102:1F90      Masq    1      0          0
//   UDP  [fd00:0000:0000:0000:0000:0000:0000:000a]:0035 rr persistent 10800 FFFFFFFF
//   FWM  00000001 rr
// IPv4 addresses are host-order hex, IPv6 ones the full %pI6 form in brackets, ports hex.
import type { ParsedIp } from '../../model/ip.js';
import { formatIp, parseIp } from '../../model/ip.js';
import type { ForwardMethod } from '../../model/kernel.js';
import { vsKey } from '../../model/kernel.js';
import type { IpFamily, Protocol } from '../../model/types.js';
import type { ObservedRealServer } from './netlink-codec.js';

export const PROC_IPVS_PATH = '/proc/net/ip_vs';

/** What the file tells of a real server: enough to diff it and to drain it. */
export type ListedRealServer = Pick<ObservedRealServer, 'family' | 'address' | 'port' | 'weight' | 'forward' | 'activeConns' | 'inactiveConns'>;

/** A virtual server of the file (fwmark ones are not listed: we own none). */
export interface ListedVirtualServer {
  readonly family: IpFamily;
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
  readonly scheduler: string;
  readonly realServers: ListedRealServer[];
}

const FORWARD_BY_NAME: Readonly<Record<string, ForwardMethod>> = { Masq: 'masq', Local: 'local', Tunnel: 'tunnel', Route: 'route' };
const NAME_BY_FORWARD: Readonly<Record<ForwardMethod, string>> = { masq: 'Masq', local: 'Local', tunnel: 'Tunnel', route: 'Route', bypass: 'Masq' };
const PROTOCOLS: ReadonlySet<string> = new Set(['TCP', 'UDP', 'SCTP']);

const SERVICE_LINE = /^(\S+)\s+(\S+):([0-9A-Fa-f]{4}) (\S+)/;
const DEST_LINE = /^\s+-> (\S+):([0-9A-Fa-f]{4})\s+(\S+)\s+(-?\d+)\s+(\d+)\s+(\d+)/;

/** "0A60000A" or "[2001:0db8:…]" → a parsed address, or undefined when it is neither. */
function procAddress(text: string): ParsedIp | undefined {
  if (text.startsWith('[') && text.endsWith(']')) {
    const ip = parseIp(text.slice(1, -1));
    return ip?.family === 'IPv6' ? ip : undefined;
  }
  if (!/^[0-9A-Fa-f]{8}$/.test(text)) return undefined;
  const n = Number.parseInt(text, 16);
  return { family: 'IPv4', bytes: Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255) };
}

function procAddressText(address: string): string {
  const ip = parseIp(address);
  if (!ip) throw new Error(`not an IP address: ${address}`);
  if (ip.family === 'IPv4') return Array.from(ip.bytes, (b) => b.toString(16).toUpperCase().padStart(2, '0')).join('');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((ip.bytes[i] ?? 0) << 8) | (ip.bytes[i + 1] ?? 0)).toString(16).padStart(4, '0'));
  return `[${groups.join(':')}]`;
}

const hex4 = (port: number): string => port.toString(16).toUpperCase().padStart(4, '0');

/** A real-server line, or undefined when it is not one this reader knows. */
function parseDestLine(line: string): ListedRealServer | undefined {
  const m = DEST_LINE.exec(line);
  const ip = m ? procAddress(m[1] as string) : undefined;
  const forward = m ? FORWARD_BY_NAME[m[3] as string] : undefined;
  if (!m || !ip || !forward) return undefined;
  return { family: ip.family, address: formatIp(ip), port: Number.parseInt(m[2] as string, 16), forward, weight: Number(m[4]), activeConns: Number(m[5]), inactiveConns: Number(m[6]) };
}

/** A virtual-server line of a protocol we use, or undefined (headers, FWM lines, others). */
function parseServiceLine(line: string): Omit<ListedVirtualServer, 'realServers'> | undefined {
  const m = SERVICE_LINE.exec(line);
  if (!m || !PROTOCOLS.has(m[1] as string)) return undefined;
  const ip = procAddress(m[2] as string);
  if (!ip) return undefined;
  return { family: ip.family, protocol: m[1] as Protocol, address: formatIp(ip), port: Number.parseInt(m[3] as string, 16), scheduler: m[4] as string };
}

/**
 * Parses the file. A line it cannot read is skipped (a real-server line alone; a virtual-server
 * line with its real servers), so a format it does not know yields fewer servers (the caller then
 * dumps), never wrong ones.
 */
export function parseProcIpvs(text: string): ListedVirtualServer[] {
  const out: ListedVirtualServer[] = [];
  let current: ListedVirtualServer | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith(' ')) {
      const rs = current ? parseDestLine(line) : undefined;
      if (rs) current?.realServers.push(rs);
      continue;
    }
    const vs = parseServiceLine(line);
    current = vs ? { ...vs, realServers: [] } : undefined;
    if (current) out.push(current);
  }
  return out;
}

/** The real servers of each listed virtual server, by vsKey. */
export function realServersByVirtualServer(services: readonly ListedVirtualServer[]): Map<string, ListedRealServer[]> {
  return new Map(services.map((s) => [vsKey(s), s.realServers]));
}

/** One virtual server's real-server lines, compared whole before anything in them is parsed. */
export interface RealServerBlock {
  /**
   * The lines without their connection counts: two reads with equal fingerprints list the same
   * real servers, in the same order, with the same weights and forwarding methods.
   */
  readonly fingerprint: string;
  /** Its real servers, parsed at the first call (lines the reader does not know are skipped). */
  servers(): readonly ListedRealServer[];
}

// The two connection counts that end a real-server line (and the blanks the format pads with).
const CONNECTION_COUNTS = / +\d+ +\d+ *$/gm;
// A line that does not start with a blank: a virtual server's line (or a header of the file).
const OUTER_LINE = /^[^ \n][^\n]*/gm;

/**
 * A string that shares no memory with the text it was cut from. A match or slice of a long string
 * points into it; kept in a cache across reads, it would keep that whole read's text alive.
 */
function ownCopy(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

/** A block as the reader keeps it: its raw lines (a slice of one read's text) besides the rest. */
class ReadBlock implements RealServerBlock {
  constructor(
    readonly lines: string,
    readonly fingerprint: string,
    /** Its real servers once parsed (a block with the same lines may start with another's). */
    public parsed: readonly ListedRealServer[] | undefined,
  ) {}

  servers(): readonly ListedRealServer[] {
    if (this.parsed) return this.parsed;
    const out: ListedRealServer[] = [];
    for (const line of this.lines.split('\n')) {
      const r = line.startsWith(' ') ? parseDestLine(line) : undefined;
      if (r) out.push(r);
    }
    this.parsed = out;
    return out;
  }
}

/**
 * Reads the file as one block per non-fwmark virtual server, by vsKey, remembering its last read: a
 * block whose lines are exactly those of the last read (counts included, as on a node without
 * traffic) takes that read's fingerprint and parsed servers, and a virtual-server line seen before
 * is not parsed again. So a full resync of an unchanged node costs a scan of the text, not a
 * regular expression per real server.
 */
export class ProcIpvsReader {
  /** The last read's blocks (slices of its text, which they keep alive until the next read). */
  private last = new Map<string, ReadBlock>();
  /** Virtual-server lines by text (own copies): their vsKey, or null for lines that are not ours. */
  private keys = new Map<string, string | null>();

  read(text: string): Map<string, RealServerBlock> {
    const out = new Map<string, ReadBlock>();
    const last = this.last;
    if (this.keys.size > 2 * last.size + 16) this.keys = new Map();
    let key: string | undefined;
    let start = 0;
    const close = (end: number): void => {
      if (key === undefined) return;
      const lines = start < end ? text.slice(start, end) : '';
      const before = last.get(key);
      // A fresh block (not the old object), and a fingerprint of its own (the result of replace()
      // can point into the text): nothing kept past the next read holds this read's text.
      out.set(key, before !== undefined && before.lines === lines ? new ReadBlock(lines, before.fingerprint, before.parsed) : new ReadBlock(lines, ownCopy(lines.replace(CONNECTION_COUNTS, '')), undefined));
    };
    OUTER_LINE.lastIndex = 0;
    for (let m = OUTER_LINE.exec(text); m !== null; m = OUTER_LINE.exec(text)) {
      close(m.index);
      const line = m[0];
      let known = this.keys.get(line);
      if (known === undefined) {
        const vs = parseServiceLine(line);
        this.keys.set(ownCopy(line), (known = vs ? vsKey(vs) : null));
      }
      key = known ?? undefined;
      start = m.index + line.length + 1;
    }
    close(text.length);
    this.last = out;
    return out;
  }
}

/** The file as one block per non-fwmark virtual server, by vsKey (a read with nothing before it). */
export function procBlocks(text: string): Map<string, RealServerBlock> {
  return new ProcIpvsReader().read(text);
}

/** Every block's real servers, parsed (what a caller that needs them all wants). */
export function allRealServers(blocks: ReadonlyMap<string, RealServerBlock>): Map<string, ListedRealServer[]> {
  return new Map([...blocks].map(([k, b]) => [k, [...b.servers()]]));
}

/** Renders services as the kernel prints them (the fake's view of the file). */
export function renderProcIpvs(services: ReadonlyArray<Omit<ListedVirtualServer, 'realServers'> & { readonly realServers: readonly ListedRealServer[] }>): string {
  const lines = ['IP Virtual Server version 1.2.1 (size=4096)', 'Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn'];
  for (const s of services) {
    lines.push(`${s.protocol}  ${procAddressText(s.address)}:${hex4(s.port)} ${s.scheduler} `);
    for (const r of s.realServers) {
      lines.push(`  -> ${procAddressText(r.address)}:${hex4(r.port)}      ${NAME_BY_FORWARD[r.forward].padEnd(7)} ${String(r.weight).padEnd(6)} ${String(r.activeConns).padEnd(10)} ${String(r.inactiveConns).padEnd(10)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
